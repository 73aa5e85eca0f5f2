"""Retention: keep the weights of a study's top-k models and of their lineage (every input model,
recursively, and the base of an adapter); delete the weight files of every other model of the
study. Runs, metrics, tags, predictions, memories and the other model files stay. Freed runs,
LoggedModels and registry versions are tagged `lamdagent.weights=freed`; the Runner's cache skips
them, and a freed model needed again is rebuilt by re-running its action (Runner.resolve)."""

from __future__ import annotations

import shutil

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from lamdagent import tracking as tr
from lamdagent.files import cache_dir
from lamdagent.tracking.tracker import Record, Tracker

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def _records(tracker: Tracker, experiment_id: str) -> list[Record]:
    runs, token = [], None
    while True:
        page = tracker.client.search_runs([experiment_id], "", max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return [Record.from_run(r) for r in runs if "mlflow.parentRunId" in r.data.tags]  # seeds, actions, baselines, replays


def keep_set(records: list[Record], k: int) -> set[str]:
    """Model ids of the top-k models by validation score and of everything their lineage needs."""
    done = [r for r in records if r.status in (tr.OK, tr.CACHED) and r.model_id]
    model_of = {r.run_id: r.model_id for r in done}
    best: dict[str, tuple] = {}  # model id -> its best (score, earliest iteration, run id); ties go to the earlier model
    for r in done:
        if r.score is not None:
            best[r.model_id] = min(best.get(r.model_id, (float("inf"),)), (-r.score, r.iteration, r.run_id))
    keep = set(sorted(best, key=best.get)[:k])
    by_model: dict[str, list[Record]] = {}
    for r in done:
        by_model.setdefault(r.model_id, []).append(r)
    stack = list(keep)
    while stack:
        for r in by_model.get(stack.pop(), []):
            for run_id in [*r.inputs, r.adapter_of]:
                parent = model_of.get(run_id)
                if parent and parent not in keep:
                    keep.add(parent)
                    stack.append(parent)
    return keep


def _free(tracker: Tracker, model_id: str) -> int:
    """Delete one LoggedModel's weight files; returns the bytes freed."""
    logged = tracker.client.get_logged_model(model_id)
    repo = get_artifact_repository(logged.artifact_location)
    freed = 0
    for info in repo.list_artifacts():
        if not info.is_dir and info.path.endswith(WEIGHT_SUFFIXES):
            repo.delete_artifacts(info.path)
            freed += info.file_size or 0
    tracker.client.set_logged_model_tags(model_id, {tr.tag("weights"): tr.FREED})
    shutil.rmtree(cache_dir() / "downloads" / model_id, ignore_errors=True)
    return freed


def collect(tracker: Tracker, experiment_id: str, keep_top_k: int) -> dict[str, int]:
    """Apply the policy to one study (experiment); returns {freed model id: bytes freed}."""
    records = _records(tracker, experiment_id)
    keep = keep_set(records, keep_top_k)
    freed: dict[str, int] = {}
    token = None
    while True:
        page = tracker.client.search_logged_models([experiment_id], max_results=1000, page_token=token)
        for logged in page:
            if logged.model_id not in keep and logged.tags.get(tr.tag("weights")) != tr.FREED:
                freed[logged.model_id] = _free(tracker, logged.model_id)
        token = page.token
        if not token:
            break
    for r in records:
        if r.model_id in freed:
            tracker.log(r.run_id, tags={"weights": tr.FREED})
            tags = tracker.client.get_run(r.run_id).data.tags
            version, registered = tags.get(tr.tag("model_version")), tags.get(tr.tag("registered_model"))
            if version and registered:
                tracker.client.set_model_version_tag(registered, version, tr.tag("weights"), tr.FREED)
    return freed
