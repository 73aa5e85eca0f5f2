"""Retention: keep the weights of a study's top-k models and of their lineage (every input model,
recursively, and the base of an adapter); delete the weight files of every other model of the
study. Runs, metrics, tags, predictions, memories and the other model files stay. Freed runs,
LoggedModels and registry versions are tagged `lamdagent.weights=freed`; the Runner's cache skips
them, and a freed model needed again is rebuilt by re-running its action (Runner.resolve)."""

from __future__ import annotations

from lamdagent.space.lineage import walk
from lamdagent.tracking.schema import FREED, Record, tag
from lamdagent.tracking.tracker import Tracker

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def _records(tracker: Tracker, experiment_id: str) -> list[Record]:
    """The study's nested runs: seeds, actions, baselines, replays."""
    return [Record.from_run(r) for r in tracker.search_runs(experiment_id) if "mlflow.parentRunId" in r.data.tags]


def keep_set(records: list[Record], k: int) -> set[str]:
    """Model ids of the top-k models by validation score and of everything their lineage needs."""
    done = [r for r in records if r.done and r.model_id]
    model_of = {r.run_id: r.model_id for r in done}
    best: dict[str, tuple] = {}  # model id -> its best (score, earliest iteration, run id); ties go to the earlier model
    for r in done:
        if r.score is not None:
            best[r.model_id] = min(best.get(r.model_id, (float("inf"),)), (-r.score, r.iteration, r.run_id))
    by_model: dict[str, list[Record]] = {}
    for r in done:
        by_model.setdefault(r.model_id, []).append(r)

    def needs(model_id: str) -> list[str]:
        return [model_of[i] for r in by_model.get(model_id, []) for i in [*r.inputs, r.adapter_of] if i in model_of]

    return set(walk(sorted(best, key=best.get)[:k], needs, key=str))


def collect(tracker: Tracker, experiment_id: str, keep_top_k: int) -> dict[str, int]:
    """Apply the policy to one study (experiment); returns {freed model id: bytes freed}."""
    records = _records(tracker, experiment_id)
    keep = keep_set(records, keep_top_k)
    freed = {logged.model_id: tracker.free_weights(logged.model_id, WEIGHT_SUFFIXES) for logged in tracker.logged_models(experiment_id)
             if logged.model_id not in keep and logged.tags.get(tag("weights")) != FREED}
    for r in records:
        if r.model_id in freed:
            tracker.log(r.run_id, tags={"weights": FREED})
            tags = tracker.run(r.run_id).data.tags
            version, registered = tags.get(tag("model_version")), tags.get(tag("registered_model"))
            if version and registered:
                tracker.tag_model_version(registered, version, "weights", FREED)
    return freed
