"""The model-centric records the MLflow UI shows (docs/ui.md, docs/tracking.md), read back from a
real store through MLflow's public API: each produced LoggedModel's val.* metrics (with the dataset
they were measured on), params, its run's dataset and model inputs, its registered version linked
on it; the registry's `best` alias following the best model across an exploration and a resume;
the exploration naming its best model; each model run's pipeline drawing and linked description."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from lamdagent.tracking import Kind, Tracker
from lamdagent.tracking.models import BEST_ALIAS, NOTE, SCORE_TAG
from tests.conftest import FAST
from tests.test_explore import _explore, _runs, steps_agent

REGISTRY = "lamdagent-demo"
REPLIES = {
    1: ("sft", {"model": "spec_arith", "dataset": "all", "learning_rate": "0.003"}),
    2: ("ties", {"model_a": "m1", "model_b": "spec_facts", "weight": "0.5", "density": "0.5"}),
    3: ("sft", {"model": "m2", "dataset": "facts", "learning_rate": "0.003"}),
}


@pytest.fixture
def agent(fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fake_openai.default = steps_agent(REPLIES)
    return ["agent.backend=openai", "agent.model=fake", f"agent.base_url={fake_openai.base_url}", "agent.temperature=0"]


def _best_version(client: MlflowClient):
    """The registry's versions by score: the one holding `best` must be the top one."""
    versions = client.search_model_versions(f"name = '{REGISTRY}'")
    top = max(versions, key=lambda v: float(v.tags[SCORE_TAG]))
    holder = client.get_model_version_by_alias(REGISTRY, BEST_ALIAS)
    return top, holder


def _check_models(client: MlflowClient, experiment_id: str, runs) -> None:
    for run in runs:
        tags = run.data.tags
        if tags["lamdagent.status"] != "ok":
            continue
        model = client.get_logged_model(tags["lamdagent.model_id"])
        metrics = {m.key: m for m in model.metrics}
        own = {"val.score", "val.arith", "val.choice", "val.facts"} | ({"train.loss"} if "train.loss" in run.data.metrics else set())
        assert sorted(m.key for m in model.metrics) == sorted(own), tags["lamdagent.name"]  # one row each: costs and curves stay on the run
        assert metrics["val.score"].value == pytest.approx(run.data.metrics["val.score"])
        assert metrics["val.arith"].dataset_name == "demo/val" and metrics["val.arith"].dataset_digest
        assert model.params["pipeline"] == tags["lamdagent.pipeline"]
        assert json.loads(model.tags["mlflow.modelVersions"]) == [{"name": REGISTRY, "version": int(tags["lamdagent.model_version"])}]
        (version,) = client.search_model_versions(f"run_id = '{run.info.run_id}'")
        assert float(version.tags[SCORE_TAG]) == pytest.approx(run.data.metrics["val.score"])
        assert tags["lamdagent.pipeline"] in version.description
        inputs = client.get_run(run.info.run_id).inputs  # (search_runs leaves out the model inputs)
        contexts = {(d.dataset.name, t.value) for d in inputs.dataset_inputs for t in d.tags}
        assert ("demo/val", "evaluation") in contexts
        for input_run in json.loads(tags["lamdagent.inputs"]):
            assert f"#/experiments/{experiment_id}/runs/{input_run}" in tags[NOTE]  # a link a person can click
            input_model = client.get_run(input_run).data.tags["lamdagent.model_id"]
            assert input_model in {m.model_id for m in inputs.model_inputs}
        assert [m.model_id for m in client.get_run(run.info.run_id).outputs.model_outputs] == [model.model_id]
        assert "pipeline.png" in {a.path for a in client.list_artifacts(run.info.run_id)}
        if tags.get("lamdagent.action_type") == "sft":
            profile = next(json.loads(d.dataset.profile) for d in inputs.dataset_inputs if d.dataset.name.endswith("/train"))
            assert profile["num_rows"] > 0
            assert model.params["learning_rate"] == "0.003"


