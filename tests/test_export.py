"""`lamdagent export`: a found pipeline (SFT, a TIES merge, SFT of the merge) written as files, run
without LaMDAgent in a subprocess, gives the weights the tool made; so do an exported DPO step and
exported LoRA steps (a new adapter on a full model, then that adapter trained on)."""

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from lamdagent.actions import ACTION_TYPES
from lamdagent.cli.main import main
from lamdagent.console import Display
from lamdagent.evaluation.tasks import load_task
from lamdagent.experiments import pipeline_runner
from lamdagent.experiments.export import ExportContext, write_step
from lamdagent.exploration.loop import start_or_resume
from lamdagent.space import PreferenceDatasetObject
from lamdagent.tracking import Tracker
from tests.conftest import FAST
from tests.fake_openai import FakeOpenAI
from tests.helpers import context, trained
from tests.test_explore import steps_agent

STEPS = {
    1: ("sft", {"model": "base", "dataset": "arith", "learning_rate": "0.003"}),
    2: ("ties", {"model_a": "m1", "model_b": "ft_facts", "weight": "0.5", "density": "0.5"}),
    3: ("sft", {"model": "m2", "dataset": "facts", "learning_rate": "0.003"}),
}
# the demo's fast models all score 0, so m1 copies the base by the targets' measure and is not merged with it: ft_facts is
STUDY = [*FAST, "specialists=false", "seed_models=[facts]", "tasks=[arith,facts]", "datasets=[arith,facts]", "actions=[sft,ties]", "iterations=3",
         "agent.backend=openai", "agent.model=fake", "agent.temperature=0"]
