"""MLflow as the system of record: the schema of studies, explorations, action runs and models.

Experiment = study. Parent run = exploration. Every seed model, action, baseline or replay is a
nested run tagged under `lamdagent.` (see docs/tracking.md). Models are MLflow 3 LoggedModels,
registered in the Model Registry without a second copy.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from lamdagent.errors import UserError
from lamdagent.faults import checkpoint
from lamdagent.files import cache_dir
from lamdagent.tracking import sqlite as sqlite_store
from lamdagent.tracking import store_reads, store_writes

PREFIX = "lamdagent."
RUNNING, OK, FAILED, CACHED, KILLED = "running", "ok", "failed", "cached", "killed"
CONFIG_ARTIFACT = "config.json"
MEMORY_ARTIFACT = "agent/memory.txt"
FREED = "freed"  # lamdagent.weights: the retention policy deleted this model's weight files


class WeightsFreed(Exception):
    """The retention policy deleted this model's weights; the model must be rebuilt."""


def tag(name: str) -> str:
    return PREFIX + name


@dataclass
class Record:
    """One finished (or interrupted) nested run, as the agent, the report and resume see it."""

    run_id: str
    kind: str
    iteration: int
    name: str
    status: str
    action_type: str = ""
    action: dict = field(default_factory=dict)  # slot -> name
    pipeline: str = ""
    fingerprint: str = ""
    model_id: str = ""
    arch: str = ""
    inputs: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # val.<task>
    score: float | None = None
    error: str = ""
    source_run: str = ""
    cost_seconds: float | None = None
    adapter_of: str = ""  # run id of the model a LoRA adapter applies to
    memory_seq: int = 0  # the order in which the agent's memory was rewritten (rounds of k > 1 finish in any order)

    @classmethod
    def from_run(cls, run: Run) -> Record:
        return cls.from_data(run.info.run_id, run.data.tags, run.data.metrics)

    @classmethod
    def from_data(cls, run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> Record:
        return cls(
            run_id=run_id,
            kind=tags.get(tag("kind"), ""),
            iteration=int(tags.get(tag("iteration"), 0)),
            name=tags.get(tag("name"), ""),
            status=tags.get(tag("status"), ""),
            action_type=tags.get(tag("action_type"), ""),
            action=json.loads(tags.get(tag("action"), "{}")),
            pipeline=tags.get(tag("pipeline"), ""),
            fingerprint=tags.get(tag("fingerprint"), ""),
            model_id=tags.get(tag("model_id"), ""),
            arch=tags.get(tag("arch"), ""),
            inputs=json.loads(tags.get(tag("inputs"), "[]")),
            scores={k[len("val.") :]: v for k, v in metrics.items() if k.startswith("val.") and k != "val.score"},
            score=metrics.get("val.score"),
            error=tags.get(tag("error"), ""),
            source_run=tags.get(tag("source_run"), ""),
            cost_seconds=metrics.get("cost.seconds"),
            adapter_of=tags.get(tag("adapter_of"), ""),
            memory_seq=int(tags.get(tag("memory_seq"), 0)),
        )


class Tracker:
    """All reads and writes of the tracking server go through here."""

    def __init__(self, tracking_uri: str | None = None):
        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        self.tracking_uri = mlflow.get_tracking_uri()
        self.client = MlflowClient(self.tracking_uri)
        sqlite_store.tune(self.client)  # write-ahead log: a commit costs no disk sync
        self._registered: set[str] = set()  # registered model names known to exist (one read per name)
        self._artifact_uris: dict[str, str] = {}  # run id -> artifact URI, for the runs started here (no read)

    # --- studies and explorations -------------------------------------------------------------
    def experiment(self, study: str) -> str:
        """The experiment of a study, created on first use (opens on the training-runs view)."""
        name = f"lamdagent/{study}"
        found = self.client.get_experiment_by_name(name)
        if found:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, tags={"mlflow.experimentKind": "custom_model_development", tag("study"): study})
        except mlflow.exceptions.MlflowException:  # another process created it meanwhile
            return self.client.get_experiment_by_name(name).experiment_id

    def start_exploration(self, experiment_id: str, study: str, config: dict, params: dict[str, str], run_name: str | None = None,
                          kind: str = "exploration", tags: dict[str, str] | None = None) -> str:
        """A parent run holding its resolved config: an exploration, or a group of baselines, replays or a report."""
        all_tags = {tag("kind"): kind, tag("study"): study, **{tag(k): v for k, v in (tags or {}).items()}}
        run = self.client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k[:250], v[:6000]) for k, v in params.items()])
        self.client.log_text(run_id, json.dumps(config, indent=2), CONFIG_ARTIFACT)
        return run_id

    def latest_unfinished(self, study: str) -> str:
        """The run id of the study's most recently started exploration that did not finish."""
        found = self.client.get_experiment_by_name(f"lamdagent/{study}")
        runs = self.client.search_runs(
            [found.experiment_id], f"tags.`{tag('kind')}` = 'exploration' and attributes.status != 'FINISHED'",
            order_by=["attributes.start_time DESC"], max_results=1,
        ) if found else []
        if not runs:
            raise UserError(f"no unfinished exploration of study {study!r} in the tracking store {self.tracking_uri}")
        return runs[0].info.run_id

    def exploration(self, run_id: str) -> Run:
        return self.client.get_run(run_id)

    def exploration_config(self, run_id: str) -> dict:
        return json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/{CONFIG_ARTIFACT}"))

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def close(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status)

    # --- nested runs ----------------------------------------------------------------------------
    def start_child(self, parent: Run | str, kind: str, iteration: int, name: str, tags: dict[str, str], run_name: str | None = None,
                    experiment_id: str | None = None) -> str:
        """A nested run; given the parent's `experiment_id`, a parent id needs no read of the store."""
        if isinstance(parent, str) and experiment_id is not None:
            parent_id = parent
        else:
            parent_run = parent if isinstance(parent, Run) else self.client.get_run(parent)
            parent_id, experiment_id = parent_run.info.run_id, parent_run.info.experiment_id
        all_tags = {
            "mlflow.parentRunId": parent_id,
            tag("kind"): kind,
            tag("iteration"): str(iteration),
            tag("name"): name,
            tag("status"): RUNNING,
            **{tag(k): v for k, v in tags.items()},
        }
        run = self.client.create_run(experiment_id, run_name=run_name or name, tags=all_tags)
        self._artifact_uris[run.info.run_id] = run.info.artifact_uri
        return run.info.run_id

    def log(self, run_id: str, metrics: dict[str, float] | None = None, params: dict | None = None, tags: dict[str, str] | None = None, step: int = 0,
            series: dict[str, list[tuple[int, float]]] | None = None, *, finish: str | None = None) -> None:
        """One write of metrics, params, `lamdagent.` tags and metric series (name -> (step, value)).
        `finish`: the run also ends with this status (its `lamdagent.status` tag, and MLflow's status
        as `end` gives it). On a database store all of it is one transaction (store_writes); else
        log_batch calls of at most 1,000 metrics (MLflow's limit per batch), then set_terminated."""
        now = int(time.time() * 1000)
        values = [Metric(k, float(v), now, step) for k, v in (metrics or {}).items()]
        values += [Metric(name, float(v), now, at) for name, points in (series or {}).items() for at, v in points]
        params = [Param(k, str(v)) for k, v in (params or {}).items()]
        tags = [RunTag(tag(k), str(v)) for k, v in {**(tags or {}), **({"status": finish} if finish else {})}.items()]
        if store_writes.finish(self.client, run_id, values, params, tags, run_status=finish and _run_status(finish)):
            return
        for start in range(0, max(len(values), 1), 1000):
            self.client.log_batch(run_id, metrics=values[start : start + 1000], **({"params": params, "tags": tags} if start == 0 else {}))
        if finish is not None:
            self.end(run_id, finish)

    def log_series(self, run_id: str, series: dict[str, list[tuple[int, float]]]) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(name, float(v), now, step) for name, points in series.items() for step, v in points]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.log_texts(run_id, {path: text})

    def log_json(self, run_id: str, value, path: str) -> None:
        self.log_texts(run_id, {path: _json(value)})

    def log_jsons(self, run_id: str, files: dict[str, object]) -> None:
        """Several JSON artifacts (path -> value) in one write."""
        self.log_texts(run_id, {path: _json(value) for path, value in files.items()})

    def log_texts(self, run_id: str, files: dict[str, str]) -> None:
        """Text artifacts (path -> text) in one write: straight into the run's artifact folder when
        the store keeps artifacts on this machine (no staging copy, no read of the run), else one upload."""
        uri = self._artifact_uris.get(run_id) or self.client.get_run(run_id).info.artifact_uri
        self._artifact_uris[run_id] = uri
        local = _local_path(uri)
        if local is not None:
            _write_texts(local, files)
            return
        import tempfile

        with tempfile.TemporaryDirectory() as staging:
            _write_texts(Path(staging), files)
            get_artifact_repository(uri, tracking_uri=self.tracking_uri).log_artifacts(staging)

    def finish_child(self, run_id: str, status: str, error: str = "", tags: dict[str, str] | None = None) -> None:
        """The run's status (with any last `lamdagent.` tags) and its end."""
        self.log(run_id, tags={**(tags or {}), **({"error": error[:4000]} if error else {})}, finish=status)

    def end(self, run_id: str, status: str) -> None:
        """The run's end in MLflow (its `lamdagent.status` tag already written)."""
        self.client.set_terminated(run_id, _run_status(status))

    def children(self, parent_id: str, experiment_id: str) -> list[Record]:
        """Every nested run of an exploration, oldest iteration first (straight from the database
        when the store is one: 1,000 runs in well under a second, see benchmarks/history.py)."""
        with store_reads.no_gc():
            rows = store_reads.child_runs(self.client, parent_id, experiment_id, PREFIX)
            if rows is not None:
                records = [Record.from_data(*row) for row in rows]
            else:
                records = self.search(experiment_id, f"tags.mlflow.parentRunId = '{parent_id}'")
        return sorted(records, key=lambda r: (r.iteration, r.kind != "seed", r.run_id))

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
        return Record.from_run(self.client.get_run(run_id))

    def find_by_fingerprint(self, experiment_id: str, fingerprint: str) -> Record | None:
        """A finished, successful run of the study that made exactly this model and still holds
        its weights (see retention), if any."""
        ids = store_reads.runs_tagged(self.client, experiment_id, {tag("fingerprint"): fingerprint, tag("status"): OK})
        if ids is None:
            runs = self.client.search_runs(
                [experiment_id],
                f"tags.`{tag('fingerprint')}` = '{fingerprint}' and tags.`{tag('status')}` = '{OK}'",
                max_results=50,
            )
        else:
            runs = (self.client.get_run(run_id) for run_id in ids)
        kept = (r for r in runs if r.data.tags.get(tag("weights")) != FREED)
        found = next(kept, None)
        return Record.from_run(found) if found else None

    def mark_interrupted(self, parent_id: str, experiment_id: str) -> list[str]:
        """Runs left `running` by a killed process become KILLED; returns their ids."""
        killed = [r.run_id for r in self.children(parent_id, experiment_id) if r.status == RUNNING]
        for run_id in killed:
            self.discard_models(run_id, experiment_id)
            self.log(run_id, finish=KILLED)
        return killed

    def discard_models(self, run_id: str, experiment_id: str, status: str = KILLED) -> None:
        """The model of an interrupted (or failed) run is never used: unfinished ones become FAILED,
        registry versions are deleted, and the LoggedModel is tagged with the run's `status`."""
        for version in self.client.search_model_versions(f"run_id = '{run_id}'"):
            self.client.delete_model_version(version.name, version.version)
        for logged in self.client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'"):
            if str(logged.status) != "READY":
                self.client.finalize_logged_model(logged.model_id, "FAILED")
            self.client.set_logged_model_tags(logged.model_id, {tag("status"): status})

    def memory(self, run_id: str) -> str:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{MEMORY_ARTIFACT}")

    # --- models ---------------------------------------------------------------------------------
    def log_model(self, run_id: str, experiment_id: str, model_dir: Path, registered_name: str, name: str, tags: dict[str, str],
                  move: bool = False) -> dict[str, str]:
        """Store the folder once as a LoggedModel of the run and register it; the run's tags that
        say so (model_id, model_version, registered_model), for the caller to log with its others.
        `move`: the folder is a working copy, moved (not copied) when the store is on this machine."""
        logged = self.client.create_logged_model(experiment_id, name=name, source_run_id=run_id, tags=tags)
        stored = _local_path(logged.artifact_location)
        if not (move and stored is not None and _moved(Path(model_dir), stored)):
            get_artifact_repository(logged.artifact_location, tracking_uri=self.tracking_uri).log_artifacts(str(model_dir))
        checkpoint("log_model")
        self.client.finalize_logged_model(logged.model_id, "READY")  # before registering: no version of an unfinished model
        try:
            if registered_name not in self._registered:
                self.client.get_registered_model(registered_name)
        except mlflow.exceptions.MlflowException:
            try:
                self.client.create_registered_model(registered_name, tags={tag("kind"): "study-models"})
            except mlflow.exceptions.MlflowException:  # another process created it meanwhile
                self.client.get_registered_model(registered_name)
        version = self.client.create_model_version(
            registered_name, f"models:/{logged.model_id}", run_id=run_id, tags=tags, model_id=logged.model_id
        )
        self._registered.add(registered_name)
        return {"model_id": logged.model_id, "model_version": str(version.version), "registered_model": registered_name}

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
        if target.is_dir():  # only ever made by the rename below: complete
            return target
        import shutil
        import tempfile

        # Workers may fetch the same model at once: each downloads into its own folder beside the
        # target and renames it into place (atomic); whoever comes second drops its copy.
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
        try:
            # the files land in a subfolder named after the location's last part ("artifacts")
            downloaded = Path(mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(staging)))
            try:
                downloaded.rename(target)
            except OSError:  # the target appeared meanwhile
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def _run_status(status: str) -> str:
    """MLflow's status of a run that ended with this `lamdagent.status`."""
    return {FAILED: "FAILED", KILLED: "KILLED"}.get(status, "FINISHED")


def _json(value) -> str:
    return json.dumps(value, indent=2, default=str)


def _write_texts(folder: Path, files: dict[str, str]) -> None:
    """Each file written beside its place and renamed into it: whole or not at all."""
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(text)
        partial.replace(target)


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
