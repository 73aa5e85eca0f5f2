"""A user's own metric, extractor and action type, loaded with `--include` (or $LAMDAGENT_INCLUDE)
without editing the package: used by `lamdagent score` and the study config, inherited by the
processes the tool starts; a missing module or path is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lamdagent.cli.main import main
from lamdagent.plugins import INCLUDE_ENV
from tests.test_parallel import ray_cluster  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = textwrap.dedent('''
    """A user's plug-ins, kept outside the package."""
    import shutil
    from dataclasses import dataclass, field

    from lamdagent.actions import ActionOutput, ActionType, Slot, register_action
    from lamdagent.evaluation.metrics import register_extractor, register_metric

    print("plug-in imported", flush=True)


    @register_extractor("plugin_last_word")
    def last_word(text: str) -> str:
        words = text.split()
        return words[-1].strip(".") if words else ""


    @register_metric("plugin_within_one")
    def within_one(prediction: str, gold) -> float:
        try:
            return float(abs(float(prediction) - float(gold)) <= 1)
        except ValueError:
            return 0.0


    @dataclass
    class CopySettings:
        strength: list = field(default_factory=lambda: [0.5])


    @register_action
    class PluginCopy(ActionType):
        name = "plugin_copy"
        description = "copy a model unchanged"
        slots = (Slot("model", "model", "the model to copy"), Slot("strength", "hparam", "unused"))
        Settings = CopySettings

        def run(self, bindings, ctx) -> ActionOutput:
            shutil.copytree(ctx.model_path(bindings["model"]), ctx.out_dir / "model")
            return ActionOutput(model_dir=ctx.out_dir / "model")
''')


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """One plug-in file for the module (its names register once per process)."""
    path = tmp_path_factory.mktemp("plugins") / "my_plugins.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(autouse=True)
def _include_env(monkeypatch):
    """$LAMDAGENT_INCLUDE as the test leaves it is undone (--include sets it for child processes)."""
    monkeypatch.setenv(INCLUDE_ENV, "")


def test_a_custom_metric_and_extractor_score_a_custom_task(plugin, tmp_path, capsys):
    task = tmp_path / "near.yaml"
    task.write_text("name: near\nsource: synthetic:arithmetic\nextractor: plugin_last_word\nmetric: plugin_within_one\n")
    rows = tmp_path / "gen.jsonl"
    rows.write_text("".join(json.dumps({"gold": "12", "generation": g}) + "\n" for g in (" it is 13.", " 12", " it is 15", " twelve")))
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--include", str(plugin), "--task", str(task), "--input", str(rows), "--output", str(out)]) == 0
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["answer"], r["reward"]) for r in scored[:4]] == [("13", 1.0), ("12", 1.0), ("15", 0.0), ("twelve", 0.0)]
    assert scored[-1]["aggregate"]["mean_reward"] == 0.5
    assert os.environ[INCLUDE_ENV] == str(plugin)  # what the processes started from here inherit


def test_a_custom_action_type_has_its_config_section_and_shows_in_a_dry_run(plugin, tracking_uri, capsys):
    argv = ["explore", "--study", "demo", "--dry-run", "actions=[sft,plugin_copy]", "plugin_copy.strength=[0.2,0.8]"]
    assert main(["--include", str(plugin), *argv]) == 0  # before the command, like every common option
    out = capsys.readouterr().out
    assert "plugin_copy" in out and "model:model, strength:hparam" in out


def test_processes_started_from_here_import_the_plug_ins(plugin, tmp_path):
    """A fresh process that only inherits $LAMDAGENT_INCLUDE: rebuilding a study (what a Ray worker
    does) and the `accelerate launch` worker both import the plug-ins."""
    env = {**os.environ, INCLUDE_ENV: str(plugin), "PYTHONPATH": str(ROOT)}
    rebuild = ("from lamdagent.config import load_config; "
               "cfg = load_config('demo', ['actions=[plugin_copy]', 'plugin_copy.strength=[0.3]']); print(cfg.plugin_copy.strength)")
    result = subprocess.run([sys.executable, "-c", rebuild], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.split() == ["plug-in", "imported", "[0.3]"], result.stderr[-2000:]
    without = subprocess.run([sys.executable, "-c", rebuild], env={**env, INCLUDE_ENV: ""}, capture_output=True, text=True, timeout=300)
    assert without.returncode != 0 and "unknown config key 'plugin_copy'" in without.stderr
    worker = subprocess.run([sys.executable, "-m", "lamdagent.training.worker", str(tmp_path / "no_spec.json")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert worker.stdout.startswith("plug-in imported") and "no_spec.json" in worker.stderr


@pytest.mark.parametrize("entry, message", [
    ("no_such_plugin_module", "--include 'no_such_plugin_module': no module named 'no_such_plugin_module' on sys.path"),
    ("no_such_pkg.metrics", "--include 'no_such_pkg.metrics': no module named 'no_such_pkg' on sys.path"),
    ("/no/such/plugins.py", "--include '/no/such/plugins.py' is neither a .py file nor a folder"),
])
def test_a_missing_module_or_path_is_one_line(entry, message, capsys):
    assert main(["top", "some_run", "--include", entry]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert message in out and "Traceback" not in out


def test_a_folder_of_plug_ins_and_a_module_on_sys_path(tmp_path, monkeypatch):
    from lamdagent.evaluation.metrics import METRICS
    from lamdagent.plugins import include

    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.py").write_text(f"from lamdagent.evaluation.metrics import register_metric\n"
                                           f"register_metric('plugin_folder_{name}')(lambda prediction, gold: 1.0)\n")
    (tmp_path / "plugin_module_c.py").write_text("from lamdagent.evaluation.metrics import register_metric\n"
                                                 "register_metric('plugin_module_c')(lambda prediction, gold: 1.0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    include(str(folder))
    include("plugin_module_c")
    include(str(folder))  # once is enough: no second registration
    assert {"plugin_folder_a", "plugin_folder_b", "plugin_module_c"} <= set(METRICS)
    assert os.environ[INCLUDE_ENV].split(os.pathsep) == [str(folder), "plugin_module_c"]


@pytest.mark.slow
def test_a_ray_worker_runs_a_plug_in_action_type(plugin, tracking_uri, ray_cluster):  # noqa: F811  (the fixture)
    """The loop's process includes the plug-in; the Ray worker, which only inherits $LAMDAGENT_INCLUDE,
    rebuilds the action of the plug-in's type and produces its model."""
    from lamdagent.plugins import include
    from tests.test_parallel import RANDOM, actions_of, explore

    include(str(plugin))
    run_id, _, _ = explore([*RANDOM, "iterations=1", "execution.executor=ray", "actions=[plugin_copy]"])
    (action,) = actions_of(run_id)
    assert action.data.tags["lamdagent.action_type"] == "plugin_copy"
    assert action.data.tags["lamdagent.status"] == "ok", action.data.tags.get("lamdagent.error")
    assert "val.score" in action.data.metrics
    assert not action.data.tags["lamdagent.worker"].endswith(f":{os.getpid()}")  # run by a worker process