# Run with PYTHONPATH=<this folder>: `import lamdagent` fails there, and the check after the run says none was imported.
GUARD = (
    "import runpy, sys\n"
    "try:\n    runpy.run_path(sys.argv[1], run_name='__main__')\n"
    "except SystemExit as end:\n    assert not end.code, end.code\n"
    "assert not [m for m in sys.modules if m.split('.')[0] == 'lamdagent'], 'the runner imported lamdagent'\n"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One exploration of the demo on a real store: m1 = sft(base, arith), m2 = ties(m1, ft_facts), m3 = sft(m2, facts)."""
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    with pytest.MonkeyPatch.context() as patch, FakeOpenAI(default=steps_agent(STEPS)) as server:
        patch.setenv("OPENAI_API_KEY", "sk-export")
        patch.chdir(folder)
        with Display(Console(file=io.StringIO())) as display:
            exploration, records, _ = start_or_resume("demo", [*STUDY, f"agent.base_url={server.base_url}"], None, Tracker(uri), display)
    models = {r.name: r for r in records}
    assert models["m3"].pipeline == "sft(ties(sft(base, arith), ft_facts), facts)" and models["m3"].status == "ok"
    return {"uri": uri, "exploration": exploration, "models": models}


def _weights(model_dir: Path) -> dict:
    return load_file(str(next(Path(model_dir).glob("*.safetensors"))))


@pytest.mark.slow
@pytest.mark.ci
def test_the_exported_script_reproduces_the_tools_weights_without_lamdagent(store, tmp_path, capsys):
    out = tmp_path / "export"
    m3 = store["models"]["m3"]
    assert main(["export", m3.run_id, str(out), "--tracking-uri", store["uri"]]) == 0
    assert "run it without LaMDAgent" in capsys.readouterr().out
    pipeline = json.loads((out / "pipeline.json").read_text())
    assert [s["kind"] for s in pipeline["steps"]] == ["base", "sft", "sft", "merge", "sft"]
    assert [s["name"] for s in pipeline["steps"]] == ["base", "m1", "ft_facts", "m2", "m3"]
    m1_dir, _, m2_dir, m3_dir = (Path(s["dir"]) for s in pipeline["steps"][1:])
    assert pipeline["final"] == str(m3_dir / "model") and pipeline["steps"][0]["model"] == "steps/00_base/model"
    assert (out / "steps/00_base/model/config.json").exists()
    merge = (out / m2_dir / "mergekit.yaml").read_text()  # model paths are the export's step folders
    assert f"model: {m1_dir / 'model'}" in merge and "base_model: steps/00_base/model" in merge and str(tmp_path) not in merge
    assert json.loads((out / m2_dir / "step.json").read_text())["options"]["random_seed"] == 0
    sft = json.loads((out / m3_dir / "step.json").read_text())
    assert sft["model_dir"] == str(m2_dir / "model") and sft["base_dir"] is None and not sft["lora"]["enabled"]
    config = json.loads((out / m3_dir / "trl_config.json").read_text())
    assert config["learning_rate"] == 0.003 and config["num_train_epochs"] == 1 and config["seed"] == 0 and config["bf16"] is False
    assert len((out / m1_dir / "train.jsonl").read_text().splitlines()) == 48
    assert (out / "run_pipeline.py").read_text() == (Path(__file__).parent.parent / "lamdagent/experiments/pipeline_runner.py").read_text()

    guard = tmp_path / "guard"
    (guard / "lamdagent").mkdir(parents=True)
    (guard / "lamdagent" / "__init__.py").write_text("raise ImportError('the exported runner must not import lamdagent')\n")
    env = {**os.environ, "PYTHONPATH": str(guard), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", GUARD, str(out / "run_pipeline.py")], cwd=tmp_path, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"final model: {out / m3_dir / 'model'}" in result.stdout

    tracker = Tracker(store["uri"])
    for name, step_dir in (("m1", m1_dir), ("m2", m2_dir), ("m3", m3_dir)):
        tool, exported = _weights(tracker.model_dir(store["models"][name].model_id)), _weights(out / step_dir / "model")
        assert tool.keys() == exported.keys(), name
        diff = max((tool[k] - exported[k]).abs().max().item() for k in tool)
        bitwise = all(tool[k].dtype == exported[k].dtype and tool[k].equal(exported[k]) for k in tool)
        print(f"{name}: max abs diff {diff:.3g}, bitwise {bitwise}, runner {seconds:.1f} s")
        assert diff <= 1e-6, (name, diff)
        assert bitwise, name  # same seeds, data order, dtype and settings: the same bits on this CPU


@pytest.mark.slow
def test_bad_input_is_one_line_before_any_work(store, tmp_path, capsys):
    uri = ["--tracking-uri", store["uri"]]
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("")
    cases = [
        (["export", "0123456789abcdef", str(tmp_path / "a")], "no run '0123456789abcdef'"),
        (["export", store["exploration"], str(tmp_path / "b")], "is not a model of a LaMDAgent study"),
        (["export", store["models"]["m3"].run_id, str(full)], "exists and is not empty"),
    ]
    for argv, message in cases:
        assert main([*argv, *uri]) == 2
        out = capsys.readouterr().out
        assert message in " ".join(out.split()) and "Traceback" not in out
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and sorted(os.listdir(full)) == ["x"]


@pytest.mark.slow
def test_an_exported_dpo_step_with_on_policy_pairs_trains_the_tools_weights(tmp_path):
    """The tool's DPO and the runner's give the same bits, also after other tests in the process (the
    tool's reference model once came from the first folder with the same config: models/fast_load.py)."""
    spec = trained(tmp_path, "arith", epochs=4, size=64)  # weak: many of its own answers are wrong (on-policy rejections)
    dpo = ACTION_TYPES["dpo"](ACTION_TYPES["dpo"].Settings(epochs=1))
    bindings = {"model": spec, "preference_dataset": PreferenceDatasetObject("arith_prefs", [load_task("arith")], 32), "beta": 0.1,
                "learning_rate": 1e-3}
    tool = dpo.run(bindings, context(tmp_path / "tool"))
    captured = []
    ctx = ExportContext(tmp_path / "step", 0, context(tmp_path).base_model_dir, capture=lambda kind, job: captured.append((kind, job)),
                        stored=lambda model: model.path)
    dpo.run(bindings, ctx)
    [(kind, job)] = captured
    assert kind == "dpo" and job["config"]["beta"] == 0.1 and job["model_dir"] == str(spec.path)
    off_policy = [row["rejected"] for row in bindings["preference_dataset"].pairs()]
    assert [row["rejected"] for row in job["rows"]] != off_policy  # some are the model's own wrong answers
    write_step(tmp_path / "step", kind, job)
    step = json.loads((tmp_path / "step" / "step.json").read_text())
    pipeline_runner.train(tmp_path / "step", step, tmp_path / "step" / "model")
    ours, theirs = _weights(tool.model_dir), _weights(tmp_path / "step" / "model")
    for key in ours:
        torch.testing.assert_close(theirs[key], ours[key], atol=0, rtol=0)  # bit for bit


@pytest.mark.slow
def test_exported_lora_steps_train_the_tools_adapters(tmp_path):
    """LoRA: a full model gets a new adapter, then that adapter goes on training over its base; the
    exported steps, run by the runner, give the tool's adapters bit for bit."""
    from lamdagent.models.folders import architecture
    from lamdagent.space import ModelObject
    from lamdagent.training.spec import LoraSettings
    from tests.helpers import dataset

    spec = trained(tmp_path, "arith")
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(learning_rate=[3e-3], epochs=1, lora=LoraSettings(enabled=True, r=4, alpha=8)))
    first = {"model": spec, "dataset": dataset("facts", 32), "learning_rate": 3e-3}
    tool_first = sft.run(first, context(tmp_path / "tool-1"))
    adapter = ModelObject("m1", "run-m1", "m-m1", "fp-m1", "sft(spec_arith, facts)", architecture(spec.path), path=tool_first.model_dir,
                          parents=[spec], adapter_base=spec)
    second = {"model": adapter, "dataset": dataset("arith", 32), "learning_rate": 3e-3}
    tool_second = sft.run(second, context(tmp_path / "tool-2"))
    for n, (bindings, tool) in enumerate(((first, tool_first), (second, tool_second)), 1):
        captured = []
        ctx = ExportContext(tmp_path / f"step-{n}", 0, context(tmp_path).base_model_dir, capture=lambda kind, job: captured.append((kind, job)),
                            stored=lambda model: model.path)
        sft.run(bindings, ctx)
        [(kind, job)] = captured
        assert kind == "sft" and job["lora"]["enabled"] and job["lora"]["r"] == 4
        assert job["base_dir"] == (str(spec.path) if n == 2 else None)  # the second step trains the adapter over its base
        write_step(tmp_path / f"step-{n}", kind, job)
        step = json.loads((tmp_path / f"step-{n}" / "step.json").read_text())
        pipeline_runner.train(tmp_path / f"step-{n}", step, tmp_path / f"step-{n}" / "model")
        assert (tmp_path / f"step-{n}" / "model" / "adapter_config.json").exists()
        ours, theirs = _weights(tool.model_dir), _weights(tmp_path / f"step-{n}" / "model")
        assert ours.keys() == theirs.keys() and any("lora" in key for key in ours)
        for key in ours:
            torch.testing.assert_close(theirs[key], ours[key], atol=0, rtol=0)  # bit for bit