@pytest.mark.slow
def test_models_are_first_class_and_best_follows_across_a_resume(tracking_uri, agent, monkeypatch):
    from lamdagent.exploration import runner as runner_mod

    run_id, _, _ = _explore([*FAST, *agent, "iterations=2"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("lamdagent/demo")
    assert "Registry" in experiment.tags[NOTE] and f"#/models/{REGISTRY}" in experiment.tags[NOTE]
    runs = _runs(client, experiment.experiment_id, run_id)
    assert len(runs) == 6
    _check_models(client, experiment.experiment_id, runs)
    top, holder = _best_version(client)
    assert holder.tags[SCORE_TAG] == top.tags[SCORE_TAG]  # (tiny models tie: the first best keeps it)
    parent = client.get_run(run_id)
    best = max(r.data.metrics["val.score"] for r in runs)
    named = client.get_run(parent.data.tags["lamdagent.best_run"])
    assert named.data.metrics["val.score"] == best and parent.data.tags["lamdagent.best_model"] == named.data.tags["lamdagent.name"]
    assert parent.data.metrics["best.val.score"] == pytest.approx(best)
    assert "val.score" not in parent.data.metrics  # the row of an exploration shows its best, not its last model's score
    assert named.info.run_id in parent.data.tags[NOTE]

    # resume: iteration 3's model scores above every other, so the alias and the exploration's best move to it
    real, making = runner_mod.weighted_score, []  # making: the kinds of the steps being produced
    monkeypatch.setattr(runner_mod, "weighted_score", lambda s, w: real(s, w) + (100.0 if making and making[-1] == Kind.ACTION else 0.0))
    produce = runner_mod.Runner.produce

    def boosted(self, step, **kwargs):
        making.append(step.kind)
        try:
            return produce(self, step, **kwargs)
        finally:
            making.pop()

    monkeypatch.setattr(runner_mod.Runner, "produce", boosted)
    _explore(["iterations=3"], resume=run_id)
    runs = _runs(client, experiment.experiment_id, run_id)
    m3 = next(r for r in runs if r.data.tags["lamdagent.name"] == "m3")
    assert m3.data.metrics["val.score"] >= 100
    _check_models(client, experiment.experiment_id, runs)
    top, holder = _best_version(client)
    assert holder.version == top.version and holder.run_id == m3.info.run_id
    parent = client.get_run(run_id)
    assert parent.data.tags["lamdagent.best_run"] == m3.info.run_id and parent.data.tags["lamdagent.best_model"] == "m3"
    assert parent.data.metrics["best.val.score"] == pytest.approx(m3.data.metrics["val.score"])


def test_the_best_alias_moves_back_when_its_version_is_withdrawn(tracking_uri, tmp_path):
    """A killed run's version is deleted on resume (discard_models): `best` goes to the best that remains."""
    tracker = Tracker(tracking_uri)
    experiment = tracker.experiment("unit")
    parent = tracker.start_exploration(experiment, "unit", {}, {})
    versions = {}
    for name, score in (("a", 1.0), ("b", 2.0), ("c", 0.5)):
        run = tracker.start_child(parent, Kind.ACTION, 1, name, {}, experiment_id=experiment)
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        registered = tracker.log_model(run, experiment, folder, "unit-models", name, tags={})
        moved = tracker.models.score_version("unit-models", registered["model_version"], score, name, name)
        assert moved == (name != "c")  # c scores below b
        versions[name] = (run, registered["model_version"])
    assert tracker.models.best("unit-models") == (versions["b"][1], 2.0)
    logged = tracker.client.get_logged_model(tracker.client.search_model_versions(f"run_id = '{versions['b'][0]}'")[0].source.split("/")[-1])
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": "unit-models", "version": int(versions["b"][1])}]
    tracker.discard_models(versions["b"][0], experiment)
    assert tracker.models.best("unit-models") == (versions["a"][1], 1.0)


def test_held_out_scores_are_the_models_metrics_on_their_datasets():
    """`lamdagent report` logs test.* / ood.* against the LoggedModel of the run that made it (not of a reuse)."""
    from lamdagent.config import load_config
    from lamdagent.exploration.study import Study
    from lamdagent.reporting.held_out import _measured
    from lamdagent.tracking import Record

    study = Study(load_config("demo", [*FAST, "data.test_size=4"]))
    made = Record("r1", "action", 1, "m1", "ok", model_id="m-1")
    measured = _measured(study, made, {"test.arith": 0.5, "test.score": 1.0})
    assert measured.model_id == "m-1"
    assert measured.of("test.arith")["dataset_name"] == "demo/test" and measured.of("test.score")["dataset_digest"]
    assert _measured(study, Record("r2", "action", 2, "m2", "cached", model_id="m-1"), {"test.arith": 0.5}) is None
