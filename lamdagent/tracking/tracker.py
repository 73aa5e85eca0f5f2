"""The tracker: every read and write of the tracking server, through MLflow's public client API.

Experiment = study. Parent run = exploration. Every seed model, action, baseline or replay is a
nested run tagged under `lamdagent.` (tracking/schema.py, docs/tracking.md). Models are MLflow 3
LoggedModels, registered in the Model Registry without a second copy.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag

from lamdagent.errors import UserError
from lamdagent.faults import checkpoint
from lamdagent.files import cache_dir, staged_dir
from lamdagent.tracking import sqlite
from lamdagent.tracking.models import Measured, Models
from lamdagent.tracking.outage import Patience, PatientClient, is_remote, shorten_mlflow_retries
from lamdagent.tracking.schema import (
    CONFIG_ARTIFACT,
    DONE,
    FREED,
    MEMORY_ARTIFACT,
    STUDY_MODELS,
    Kind,
    Record,
    Status,
    experiment_name,
    tag,
)
from lamdagent.tracking.ui_links import without_credentials

BATCH = 1000  # MLflow's limit of metrics per log_batch
TAGS_PER_BATCH = 100  # and of tags


class RunNotFound(UserError):
    """The tracking store has no run of this id (a store that cannot be reached is an outage instead)."""


class WeightsFreed(Exception):
    """The retention policy deleted this model's weights; the model must be rebuilt."""


