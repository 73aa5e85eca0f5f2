"""What must hold in the tracking store after any crash and resume."""

from __future__ import annotations

import json

import mlflow
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus

FINISHED_STATUSES = ("ok", "failed", "cached")


def children(client: MlflowClient, exploration: str) -> list:
    experiment = client.get_run(exploration).info.experiment_id
    runs = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{exploration}'", max_results=1000)
    return sorted(runs, key=lambda r: (int(r.data.tags["lamdagent.iteration"]), r.info.start_time))


def check(client: MlflowClient, exploration: str, resumed: bool = True) -> dict:
    """Assert the invariants of one exploration; returns counts. `resumed`: a resume ran last (so
    no run is left `running` and every interrupted run is KILLED)."""
    runs = children(client, exploration)
    tags = [r.data.tags for r in runs]
    assert all(t["mlflow.parentRunId"] == exploration for t in tags)
    actions = [r for r in runs if r.data.tags["lamdagent.kind"] == "action"]
    finished = [r for r in actions if r.data.tags["lamdagent.status"] in FINISHED_STATUSES]
    iterations = [int(r.data.tags["lamdagent.iteration"]) for r in finished]
    assert iterations == list(range(1, len(finished) + 1)), f"duplicated or skipped iterations: {iterations}"
    running = [r for r in runs if r.data.tags["lamdagent.status"] == "running"]
    killed = [r for r in runs if r.data.tags["lamdagent.status"] == "killed"]
    assert len(running) <= (0 if resumed else 1), [r.data.tags["lamdagent.name"] for r in running]
    for run in killed:
        assert run.info.status == "KILLED"
        iteration = int(run.data.tags["lamdagent.iteration"])
        if run.data.tags["lamdagent.kind"] == "action" and iteration <= len(finished):  # redone
            assert finished[iteration - 1].info.start_time > run.info.start_time
    for run in finished:  # every finished iteration intact: scores, decision, memory
        t = run.data.tags
        assert run.info.status == ("FAILED" if t["lamdagent.status"] == "failed" else "FINISHED")
        if t["lamdagent.status"] != "failed":
            assert "val.score" in run.data.metrics and t["lamdagent.model_id"]
        memory = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/agent/memory.txt")
        facts, lessons = memory.split("Lessons (the agent's own notes):\n")  # the tool's facts, then the LLM's own notes
        assert facts.startswith("Facts (written by the tool") and lessons.startswith(f"Lessons: iteration {t['lamdagent.iteration']} done"), memory
        assert json.loads(mlflow.artifacts.load_text(f"{run.info.artifact_uri}/agent/decision.json"))
    seeds = [r for r in runs if r.data.tags["lamdagent.kind"] == "seed" and r.data.tags["lamdagent.status"] in FINISHED_STATUSES]
    assert len({r.data.tags["lamdagent.name"] for r in seeds}) == len(seeds)  # one finished run per seed
    # no half-written model registered: every version is a READY model of a finished run
    status = {r.info.run_id: r.data.tags["lamdagent.status"] for r in runs}
    experiment = client.get_run(exploration).info.experiment_id
    versions = [v for v in client.search_model_versions() if v.run_id in status]
    for version in versions:
        assert status[version.run_id] in ("ok", "running"), (version.version, status[version.run_id])
        assert client.get_logged_model(version.source.removeprefix("models:/")).status == LoggedModelStatus.READY
    if resumed:
        assert all(status[v.run_id] == "ok" for v in versions)
        pending = [m for m in client.search_logged_models([experiment]) if m.status == LoggedModelStatus.PENDING]
        assert not pending, [m.model_id for m in pending]
    steps = [m.step for m in client.get_metric_history(exploration, "best.val.score")]
    assert len(steps) == len(set(steps)) and set(steps) <= set(iterations)
    if resumed:
        assert set(steps) == set(iterations)  # a point lost to a kill is logged on resume
    return {"finished": len(finished), "killed": len(killed), "versions": len(versions)}
