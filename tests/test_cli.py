"""The command line: one-line errors for bad input, and `mlflow run .` end to end."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lamdagent.cli.main import main
from tests.conftest import FAST

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "argv, message",
    [
        (["explore", "--study", "nope"], "error: unknown study 'nope'"),
        (["explore", "agent.temprature=0"], "did you mean 'agent.temperature'?"),
        (["explore", "tasks=[arith,gsm9k]"], "unknown task 'gsm9k'"),
        (["explore", "--resume", "0123456789abcdef"], "no run '0123456789abcdef'"),
        (["explore", "agent.backend=openai", "agent.model=gpt-4o"], "needs an API key in $OPENAI_API_KEY"),
        (["explore", "base_model=/no/such/model"], "neither an existing folder"),
    ],
)
def test_bad_input_is_one_line_before_any_compute(argv, message, tracking_uri, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert message in " ".join(out.split())
    assert "Traceback" not in out
    assert not list(Path(".").glob("**/*.safetensors"))  # nothing was trained


def test_malformed_yaml_is_one_line_before_any_compute(tmp_path, capsys, tracking_uri):
    study, task = tmp_path / "study.yaml", tmp_path / "mytask.yaml"
    study.write_text("name: x\ntasks: [arith\n")
    task.write_text('name: mytask\nsource: synthetic:arithmetic\nprompt: "{{ question"\n')
    cases = [
        (["explore", "--study", str(study)], "study.yaml' line 3 is not valid YAML"),
        (["explore", "tasks=[arith"], "are not valid YAML values"),
        (["explore", f"tasks=[{task}]", "datasets=[all]"], "task 'mytask': template syntax error"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        out = " ".join(capsys.readouterr().out.split())
        assert message in out and "Traceback" not in out


def test_one_mlproject_argument_holds_several_overrides_and_values_keep_their_spaces():
    from lamdagent.cli.main import split_overrides

    assert split_overrides(["agent.temperature=0 sft.learning_rate=1e-4", "task_weights={arith: 2, facts: 1}"]) == [
        "agent.temperature=0", "sft.learning_rate=1e-4", "task_weights={arith: 2, facts: 1}"]


@pytest.mark.parametrize("argv, expected", [
    (["explore", "--study", "demo", "agent.policy=greedy", "--resume", "latest", "iterations=6"],
     dict(study="demo", resume="latest", overrides=["agent.policy=greedy", "iterations=6"])),  # overrides before and after options
    (["explore", "a=1", "--dry-run", "b=2", "--study", "s", "c=3"], dict(study="s", dry_run=True, overrides=["a=1", "b=2", "c=3"])),
    (["--conf-dir", "A", "--tracking-uri", "u1", "explore", "--conf-dir", "B"], dict(conf_dir=["A", "B"], tracking_uri="u1")),
    (["--tracking-uri", "u1", "top", "R", "--tracking-uri", "u2", "-k", "3"], dict(tracking_uri="u2", exploration="R", k=3)),  # the later wins
    (["--include", "p.py", "score", "--task", "t", "--input", "x", "--include", "q"], dict(include=["p.py", "q"], task="t")),
    (["export", "R", "--tracking-uri", "u", "D"], dict(run_id="R", dir="D", tracking_uri="u", include=[], conf_dir=[])),
])
def test_overrides_anywhere_and_common_options_before_or_after_the_command(argv, expected):
    from lamdagent.cli.main import parse_args

    args = vars(parse_args(argv))
    assert {k: args[k] for k in expected} == expected


@pytest.mark.parametrize("argv", [["top", "R", "extra"], ["explore", "--bogus", "a=1"], ["explor"], ["--conf-dir"]])
def test_what_no_command_takes_is_still_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "error:" in capsys.readouterr().err


def test_the_readme_form_conf_dir_before_the_command(tmp_path, tracking_uri, capsys, monkeypatch):
    from lamdagent import files

    monkeypatch.setattr(files, "_extra_conf_dirs", [])  # what --conf-dir adds is undone after the test
    monkeypatch.setenv(files.CONF_PATH_ENV, "")
    (tmp_path / "mine" / "studies").mkdir(parents=True)
    (tmp_path / "mine" / "studies" / "my_study.yaml").write_text("name: my_study\ntasks: [arith]\niterations: 1\n")
    assert main(["--conf-dir", str(tmp_path / "mine"), "explore", "--study", "my_study", "--dry-run", "iterations=2"]) == 0
    assert "study my_study" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.ci
def test_mlflow_run_entry_point(tmp_path):
    """`mlflow run . --env-manager local` with -P parameters: the launcher run links the exploration. On
    the demo study: the default one (mixed) pre-trains its warm base and trains on its large harmful
    datasets (measured on the busy 2 cores: 292 s of CPU, against 59 s on the demo)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    overrides = " ".join([*FAST, "agent.policy=random", "specialists=false"])
    result = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", str(ROOT), "--env-manager", "local", "-P", "study=demo", "-P", "iterations=2",
         "-P", f"overrides={overrides}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Top pipelines (validation)" in result.stdout
    client = MlflowClient(uri)
    (launcher,) = client.search_runs(["0"])
    exploration = client.get_run(launcher.data.tags["lamdagent.exploration_run_id"])
    assert exploration.data.params["iterations"] == "2" and exploration.data.params["agent.policy"] == "random"
    assert exploration.data.tags["lamdagent.study"] == "demo"
    children = client.search_runs([exploration.info.experiment_id], f"tags.mlflow.parentRunId = '{exploration.info.run_id}'")
    assert sorted(r.data.tags["lamdagent.iteration"] for r in children if r.data.tags["lamdagent.kind"] == "action") == ["1", "2"]


def test_dry_run_of_the_paper_study_validates_offline_and_lists_downloads(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["explore", "--study", "paper_exp1", "--dry-run"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "│ sft │" in out and "│ ties │" in out
    assert "Iteration 1 of 100." in out and "Avoid bias" in out  # the first rendered prompt
    assert "- base model: hub model google/gemma-2-2b" in out
    assert "- task gsm8k: hub dataset openai/gsm8k (main): train=train, val=test[:100], test=test[100:]" in out
    assert "$OPENAI_API_KEY is not set" in out
    assert not list(tmp_path.iterdir())  # nothing was written: no store, no model


def test_dry_run_rejects_a_bad_study_like_a_real_run(capsys):
    assert main(["explore", "--study", "paper_exp1", "--dry-run", "tasks=[gsm9k]"]) == 2
    assert "unknown task 'gsm9k'" in capsys.readouterr().out


def test_dry_run_of_the_tool_use_study_lists_its_training_data(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["explore", "--study", "paper_exp2", "--dry-run"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "│ ties │ model_a:model, model_b:model, weight:hparam, density:hparam │ 0 │" in out  # one model: nothing to merge yet
    assert "- training data toolace: hub dataset Team-ACE/ToolACE" in out
    assert "goal: the highest multi-task validation score on these tasks: bfcl_simple_python, bfcl_multiple, bfcl_parallel, mt_bench" in out.lower()
