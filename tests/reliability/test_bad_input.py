"""Bad input is a one-line error before any compute: every case below exits 2 with its message,
no traceback, and nothing written to the store or trained."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamdagent.cli.main import main
from lamdagent.faults import parse

BAD = [
    (["explore", "iterations=-1"], "iterations must be >= 0"),
    (["explore", "iterations=many"], "bad config value for 'iterations'"),
    (["explore", "itrations=3"], "did you mean 'iterations'?"),
    (["explore", "sft.learning_rat=[1e-3]"], "did you mean 'sft.learning_rate'?"),
    (["explore", "sft.learning_rate=[]"], "sft.learning_rate must list at least one value"),
    (["explore", "sft.learning_rate=[fast]"], "sft.learning_rate values must be numbers"),
    (["explore", "sft.epochs=0"], "sft.epochs must be a number > 0 or a list of them, got 0"),
    (["explore", "slerp.t=[0.3,0.3]", "actions=[sft,slerp]"], "slerp.t lists 0.3 more than once"),
    (["explore", "sft.lora.r=0"], "sft.lora.r must be > 0"),
    (["explore", "screening.repeats=0"], "screening.repeats must be > 0, got 0"),
    (["explore", "ties.weight=[]", "actions=[sft,ties]"], "ties.weight must list at least one value"),
    (["explore", "actions=[sft,frobnicate]"], "unknown action type 'frobnicate'"),
    (["explore", "actions=[]"], "actions must list at least one action type"),
    (["explore", "tasks=[]"], "tasks must list at least one task"),
    (["explore", "datasets=[arith,nope]"], "unknown dataset 'nope'"),
    (["explore", "preference_datasets=[json:/no/such.json]"], "preference dataset file '/no/such.json' does not exist"),
    (["explore", "training_data={x: {source: ftp:data}}"], "training_data.x.source must be hf:<id> or json:<path>"),
    (["explore", "task_weights={gsm8k: 1}"], "task_weights names 'gsm8k'"),
    (["explore", "data.val_size=0"], "data.val_size must be > 0"),
    (["explore", "agent.policy=bayes"], "agent.policy must be one of ['greedy', 'guided', 'hybrid', 'llm', 'optuna', 'random'], got 'bayes'"),
    (["explore", "agent.temperature=-1"], "agent.temperature must be >= 0"),
    (["explore", "agent.backend=claude"], "agent.backend must be one of ['local', 'openai'], got 'claude'"),
    (["explore", "execution.executor=dask"], "execution.executor must be one of ['local', 'ray'], got 'dask'"),
    (["explore", "agent.request_retries=-1"], "agent.request_retries must be >= 0"),
    (["explore", "agent.backend=openai", "agent.model=x", "agent.base_url=http://127.0.0.1:9/v1"], "cannot reach the agent's endpoint"),
    (["explore", "max_consecutive_failures=0"], "max_consecutive_failures must be >= 1"),
    (["explore", "lease.heartbeat_seconds=600"], "lease.heartbeat_seconds must be > 0 and < lease.timeout_seconds"),
    (["explore", "retention.keep_top_k=0"], "retention.keep_top_k must be >= 1 or null"),
    (["explore", "retention.keep_top_k=lots"], "bad config value for 'retention.keep_top_k'"),
    (["explore", "base_model=/no/such/model"], "neither an existing folder"),
    (["explore", "iterations"], "override 'iterations' is not key=value"),
    (["explore", "--resume", "latest", "--study", "nosuchstudy"], "no exploration of study 'nosuchstudy'"),
    (["compare-policies", "--first-seed", "-1"], "--first-seed >= 0"),
    (["gc", "--study", "demo", "--keep-top-k", "0"], "--keep-top-k must be >= 1"),
    (["gc", "--study", "nosuchstudy", "--keep-top-k", "2"], "no study 'nosuchstudy'"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for all cases (a fresh sqlite store costs seconds to create): none writes to it."""
    root = tmp_path_factory.mktemp("bad-input")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        patch.setenv("OPENAI_API_KEY", "sk-test")
        yield root


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(argv[1:])[:60] for argv, _ in BAD])
def test_bad_input_is_one_line_before_any_compute(argv, message, store, capsys):
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert message in " ".join(out.split()) and "Traceback" not in out
    assert len(out.strip().splitlines()) <= 2  # one message (wrapped at most once)
    assert not list(Path(".").glob("**/*.safetensors")) and not list(Path(".").glob("mlruns/**/meta.yaml"))


def test_a_bad_fault_spec_names_the_hooks():
    with pytest.raises(ValueError, match="unknown hook 'after_trian'"):
        parse("after_trian:2")
    assert parse("eval:3") == ("eval", 3)


@pytest.mark.parametrize("text, message", [
    ("${head}\nAccept ${proposl}?", "unknown placeholder ${proposl}; expected some of head, tasks"),
    ("${head}\nCosts $5 per call", "a '$' that starts no ${placeholder} (write $$ for a dollar sign)"),
])
def test_a_users_prompt_template_with_a_bad_placeholder_is_one_line_before_any_compute(text, message, store, capsys, tmp_path, monkeypatch):
    """A prompts/ folder beside the user's conf folder replaces a template: a misspelt placeholder used
    to surface as a KeyError after the initial models were trained."""
    from lamdagent import files

    monkeypatch.setattr(files, "_extra_conf_dirs", [])  # what --conf-dir adds is undone after the test
    monkeypatch.setenv(files.CONF_PATH_ENV, "")
    (tmp_path / "conf").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "hybrid.txt").write_text(text)
    assert main(["explore", "--conf-dir", str(tmp_path / "conf"), "agent.policy=hybrid"]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"prompt template {tmp_path / 'prompts' / 'hybrid.txt'}: {message}" in out and "Traceback" not in out
    assert not list(Path(".").glob("**/*.safetensors")) and not list(Path(".").glob("mlruns/**/meta.yaml"))
