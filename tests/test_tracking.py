"""The tracker's write paths that skip MLflow's generic ones on a local store: a produced model's
folder moved (not copied) into its LoggedModel, text artifacts written in place, a step's end in
one transaction, and the cache lookup by fingerprint in one SQL query. Each must give what the
generic path gives."""

from __future__ import annotations

import mlflow
import pytest

from lamdagent import tracking as tr
from lamdagent.tracking.tracker import Tracker


@pytest.fixture
def store(tracking_uri):
    tracker = Tracker(tracking_uri)
    experiment = tracker.experiment("unit")
    parent = tracker.start_exploration(experiment, "unit", {}, {})
    return tracker, experiment, parent


def _folder(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "weights.bin").write_bytes(b"\x01" * 1000)
    return path


@pytest.mark.parametrize("move", [True, False])
def test_log_model_moves_a_working_copy_and_registers_it(store, tmp_path, move):
    tracker, experiment, parent = store
    run = tracker.start_child(parent, "action", 1, "m1", {}, experiment_id=experiment)
    source = _folder(tmp_path / "work" / "model")
    tags = tracker.log_model(run, experiment, source, "unit-models", "m1", tags={"lamdagent.pipeline": "p"}, move=move)

    assert source.exists() is not move  # moved: no second copy; else the caller's folder is kept
    stored = tracker.model_dir(tags["model_id"])
    assert (stored / "weights.bin").read_bytes() == b"\x01" * 1000 and (stored / "config.json").exists()
    version = tracker.client.get_model_version("unit-models", tags["model_version"])
    assert version.source == f"models:/{tags['model_id']}" and version.run_id == run
    assert str(tracker.client.get_logged_model(tags["model_id"]).status) == "READY"
    assert tags["registered_model"] == "unit-models"


def test_text_artifacts_are_written_whole_into_the_run(store):
    tracker, experiment, parent = store
    run = tracker.start_child(parent, "action", 1, "m1", {}, experiment_id=experiment)
    tracker.log_jsons(run, {"predictions/val/a.json": [{"x": 1}], "predictions/val/b.json": {"y": "z"}})
    tracker.log_text(run, "first", tr.MEMORY_ARTIFACT)
    tracker.log_text(run, "second", tr.MEMORY_ARTIFACT)  # a rewrite replaces the file

    assert mlflow.artifacts.load_dict(f"runs:/{run}/predictions/val/a.json") == [{"x": 1}]
    assert mlflow.artifacts.load_dict(f"runs:/{run}/predictions/val/b.json") == {"y": "z"}
    assert tracker.memory(run) == "second"
    listed = [f.path for f in tracker.client.list_artifacts(run, "agent")]
    assert listed == [tr.MEMORY_ARTIFACT]  # no partial file left beside it
    other = Tracker(tracker.tracking_uri)  # a tracker that did not start the run reads its location
    other.log_text(run, "third", tr.MEMORY_ARTIFACT)
    assert tracker.memory(run) == "third"


def test_fingerprint_lookup_finds_the_newest_finished_run_that_keeps_its_weights(store):
    tracker, experiment, parent = store

    def run(fp: str, status: str, **tags) -> str:
        run_id = tracker.start_child(parent, "action", 1, "m", {"fingerprint": fp}, experiment_id=experiment)
        tracker.finish_child(run_id, status, tags=tags)
        return run_id

    assert tracker.find_by_fingerprint(experiment, "fp-1") is None
    run("fp-1", tr.FAILED)
    assert tracker.find_by_fingerprint(experiment, "fp-1") is None  # a failed run made no model
    older = run("fp-1", tr.OK)
    newer = run("fp-1", tr.OK, model_id="m-2")
    run("fp-2", tr.OK)
    found = tracker.find_by_fingerprint(experiment, "fp-1")
    assert found.run_id == newer and found.model_id == "m-2" and found.fingerprint == "fp-1"
    tracker.log(newer, tags={"weights": tr.FREED})
    assert tracker.find_by_fingerprint(experiment, "fp-1").run_id == older  # freed weights are not reused
    tracker.client.delete_run(older)
    assert tracker.find_by_fingerprint(experiment, "fp-1") is None  # deleted runs do not count
    assert tracker.find_by_fingerprint(tracker.experiment("other"), "fp-2") is None  # nor other studies' runs


