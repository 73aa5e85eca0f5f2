"""The shared tracking server of a multi-machine exploration (deploy/tracking-server.sh): `mlflow
server` on PostgreSQL with proxied artifacts. An exploration logs to it over HTTP only; its runs,
metrics, models and registry versions are rows of PostgreSQL, its files are in the server's
artifact folder, and a worker gets a model's files by download (docs/tracking-server.md)."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType
from rich.console import Console

from lamdagent.console import Display
from lamdagent.exploration.loop import start_or_resume
from lamdagent.tracking import Tracker
from tests.conftest import FAST

SMALL = [*FAST, "iterations=2", "agent.policy=random", "specialists=false"]
PROXIED = "mlflow-artifacts:/"


def explore_on_server(server, extra: list[str] = ()) -> tuple[str, MlflowClient, str]:
    """A small exploration of the demo study (SMALL + `extra` overrides) by this process, logged to
    `server` (the test uses the `on_server` fixture); returns (exploration run id, a client of the
    server, experiment id). The study's actions are cached by fingerprint across explorations of
    the session: pass `name=<study>` in `extra` for an experiment of its own."""
    display = Display(Console(file=io.StringIO()))
    with display:
        run_id, _, _ = start_or_resume("demo", [*SMALL, *extra], None, Tracker(), display)
    client = MlflowClient(server.uri)
    return run_id, client, client.get_run(run_id).info.experiment_id


def nested_runs(client: MlflowClient, experiment_id: str, run_id: str) -> list:
    runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{run_id}'", max_results=200)
    return sorted(runs, key=lambda r: (int(r.data.tags["lamdagent.iteration"]), r.info.start_time))


def query(server, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows straight from the server's PostgreSQL database."""
    import psycopg2

    with psycopg2.connect(**server.dsn) as connection, connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


@pytest.mark.slow
def test_local_executor_against_server(on_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory (no ./mlruns, no mlflow.db)
    run_id, client, experiment_id = explore_on_server(on_server, ["name=cluster-local"])
    assert not list(tmp_path.iterdir()), "the exploration wrote local files instead of logging to the server"

    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED", on_server.log_tail()
    assert parent.info.artifact_uri.startswith(PROXIED)
    runs = nested_runs(client, experiment_id, run_id)
    actions = [r for r in runs if r.data.tags["lamdagent.kind"] == "action"]
    assert [int(r.data.tags["lamdagent.iteration"]) for r in actions] == [1, 2]
    for run in runs:  # the base seed and both actions
        tags = run.data.tags
        assert tags["lamdagent.status"] in ("ok", "cached"), tags.get("lamdagent.error")
        assert run.info.status == "FINISHED" and "val.score" in run.data.metrics
        assert run.info.artifact_uri.startswith(PROXIED)

    # models: LoggedModels whose files are in the server's artifact folder, registered without a copy
    built = [r for r in runs if r.data.tags["lamdagent.status"] == "ok"]
    assert built
    for run in built:
        tags = run.data.tags
        model_id = tags["lamdagent.model_id"]
        version = client.get_model_version(tags["lamdagent.registered_model"], tags["lamdagent.model_version"])
        assert version.source == f"models:/{model_id}" and version.run_id == run.info.run_id
        location = client.get_logged_model(model_id).artifact_location
        assert location.startswith(PROXIED)
        files = on_server.artifacts / location.removeprefix(PROXIED)
        assert (files / "config.json").exists() or (files / "adapter_config.json").exists(), sorted(files.rglob("*"))
        assert (on_server.artifacts / run.info.artifact_uri.removeprefix(PROXIED) / "predictions" / "val").is_dir()

    # the data is PostgreSQL's: same runs, metrics and registry versions as the client sees
    seen = client.search_runs([experiment_id], "", run_view_type=ViewType.ALL, max_results=1000)
    stored = query(on_server, "select run_uuid from runs where experiment_id = %s", (int(experiment_id),))
    assert {r for (r,) in stored} == {r.info.run_id for r in seen} and len(seen) == len(runs) + 1
    scores = dict(query(on_server, "select run_uuid, value from latest_metrics where key = 'val.score' and run_uuid = any(%s)",
                        ([r.info.run_id for r in runs],)))
    assert scores == pytest.approx({r.info.run_id: r.data.metrics["val.score"] for r in runs})
    name = built[0].data.tags["lamdagent.registered_model"]
    sources = query(on_server, "select version, source from model_versions where name = %s", (name,))
    assert {(str(v), s) for v, s in sources} == {(v.version, v.source) for v in client.search_model_versions(f"name = '{name}'")}
    # the database password is nowhere in the store, nor in the server's output
    assert query(on_server, "select count(*) from params where value like %s", (f"%{on_server.password}%",)) == [(0,)]
    assert query(on_server, "select count(*) from tags where value like %s", (f"%{on_server.password}%",)) == [(0,)]
    assert on_server.password not in on_server.log.read_text(errors="replace")

    # a worker with a cold cache downloads a model once, whoever asks at the same time
    cache = tmp_path / "worker-cache"
    monkeypatch.setenv("LAMDAGENT_CACHE", str(cache))
    model_id = actions[-1].data.tags["lamdagent.model_id"]
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: Tracker().model_dir(model_id), range(4)))
    assert len(set(folders)) == 1
    folder = folders[0]
    assert folder.is_relative_to(cache) and (folder / "config.json").exists()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no download folder left behind
    assert Tracker().model_dir(model_id) == folder


@pytest.mark.slow
@pytest.mark.requires("ray")
def test_ray_workers_against_server(on_server, tmp_path, monkeypatch):
    """Two Ray workers (a local cluster of this machine) run each round's actions and log to the
    server over HTTP; the loop only collects."""
    ray = pytest.importorskip("ray")
    import os

    monkeypatch.chdir(tmp_path)
    try:
        run_id, client, experiment_id = explore_on_server(
            on_server, ["name=cluster-ray", "iterations=4", "actions=[sft]", "execution.executor=ray", "execution.parallel=2"])
    finally:
        ray.shutdown()
    assert client.get_run(run_id).info.status == "FINISHED", on_server.log_tail()
    actions = [r for r in nested_runs(client, experiment_id, run_id) if r.data.tags["lamdagent.kind"] == "action"]
    assert [int(r.data.tags["lamdagent.iteration"]) for r in actions] == [1, 2, 3, 4]
    assert all(r.data.tags["lamdagent.status"] == "ok" and r.info.artifact_uri.startswith(PROXIED) for r in actions)
    workers = {r.data.tags["lamdagent.worker"] for r in actions}
    assert len(workers) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)
    # what the workers wrote is PostgreSQL's: every action's model registered, scores in latest_metrics
    versions = query(on_server, "select run_id from model_versions where name = 'lamdagent-cluster-ray'")
    assert {r.info.run_id for r in actions} <= {r for (r,) in versions}
    scores = dict(query(on_server, "select run_uuid, value from latest_metrics where key = 'val.score' and run_uuid = any(%s)",
                        ([r.info.run_id for r in actions],)))
    assert scores == pytest.approx({r.info.run_id: r.data.metrics["val.score"] for r in actions})
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
