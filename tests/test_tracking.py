"""The tracker, through MLflow's public client: a produced model's folder moved (not copied) into
its LoggedModel on a local store, text artifacts, a step's results and end (and what a process
that dies between them leaves), the cache lookup by fingerprint, and the sqlite store's journal."""

from __future__ import annotations

import mlflow
import pytest

from lamdagent import tracking as tr
from lamdagent.tracking import Kind, Status, Tracker


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
    run = tracker.start_child(parent, Kind.ACTION, 1, "m1", {}, experiment_id=experiment)
    source = _folder(tmp_path / "work" / "model")
    tags = tracker.log_model(run, experiment, source, "unit-models", "m1", tags={"lamdagent.pipeline": "p"}, move=move)

    assert source.exists() is not move  # moved: no second copy; else the caller's folder is kept
    stored = tracker.model_dir(tags["model_id"])
    assert (stored / "weights.bin").read_bytes() == b"\x01" * 1000 and (stored / "config.json").exists()
    version = tracker.client.get_model_version("unit-models", tags["model_version"])
    assert version.source == f"models:/{tags['model_id']}" and version.run_id == run
    assert str(tracker.client.get_logged_model(tags["model_id"]).status) == "READY"
    assert tags["registered_model"] == "unit-models"


def test_a_tracker_registers_in_its_own_store_when_another_tracker_was_made_since(store, tmp_path):
    tracker, experiment, parent = store
    other = Tracker(f"sqlite:///{tmp_path / 'other.db'}")  # sets the process's tracking URI to its store
    run = tracker.start_child(parent, Kind.ACTION, 1, "m1", {}, experiment_id=experiment)
    tags = tracker.log_model(run, experiment, _folder(tmp_path / "work" / "model"), "unit-models", "m1", tags={})
    assert tracker.client.get_model_version("unit-models", tags["model_version"]).source == f"models:/{tags['model_id']}"
    assert other.client.search_registered_models() == []  # nothing registered in the other store


def test_text_artifacts_are_written_whole_into_the_run(store):
    tracker, experiment, parent = store
    run = tracker.start_child(parent, Kind.ACTION, 1, "m1", {}, experiment_id=experiment)
    tracker.log_jsons(run, {"predictions/val/a.json": [{"x": 1}], "predictions/val/b.json": {"y": "z"}})
    tracker.log_text(run, "first", tr.MEMORY_ARTIFACT)
    tracker.log_text(run, "second", tr.MEMORY_ARTIFACT)  # a rewrite replaces the file

    assert mlflow.artifacts.load_dict(f"runs:/{run}/predictions/val/a.json") == [{"x": 1}]
    assert mlflow.artifacts.load_dict(f"runs:/{run}/predictions/val/b.json") == {"y": "z"}
    assert tracker.memory(run) == "second"
    listed = [f.path for f in tracker.client.list_artifacts(run, "agent")]
    assert listed == [tr.MEMORY_ARTIFACT]  # no partial file left beside it


def test_fingerprint_lookup_finds_the_newest_finished_run_that_keeps_its_weights(store):
    tracker, experiment, parent = store

    def run(fp: str, status: str, **tags) -> str:
        run_id = tracker.start_child(parent, Kind.ACTION, 1, "m", {"fingerprint": fp}, experiment_id=experiment)
        tracker.finish_child(run_id, status, tags=tags)
        return run_id

    assert tracker.find_by_fingerprint(experiment, "fp-1") is None
    run("fp-1", Status.FAILED)
    assert tracker.find_by_fingerprint(experiment, "fp-1") is None  # a failed run made no model
    run("fp-1", Status.OK)  # finished, but it holds no model: never reused
    older = run("fp-1", Status.OK, model_id="m-1")
    newer = run("fp-1", Status.OK, model_id="m-2")
    run("fp-2", Status.OK, model_id="m-3")
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
    from lamdagent.exploration.runner import Runner, Step
    from lamdagent.exploration.seeds import prepare_base
    from lamdagent.exploration.study import Study
    from tests.conftest import FAST

    cfg = load_config("demo", [*FAST, "data.val_size=2"])
    tracker = Tracker(tracking_uri)
    experiment = tracker.experiment(cfg.name)
    runner = Runner(Study(cfg), tracker, tracker.start_exploration(experiment, cfg.name, {}, {}), experiment, Display(Console(quiet=True)),
                    base=prepare_base(cfg))
    log = tracker.log

    def store_down_after_registration(run_id, *args, tags=None, **kwargs):
        if tags and "model_id" in tags:
            raise MlflowException("store down")
        return log(run_id, *args, tags=tags, **kwargs)

    monkeypatch.setattr(tracker, "log", store_down_after_registration)
    produced = runner.produce(Step.of_base(runner.base, Kind.SEED), finish=True)

    assert produced.status == Status.FAILED and "store down" in produced.error
    run = tracker.client.get_run(produced.run_id)
    assert run.info.status == "FAILED" and run.data.tags["lamdagent.status"] == Status.FAILED
    assert tracker.client.search_model_versions(f"run_id = '{produced.run_id}'") == []  # registered, then withdrawn
    (logged,) = tracker.client.search_logged_models([experiment], filter_string=f"source_run_id = '{produced.run_id}'")
    assert logged.tags["lamdagent.status"] == Status.FAILED