def test_a_failed_write_after_registration_leaves_no_registered_model(tracking_uri, monkeypatch):
    from mlflow.exceptions import MlflowException
    from rich.console import Console

    from lamdagent.config import load_config
    from lamdagent.console import Display
    from lamdagent.exploration.runner import Runner
    from lamdagent.exploration.seeds import prepare_base
    from lamdagent.exploration.study import Study
    from tests.conftest import FAST

    cfg = load_config("demo", [*FAST, "data.val_size=2"])
    tracker = Tracker(tracking_uri)
    experiment = tracker.experiment(cfg.name)
    runner = Runner(Study(cfg), tracker, tracker.start_exploration(experiment, cfg.name, {}, {}), experiment, Display(Console(quiet=True)))
    runner.base_dir, fp, copy_base = prepare_base(cfg)
    log = tracker.log

    def store_down_after_registration(run_id, *args, tags=None, **kwargs):
        if tags and "model_id" in tags:
            raise MlflowException("store down")
        return log(run_id, *args, tags=tags, **kwargs)

    monkeypatch.setattr(tracker, "log", store_down_after_registration)
    produced = runner.produce(kind="seed", iteration=0, name="base", fp=fp, pipeline="base", inputs=[], build=copy_base, finish=True)

    assert produced.status == tr.FAILED and "store down" in produced.error
    run = tracker.client.get_run(produced.run_id)
    assert run.info.status == "FAILED" and run.data.tags["lamdagent.status"] == tr.FAILED
    assert tracker.client.search_model_versions(f"run_id = '{produced.run_id}'") == []  # registered, then withdrawn
    (logged,) = tracker.client.search_logged_models([experiment], filter_string=f"source_run_id = '{produced.run_id}'")
    assert logged.tags["lamdagent.status"] == tr.FAILED


def _end_of_step(tracker, run_id: str, one_transaction: bool) -> None:
    """A step's results and its end: through store_writes, or MLflow's calls."""
    from mlflow.entities import Metric, Param, RunTag

    from lamdagent.tracking.tracker import store_writes

    metrics = [Metric("val.a", 0.5, 1000, 0), Metric("val.nan", float("nan"), 1000, 0), Metric("val.inf", float("inf"), 1000, 0),
               *[Metric("train.loss", 3.0 - step / 10, 1000 + step, step) for step in range(5)], Metric("train.loss", 2.0, 999, 2)]
    params = [Param("learning_rate", "0.0001"), Param("old", "same")]
    tags = [RunTag("lamdagent.status", tr.OK), RunTag("lamdagent.arch", "llama"), RunTag("lamdagent.arch", "llama-2")]
    if one_transaction:
        assert store_writes.finish(tracker.client, run_id, metrics, params, tags, run_status="FINISHED") is True
    else:
        tracker.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        tracker.client.set_terminated(run_id, "FINISHED")


def test_a_step_ended_in_one_transaction_reads_back_as_through_mlflow_calls(store):
    from mlflow.entities import Param

    tracker, experiment, parent = store
    seen = []
    for one_transaction in (False, True):
        run_id = tracker.start_child(parent, "action", 1, "m", {"arch": "old"}, experiment_id=experiment)
        tracker.client.log_batch(run_id, params=[Param("old", "same")])  # logged before: kept
        _end_of_step(tracker, run_id, one_transaction)
        run = tracker.client.get_run(run_id)
        history = sorted((m.step, m.timestamp, m.value) for m in tracker.client.get_metric_history(run_id, "train.loss"))
        tags = {k: v for k, v in run.data.tags.items() if k.startswith("lamdagent.") and k != "lamdagent.iteration"}
        metrics = {k: repr(v) for k, v in run.data.metrics.items()}  # nan == nan
        seen.append((run.info.status, run.info.end_time is not None, run.data.params, metrics, history, tags))
    assert seen[0] == seen[1]
    status, ended, params, metrics, history, tags = seen[1]
    assert (status, ended) == ("FINISHED", True)
    assert metrics["train.loss"] == "2.6" and metrics["val.nan"] == "nan" and len(history) == 6  # the latest step wins
    assert tags["lamdagent.arch"] == "llama-2" and params == {"learning_rate": "0.0001", "old": "same"}


def test_a_step_ended_in_one_transaction_writes_nothing_when_it_fails(store):
    from mlflow.entities import Param
    from mlflow.exceptions import MlflowException


    tracker, experiment, parent = store
    run_id = tracker.start_child(parent, "action", 1, "m", {}, experiment_id=experiment)
    tracker.client.log_batch(run_id, params=[Param("lr", "1")])
    with pytest.raises(MlflowException, match="Changing param values"):
        tracker.log(run_id, metrics={"val.a": 1.0}, params={"lr": "2"}, tags={"status": tr.OK}, finish=tr.OK)
    run = tracker.client.get_run(run_id)
    assert run.info.status == "RUNNING" and "val.a" not in run.data.metrics and run.data.tags["lamdagent.status"] == tr.RUNNING


def test_a_sqlite_store_commits_through_a_write_ahead_log(tmp_path, monkeypatch):
    from sqlalchemy import text

    def modes(uri: str) -> tuple[str, int]:
        with Tracker(uri).client._tracking_client.store.engine.connect() as connection:
            return connection.execute(text("PRAGMA journal_mode")).scalar(), connection.execute(text("PRAGMA synchronous")).scalar()

    assert modes(f"sqlite:///{tmp_path / 'a.db'}") == ("wal", 1)  # NORMAL: no disk sync per commit
    monkeypatch.setenv("LAMDAGENT_SQLITE_WAL", "0")
    assert modes(f"sqlite:///{tmp_path / 'b.db'}") == ("delete", 2)  # sqlite's defaults: rollback journal, FULL
