"""Retention: `lamdagent gc` keeps the weights of the top-k models and their lineage, frees the
rest (nothing else), the cache never hands out a freed model, and a freed model needed again is
rebuilt, bit for bit, by re-running its action."""

from __future__ import annotations

import hashlib
import io

import mlflow
import pytest
from rich.console import Console

from lamdagent.cli.main import main
from lamdagent.console import Display
from lamdagent.exploration.loop import start_or_resume
from lamdagent.files import cache_dir
from lamdagent.tracking import Tracker, retention
from tests.conftest import FAST
from tests.test_explore import steps_agent

STEPS = {
    1: ("sft", {"model": "base", "dataset": "arith", "learning_rate": "0.003"}),
    2: ("sft", {"model": "m1", "dataset": "facts", "learning_rate": "0.003"}),
    3: ("sft", {"model": "base", "dataset": "choice", "learning_rate": "0.003"}),
}


def _weights(folder) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.glob("*.safetensors")}


def _explore(overrides, resume=None):
    display = Display(Console(file=io.StringIO()))
    with display:
        return start_or_resume("demo", overrides, resume, Tracker(), display)


@pytest.mark.slow
@pytest.mark.ci  # `lamdagent gc` end to end: 3 iterations on the base alone, one task; gc; a rebuild on resume
def test_gc_frees_all_but_the_top_k_and_their_lineage_and_a_freed_model_is_rebuilt(tracking_uri, fake_openai, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    steps = dict(STEPS)
    fake_openai.default = steps_agent(steps)
    agent = ["agent.backend=openai", "agent.model=fake", f"agent.base_url={fake_openai.base_url}"]
    run_id, records, _ = _explore([*FAST, "data.val_size=6", "specialists=false", "tasks=[arith]", "datasets=[arith,choice,facts]", "iterations=3", *agent])
    tracker = Tracker()
    experiment = tracker.run(run_id).info.experiment_id
    models = {r.name: r for r in records if r.status == "ok"}
    before = {r.model_id: _weights(tracker.model_dir(r.model_id)) for r in models.values()}
    assert all(before.values())

    assert main(["gc", "--study", "demo", "--keep-top-k", "1"]) == 0
    assert "freed the weights of" in capsys.readouterr().out
    kept = retention.keep_set(records, 1)
    top = min(models.values(), key=lambda r: (-r.score, r.iteration, r.run_id))  # ties go to the earlier model
    assert top.model_id in kept and models["base"].model_id in kept  # the best and its lineage root
    if top.name == "m2":
        assert models["m1"].model_id in kept
    freed = {name: r for name, r in models.items() if r.model_id not in kept}
    assert freed and set(freed) | {n for n, r in models.items() if r.model_id in kept} == set(models)
    for name, record in models.items():
        run = tracker.client.get_run(record.run_id)
        logged = tracker.client.get_logged_model(record.model_id)
        if name in freed:
            assert run.data.tags["lamdagent.weights"] == "freed" and logged.tags["lamdagent.weights"] == "freed"
            assert not [a for a in tracker.client.list_logged_model_artifacts(record.model_id) if a.path.endswith(".safetensors")]
            assert {a.path for a in tracker.client.list_logged_model_artifacts(record.model_id)} >= {"config.json"}
            version = tracker.client.get_model_version("lamdagent-demo", run.data.tags["lamdagent.model_version"])
            assert version.tags["lamdagent.weights"] == "freed"
            assert tracker.find_by_fingerprint(experiment, record.fingerprint) is None  # the cache skips it
        else:
            assert "lamdagent.weights" not in run.data.tags and _weights(tracker.model_dir(record.model_id)) == before[record.model_id]
        # never freed: metrics, tags, predictions, memory
        assert "val.score" in run.data.metrics and run.data.tags["lamdagent.pipeline"] == record.pipeline
        if record.kind == "action":
            assert mlflow.artifacts.load_text(f"runs:/{record.run_id}/agent/memory.txt").split("Lessons (the agent's own notes):\n")[1].startswith("Lessons:")
            assert mlflow.artifacts.load_text(f"runs:/{record.run_id}/predictions/val/arith.json")

    # a freed model is needed again: rebuilt by re-running its action, the same weights
    name, record = sorted(freed.items())[-1]
    steps[4] = ("sft", {"model": name, "dataset": "facts" if name != "m2" else "arith", "learning_rate": "0.003"})
    _, records, _ = _explore(["iterations=4"], resume=run_id)
    last = [r for r in records if r.kind == "action"][-1]
    assert last.iteration == 4 and last.status == "ok", last.error
    assert _weights(cache_dir() / "rebuilt" / record.model_id / "model") == before[record.model_id]
    assert tracker.client.get_run(last.run_id).data.tags["lamdagent.inputs"] == f'["{record.run_id}"]'