def test_a_run_whose_results_were_written_but_never_ended_is_interrupted(store, monkeypatch):
    """Results and end are two writes (log_batch, then set_terminated): a process that dies in
    between leaves a run that reads back as running, so resume marks it killed and redoes it."""
    tracker, experiment, parent = store
    run_id = tracker.start_child(parent, Kind.ACTION, 1, "m", {}, experiment_id=experiment)

    def died(*args, **kwargs):
        raise KeyboardInterrupt("killed between the two writes")

    monkeypatch.setattr(tracker.client, "set_terminated", died)
    with pytest.raises(KeyboardInterrupt):
        tracker.log(run_id, metrics={"val.a": 0.5}, tags={"arch": "llama"}, finish=Status.OK)
    monkeypatch.undo()
    run = tracker.client.get_run(run_id)
    assert run.data.tags["lamdagent.status"] == Status.OK and run.info.status == "RUNNING"  # the batch landed, the end did not
    assert tracker.record(run_id).status == Status.RUNNING and not tracker.record(run_id).done
    assert tracker.mark_interrupted(parent, experiment) == [run_id]
    run = tracker.client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["lamdagent.status"] == Status.KILLED


def test_the_status_goes_in_the_last_batch_of_a_long_write(store):
    """More than MLflow's 1,000 metrics per batch: every point lands, and the run ends after all of them."""
    tracker, experiment, parent = store
    run_id = tracker.start_child(parent, Kind.ACTION, 1, "m", {}, experiment_id=experiment)
    tracker.log(run_id, metrics={"val.a": 0.5}, series={"train.loss": [(step, 1.0 / (step + 1)) for step in range(2500)]}, finish=Status.OK)
    assert len(tracker.client.get_metric_history(run_id, "train.loss")) == 2500
    record = tracker.record(run_id)
    assert record.status == Status.OK and record.done and tracker.client.get_run(run_id).info.status == "FINISHED"


def test_a_failed_write_leaves_the_run_unfinished(store):
    from mlflow.entities import Param
    from mlflow.exceptions import MlflowException

    tracker, experiment, parent = store
    run_id = tracker.start_child(parent, Kind.ACTION, 1, "m", {}, experiment_id=experiment)
    tracker.client.log_batch(run_id, params=[Param("lr", "1")])
    with pytest.raises(MlflowException, match="Changing param values"):
        tracker.log(run_id, metrics={"val.a": 1.0}, params={"lr": "2"}, finish=Status.OK)
    run = tracker.client.get_run(run_id)
    assert run.info.status == "RUNNING" and run.data.tags["lamdagent.status"] == Status.RUNNING
    assert tracker.record(run_id).status == Status.RUNNING  # redone on resume


def test_a_sqlite_store_commits_through_a_write_ahead_log(tmp_path, monkeypatch):
    from sqlalchemy import create_engine, text

    def modes(uri: str) -> tuple[str, int]:
        Tracker(uri).experiment("x")  # the store exists, with MLflow's tables
        with create_engine(uri).connect() as connection:  # a new connection to the store's file, as MLflow opens them
            return connection.execute(text("PRAGMA journal_mode")).scalar(), connection.execute(text("PRAGMA synchronous")).scalar()

    assert modes(f"sqlite:///{tmp_path / 'a.db'}") == ("wal", 1)  # NORMAL: no disk sync per commit
    monkeypatch.setenv("LAMDAGENT_SQLITE_WAL", "0")
    assert modes(f"sqlite:///{tmp_path / 'b.db'}") == ("delete", 2)  # sqlite's defaults: rollback journal, FULL


def test_explorations_that_log_one_new_dataset_at_once_all_link_it(tracking_uri):
    """Two explorations of one study log the same new dataset together: the store's unique
    constraint refuses all but one insert (reproduced here on 11 of 30 runs without the retry);
    every run must still end up with the dataset as its input."""
    import threading

    from mlflow import MlflowClient

    from lamdagent.tracking.models import Models, dataset

    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("race")
    ref = dataset("race-train", "race-data", [{"prompt": str(i)} for i in range(5)], "train")
    runs = [client.create_run(experiment).info.run_id for _ in range(6)]
    start, errors = threading.Barrier(len(runs)), []

    def describe(run_id):
        models = Models(MlflowClient(tracking_uri), tracking_uri)
        model_id = models.client.create_logged_model(experiment, source_run_id=run_id).model_id
        start.wait()
        try:
            models.describe(run_id, model_id, {}, [ref], [], [])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=describe, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all([d.dataset.digest for d in client.get_run(run).inputs.dataset_inputs] == [ref.digest] for run in runs)


def test_explorations_that_start_one_study_at_once_all_describe_it(tracking_uri):
    """Explorations of one study started together all write its description and shared views
    (experiment tags: the store reads, then inserts): without the retry the losers' inserts are
    refused by the unique constraint (it failed CI's three-explorations test; 17 of 60 plain writes in a trial)."""
    import threading

    from mlflow import MlflowClient

    from lamdagent.tracking.models import NOTE, Models

    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("race")
    start, errors = threading.Barrier(6), []

    def describe():
        models = Models(MlflowClient(tracking_uri), tracking_uri)
        start.wait()
        try:
            models.describe_study(experiment, "the study")
            models.share_runs_view(experiment, ["metrics.`val.score`"], "run")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=describe) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert client.get_experiment(experiment).tags[NOTE] == "the study"