class Tracker:
    """All reads and writes of the tracking server go through here."""

    def __init__(self, tracking_uri: str | None = None):
        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        self.tracking_uri = mlflow.get_tracking_uri()
        sqlite.tune(self.tracking_uri)  # write-ahead log: a commit costs no disk sync
        if is_remote(self.tracking_uri):
            shorten_mlflow_retries()
        self.patience = Patience(without_credentials(self.tracking_uri))  # its limit and console: set by the exploration
        self.client = PatientClient(MlflowClient(self.tracking_uri), self.patience)  # every call waits out an outage (outage.py)
        self._registered: set[str] = set()  # registered model names known to exist (one read per name)
        self.models = Models(self.client, self.tracking_uri, self.patience.call)  # the model-centric records: LoggedModel params and inputs, the `best` alias

    # --- studies and explorations -------------------------------------------------------------
    def experiment(self, study: str) -> str:
        """The experiment of a study, created on first use (opens on the training-runs view)."""
        name = experiment_name(study)
        found = self.client.get_experiment_by_name(name)
        if found:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, tags={"mlflow.experimentKind": "custom_model_development", tag("study"): study})
        except mlflow.exceptions.MlflowException:  # another process created it meanwhile
            return self.client.get_experiment_by_name(name).experiment_id

    def find_experiment(self, study: str) -> str:
        """The experiment id of an existing study, or a one-line UserError."""
        found = self.client.get_experiment_by_name(experiment_name(study))
        if found is None:
            there = self.studies()
            held = f"its studies: {', '.join(there[:10])}{', ...' if len(there) > 10 else ''}" if there else "it holds none"
            raise UserError(f"no study {study!r} in the tracking store {without_credentials(self.tracking_uri)} ({held}); "
                            f"run `lamdagent explore --study {study}` first")
        return found.experiment_id

    def studies(self) -> list[str]:
        """The studies the store holds (by their experiments' names), sorted."""
        prefix = experiment_name("")
        found = self.client.search_experiments(filter_string=f"name LIKE '{prefix}%'", max_results=1000)
        return sorted(e.name[len(prefix):] for e in found)

    def start_exploration(self, experiment_id: str, study: str, config: dict, params: dict[str, str], run_name: str | None = None,
                          kind: Kind = Kind.EXPLORATION, tags: dict[str, str] | None = None) -> str:
        """A parent run holding its resolved config: an exploration, or a group of baselines, replays or a report."""
        all_tags = {tag("kind"): str(kind), tag("study"): study, **{tag(k): v for k, v in (tags or {}).items()}}
        run_id = self._create_run(experiment_id, run_name, all_tags)
        self.client.log_batch(run_id, params=[Param(k[:250], v[:6000]) for k, v in params.items()])
        self.client.log_text(run_id, json.dumps(config, indent=2), CONFIG_ARTIFACT)
        return run_id

    def latest_exploration(self, study: str) -> str:
        """The run id of the study's most recently started exploration."""
        found = self.client.get_experiment_by_name(experiment_name(study))
        runs = self.client.search_runs([found.experiment_id], f"tags.`{tag('kind')}` = '{Kind.EXPLORATION}'",
                                       order_by=["attributes.start_time DESC"], max_results=1) if found else []
        if not runs:
            raise UserError(f"no exploration of study {study!r} in the tracking store {self.tracking_uri} to resume")
        return runs[0].info.run_id

    def run(self, run_id: str) -> Run:
        """A run as MLflow stores it (info, tags, params, latest metrics). RunNotFound (a UserError)
        when the store has no such run; an unreachable server is an outage, never "not found"."""
        try:
            return self.client.get_run(run_id)
        except mlflow.exceptions.MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise RunNotFound(f"no run {run_id!r} in the tracking store {without_credentials(self.tracking_uri)}") from None
            raise

    def exploration_config(self, run_id: str) -> dict:
        return json.loads(self.patience.call(mlflow.artifacts.load_text, f"runs:/{run_id}/{CONFIG_ARTIFACT}"))

    def metric_steps(self, run_id: str, key: str) -> set[int]:
        """The steps at which the run logged `key`."""
        return {m.step for m in self.client.get_metric_history(run_id, key)}

    def lease(self, run_id: str, timeout: float, heartbeat: float):
        """The one-process-at-a-time lease on an exploration (tracking/lease.py), acquired."""
        from lamdagent.tracking.lease import Lease

        return Lease(self.client.raw, run_id, timeout, heartbeat).acquire()  # a heartbeat never waits: a missed one is retried at the next

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def close(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status)

    # --- nested runs ----------------------------------------------------------------------------
    def start_child(self, parent: str, kind: Kind, iteration: int, name: str, tags: dict[str, str], experiment_id: str,
                    run_name: str | None = None) -> str:
        """A nested run of `parent` (in `experiment_id`), `running` until it is finished."""
        all_tags = {
            "mlflow.parentRunId": parent,
            tag("kind"): str(kind),
            tag("iteration"): str(iteration),
            tag("name"): name,
            tag("status"): str(Status.RUNNING),
            **{tag(k): v for k, v in tags.items()},
        }
        return self._create_run(experiment_id, run_name or name, all_tags)

    def _create_run(self, experiment_id: str, run_name: str | None, tags: dict[str, str]) -> str:
        """A new run, made once even when an outage loses the server's answer: the run carries a
        request id (`lamdagent.request`), looked for before the request is sent again."""
        request = uuid.uuid4().hex

        def made_earlier():
            found = self.client.raw.search_runs([experiment_id], f"tags.`{tag('request')}` = '{request}'", max_results=1)
            return found[0] if found else None

        run = self.patience.call(self.client.raw.create_run, experiment_id, run_name=run_name, tags={**tags, tag("request"): request},
                                 recover=made_earlier)
        return run.info.run_id

    def log(self, run_id: str, metrics: dict[str, float] | None = None, params: dict | None = None, tags: dict[str, str] | None = None, step: int = 0,
            series: dict[str, list[tuple[int, float]]] | None = None, *, finish: Status | None = None,
            measured: Measured | None = None) -> None:
        """One write of metrics, params, `lamdagent.` tags and metric series (name -> (step, value)).
        `finish`: the run also ends with this status: the `lamdagent.status` tag goes in the last
        batch and MLflow's end only after it (Status.mlflow), so a run whose process died in between
        reads back as interrupted (Record.from_run) and is redone, never half-counted. `measured`: the
        model's own metrics among them (Measured.of) are also the LoggedModel's (MLflow 3 model
        metrics), with the dataset each was measured on; a series (per-step curve) stays on the run."""
        now = int(time.time() * 1000)
        on = measured.of if measured else (lambda key: {})
        values = [Metric(k, float(v), now, step, **on(k)) for k, v in (metrics or {}).items()]
        values += [Metric(name, float(v), now, at) for name, points in (series or {}).items() for at, v in points]
        params = [Param(k, str(v)) for k, v in (params or {}).items()]
        tags = [RunTag(tag(k), str(v)) for k, v in {**(tags or {}), **({"status": finish} if finish else {})}.items()]
        metric_batches = [values[i : i + BATCH] for i in range(0, len(values), BATCH)] or [[]]
        tag_batches = [tags[i : i + TAGS_PER_BATCH] for i in range(0, len(tags), TAGS_PER_BATCH)] or [[]]
        for i, batch in enumerate(metric_batches):
            self.client.log_batch(run_id, metrics=batch, params=params if i == 0 else [], tags=tag_batches[0] if len(metric_batches) == i + 1 else [])
        for batch in tag_batches[1:]:
            self.client.log_batch(run_id, tags=batch)
        if finish is not None:
            self.client.set_terminated(run_id, Status(finish).mlflow)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.log_texts(run_id, {path: text})

    def log_json(self, run_id: str, value, path: str) -> None:
        self.log_texts(run_id, {path: _json(value)})

    def log_jsons(self, run_id: str, files: dict[str, object]) -> None:
        """Several JSON artifacts (path -> value) in one upload."""
        self.log_texts(run_id, {path: _json(value) for path, value in files.items()})

    def log_texts(self, run_id: str, files: dict[str, str]) -> None:
        """Text artifacts (path -> text) in one upload."""
        with tempfile.TemporaryDirectory() as staging:
            for path, text in files.items():
                target = Path(staging) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            self.client.log_artifacts(run_id, staging)

    def log_files(self, run_id: str, local_path: Path, artifact_path: str | None = None) -> None:
        """A local file or folder as artifacts of the run (under `artifact_path`)."""
        local_path = Path(local_path)
        if local_path.is_dir():
            self.client.log_artifacts(run_id, str(local_path), artifact_path)
        else:
            self.client.log_artifact(run_id, str(local_path), artifact_path)

    def finish_child(self, run_id: str, status: Status, error: str = "", tags: dict[str, str] | None = None) -> None:
        """The run's status (with any last `lamdagent.` tags) and its end."""
        self.log(run_id, tags={**(tags or {}), **({"error": error[:4000]} if error else {})}, finish=status)

    def children(self, parent_id: str, experiment_id: str) -> list[Record]:
        """Every nested run of an exploration, oldest iteration first (benchmarks/history.py times it)."""
        records = self.search(experiment_id, f"tags.mlflow.parentRunId = '{parent_id}'")
        return sorted(records, key=lambda r: (r.iteration, r.kind != Kind.SEED, r.run_id))

    def search_runs(self, experiment_id: str, filter_string: str = "") -> list[Run]:
        """Every run of the experiment matching the filter (all pages)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs([experiment_id], filter_string, max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def search(self, experiment_id: str, filter_string: str = "") -> list[Record]:
        return [Record.from_run(run) for run in self.search_runs(experiment_id, filter_string)]

    def record(self, run_id: str) -> Record:
        return Record.from_run(self.run(run_id))

    def find_by_fingerprint(self, experiment_id: str, fingerprint: str, evaluation: dict[str, str] | None = None) -> Record | None:
        """A finished run of the study that holds exactly this model with its weights (see
        retention), if any: one whose validation scores were made under `evaluation` (task ->
        definition key) when there is one, else the newest run that made the model."""
        runs = self.client.search_runs([experiment_id], f"tags.`{tag('fingerprint')}` = '{fingerprint}'",
                                       order_by=["attributes.start_time DESC"], max_results=200)
        usable = [Record.from_run(r) for r in runs if r.info.status == "FINISHED" and r.data.tags.get(tag("weights")) != FREED
                  and r.data.tags.get(tag("status")) in DONE and r.data.tags.get(tag("model_id"))]
        same = next((r for r in usable if evaluation is not None and r.evaluation == evaluation), None)
        return same or next((r for r in usable if r.status == Status.OK), None)

    def find_screening(self, experiment_id: str, fingerprint: str) -> Record | None:
        """The newest finished data screening of the study with this fingerprint, if any."""
        runs = self.client.search_runs([experiment_id], f"tags.`{tag('fingerprint')}` = '{fingerprint}' and tags.`{tag('kind')}` = '{Kind.SCREENING}'",
                                       order_by=["attributes.start_time DESC"], max_results=50)
        return next((r for r in map(Record.from_run, runs) if r.status == Status.OK), None)

    def start_and_finish(self, parent: str, experiment_id: str, kind: Kind, name: str, tags: dict[str, str], metrics: dict[str, float],
                         status: Status) -> str:
        """A nested run written whole: started, its metrics, ended with `status`."""
        run_id = self.start_child(parent, kind, 0, name, tags, experiment_id=experiment_id)
        self.log(run_id, metrics=metrics, finish=status)
        return run_id

    def log_table(self, run_id: str, columns: dict[str, list], path: str) -> None:
        """A table artifact of the run (MLflow's table: shown and compared in the UI), column -> values."""
        self.client.log_table(run_id, columns, path)

    def mark_interrupted(self, parent_id: str, experiment_id: str) -> list[str]:
        """Runs a killed process left unfinished become KILLED; returns their ids."""
        killed = [r.run_id for r in self.children(parent_id, experiment_id) if r.status == Status.RUNNING]
        for run_id in killed:
            self.discard_models(run_id, experiment_id)
            self.log(run_id, finish=Status.KILLED)
        return killed

    def discard_models(self, run_id: str, experiment_id: str, status: Status = Status.KILLED) -> None:
        """The model of an interrupted (or failed) run is never used: unfinished ones become FAILED,
        registry versions are deleted, and the LoggedModel is tagged with the run's `status`."""
        for version in self.client.search_model_versions(f"run_id = '{run_id}'"):
            self.client.delete_model_version(version.name, version.version)
            self.models.repoint_best(version.name)  # the `best` alias left with the version
        for logged in self.client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'"):
            if str(logged.status) != "READY":
                self.client.finalize_logged_model(logged.model_id, "FAILED")
            self.client.set_logged_model_tags(logged.model_id, {tag("status"): str(status)})

    def load_json(self, run_id: str, path: str):
        """A JSON artifact of the run, or None when the run has no such file."""
        folder, _, name = path.rpartition("/")
        if name not in {Path(f.path).name for f in self.client.list_artifacts(run_id, folder or None)}:
            return None
        return self.patience.call(mlflow.artifacts.load_dict, f"runs:/{run_id}/{path}")

    def memory(self, run_id: str) -> str:
        return self.patience.call(mlflow.artifacts.load_text, f"runs:/{run_id}/{MEMORY_ARTIFACT}")

    # --- models ---------------------------------------------------------------------------------
    def log_model(self, run_id: str, experiment_id: str, model_dir: Path, registered_name: str, name: str, tags: dict[str, str],
                  move: bool = False) -> dict[str, str]:
        """Store the folder once as a LoggedModel of the run and register it; the run's tags that
        say so (model_id, model_version, registered_model), for the caller to log with its others.
        `move`: the folder is a working copy, moved (not copied) when the store is on this machine."""
        logged = self.client.create_logged_model(experiment_id, name=name, source_run_id=run_id, tags=tags)
        stored = _local_path(logged.artifact_location)
        if not (move and stored is not None and _moved(Path(model_dir), stored)):
            self.client.log_model_artifacts(logged.model_id, str(model_dir))
        checkpoint("log_model")
        self.client.finalize_logged_model(logged.model_id, "READY")  # before registering: no version of an unfinished model
        try:
            if registered_name not in self._registered:
                self.client.get_registered_model(registered_name)
        except mlflow.exceptions.MlflowException:
            try:
                self.client.create_registered_model(registered_name, tags={tag("kind"): STUDY_MODELS})
            except mlflow.exceptions.MlflowException:  # another process created it meanwhile
                self.client.get_registered_model(registered_name)
        version = self.models.register(logged.model_id, registered_name, tags)  # recorded on the LoggedModel too
        self._registered.add(registered_name)
        return {"model_id": logged.model_id, "model_version": version, "registered_model": registered_name}

    def model_dir(self, model_id: str) -> Path:
        """A local folder with the model's files: the artifact folder itself when the store is
        local (no copy), else a download into the cache (once per model)."""
        logged = self.client.get_logged_model(model_id)
        if logged.tags.get(tag("weights")) == FREED:
            raise WeightsFreed(model_id)
        location = logged.artifact_location
        local = _local_path(location)
        if local is not None:
            return local
        # downloads/<model id>/model: the old layout (<id>/artifacts/..., never complete) is ignored
        target = cache_dir() / "downloads" / model_id / "model"
        if not target.is_dir():  # only ever made whole: workers fetching the same model at once each stage their own copy
            with staged_dir(target) as staging:
                self.patience.call(mlflow.artifacts.download_artifacts, artifact_uri=f"models:/{model_id}", dst_path=str(staging),
                                    tracking_uri=self.tracking_uri)
        return target

    # --- retention ------------------------------------------------------------------------------
    def logged_models(self, experiment_id: str) -> list:
        """Every LoggedModel of the experiment (all pages)."""
        models, token = [], None
        while True:
            page = self.client.search_logged_models([experiment_id], max_results=1000, page_token=token)
            models.extend(page)
            token = page.token
            if not token:
                return models

    def free_weights(self, model_id: str, suffixes: tuple[str, ...]) -> int:
        """Delete the LoggedModel's files ending in `suffixes` (its weights); tag it freed; the bytes freed."""
        logged = self.client.get_logged_model(model_id)
        local = _local_path(logged.artifact_location)
        freed = 0
        if local is not None:
            for path in local.iterdir():
                if path.is_file() and path.name.endswith(suffixes):
                    freed += path.stat().st_size
                    path.unlink()
        else:  # a remote store: through MLflow's artifact-repository plugin interface (documented for plugins)
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            repo = get_artifact_repository(logged.artifact_location)
            for info in repo.list_artifacts():
                if not info.is_dir and info.path.endswith(suffixes):
                    repo.delete_artifacts(info.path)
                    freed += info.file_size or 0
        self.client.set_logged_model_tags(model_id, {tag("weights"): FREED})
        import shutil

        shutil.rmtree(cache_dir() / "downloads" / model_id, ignore_errors=True)
        return freed

    def tag_model_version(self, registered_name: str, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(registered_name, version, tag(key), value)


def _json(value) -> str:
    return json.dumps(value, indent=2, default=str)


def _local_path(uri: str) -> Path | None:
    """The folder an artifact URI names on this machine, or None for a remote store."""
    parsed = urlparse(uri)
    return Path(url2pathname(parsed.path)) if parsed.scheme in ("", "file") else None


def _moved(source: Path, target: Path) -> bool:
    """Rename `source` to `target` (same file system, nothing at `target` yet but an empty folder)."""
    import os

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)
        return True
    except OSError:  # another file system, or files already there: the caller copies
        return False
