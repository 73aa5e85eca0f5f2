"""A model's evaluation is identified by the task's definition: editing a task re-evaluates the
reused models it scores (the models themselves are reused); an unchanged task reuses the scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
from rich.console import Console

from lamdagent.console import Display
from lamdagent.evaluation.tasks import load_task
from lamdagent.exploration.loop import start_or_resume
from lamdagent.files import CONF_DIR
from lamdagent.tracking import Kind, Status, Tracker
from tests.conftest import FAST


def _seeds(task_file: Path) -> dict[str, object]:
    """An exploration of 0 iterations (its initial models only) on one task; name -> seed run."""
    overrides = [*FAST, "iterations=0", f"tasks=[{task_file}]", "datasets=[]", "agent.policy=random"]
    with Display(Console(quiet=True)) as display:
        run_id, records, _ = start_or_resume("demo", overrides, None, Tracker(), display)
    client = mlflow.MlflowClient()
    return {r.name: client.get_run(r.run_id) for r in records if r.kind == Kind.SEED}


def _prompts(run) -> list[str]:
    path = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/predictions/val/arith.json")
    return [row["prompt"] for row in json.loads(Path(path).read_text())]


def test_the_definition_key_follows_the_definition_or_its_version(tmp_path):
    task_file = tmp_path / "arith.yaml"
    shutil.copy(CONF_DIR / "tasks" / "arith.yaml", task_file)
    first = load_task(str(task_file)).definition_key()
    assert load_task(str(task_file)).definition_key() == first  # stable
    task_file.write_text(task_file.read_text().replace("metric: number_match", "metric: exact_match"))
    assert load_task(str(task_file)).definition_key() != first  # a metric change is a new definition
    task_file.write_text(task_file.read_text() + "version: '2'\n")
    versioned = load_task(str(task_file)).definition_key()
    assert versioned == "arith@v2"
    task_file.write_text(task_file.read_text().replace("max_new_tokens: 6", "max_new_tokens: 7"))
    assert load_task(str(task_file)).definition_key() == versioned  # an explicit version alone identifies it


def test_editing_a_task_re_evaluates_the_reused_models(tracking_uri, tmp_path):
    task_file = tmp_path / "arith.yaml"
    shutil.copy(CONF_DIR / "tasks" / "arith.yaml", task_file)
    first = _seeds(task_file)
    assert first["base"].data.tags["lamdagent.status"] == Status.OK
    assert all(p.startswith("Question:") for p in _prompts(first["base"]))

    again = _seeds(task_file)  # unchanged: model and scores reused, nothing evaluated
    assert again["base"].data.tags["lamdagent.status"] == Status.CACHED
    assert again["base"].data.metrics["val.arith"] == first["base"].data.metrics["val.arith"]
    assert not mlflow.MlflowClient().list_artifacts(again["base"].info.run_id, "predictions/val")

    task_file.write_text(task_file.read_text().replace('prompt: "Question: {{ question }}\\nAnswer:"', 'prompt: "Q: {{ question }}\\nA:"'))
    edited = _seeds(task_file)  # the template changed: the same models, evaluated again
    for name in ("base", "spec_arith"):
        run = edited[name]
        assert run.data.tags["lamdagent.status"] == Status.CACHED
        assert run.data.tags["lamdagent.model_id"] == first[name].data.tags["lamdagent.model_id"]  # the model is reused
        assert json.loads(run.data.tags["lamdagent.evaluation"]) != json.loads(first[name].data.tags["lamdagent.evaluation"])
        assert all(p.startswith("Q:") for p in _prompts(run))  # fresh val.* from the edited task
        assert "val.arith" in run.data.metrics

    settled = _seeds(task_file)  # the edited definition's scores are now reused in turn
    assert not mlflow.MlflowClient().list_artifacts(settled["spec_arith"].info.run_id, "predictions/val")
    assert settled["spec_arith"].data.metrics["val.arith"] == edited["spec_arith"].data.metrics["val.arith"]
