"""The tracking server restarts in the middle of an exploration (issue 18, item 6): the exploration
waits, says so, and goes on when the server is back; past `tracking.max_outage_seconds` it stops with
one line and `--resume` finishes it later. Nothing finished is lost, nothing is logged twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from mlflow import MlflowClient

from lamdagent.tracking import experiment_name
from tests.conftest import FAST

EXPLORE = [*FAST, "agent.policy=random", "specialists=false"]
CLI = "import sys; from lamdagent.cli.main import main; sys.exit(main(sys.argv[1:]))"


def _cli(server, log, *argv: str) -> subprocess.Popen:
    """`lamdagent ...` in a process of its own, logging to `server`, its console into `log`."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri, "COLUMNS": "250"}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", CLI, *argv], stdout=out, stderr=subprocess.STDOUT, env=env)


def _wait_for(condition, what: str, timeout: float = 300, process: subprocess.Popen | None = None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            pytest.fail(f"the exploration ended ({process.returncode}) before {what}:\n{log.read_text()[-3000:] if log else ''}")
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def _action_started(client: MlflowClient, study: str):
    """Whether the study's first action run has started (the next tracking call comes soon)."""
    def started() -> bool:
        found = client.get_experiment_by_name(experiment_name(study))
        return bool(found and client.search_runs([found.experiment_id], "tags.`lamdagent.kind` = 'action'", max_results=1))
    return started


def _audit(client: MlflowClient, study: str) -> tuple:
    """(the exploration, its nested runs by iteration and status) — and no run made twice."""
    experiment = client.get_experiment_by_name(experiment_name(study)).experiment_id
    runs = client.search_runs([experiment], "", max_results=1000)
    requests = Counter(r.data.tags.get("lamdagent.request") for r in runs)
    assert all(n == 1 for n in requests.values()), f"a run was created twice: {requests.most_common(3)}"
    [exploration] = [r for r in runs if r.data.tags["lamdagent.kind"] == "exploration"]
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == exploration.info.run_id]
    assert len(nested) == len(runs) - 1  # nothing outside the exploration
    return exploration, sorted((int(r.data.tags["lamdagent.iteration"]), r.data.tags["lamdagent.kind"], r.data.tags["lamdagent.status"],
                                r.info.status) for r in nested)


@pytest.mark.slow
@pytest.mark.ci
def test_a_server_restart_during_an_iteration_costs_nothing(tracking_server, tmp_path):
    client = MlflowClient(tracking_server.uri)
    log = tmp_path / "explore.log"
    process = _cli(tracking_server, log, "explore", "--study", "demo", *EXPLORE, "iterations=3", "name=outage-restart")
    try:
        _wait_for(_action_started(client, "outage-restart"), "its first action", process=process, log=log)
        tracking_server.stop()
        _wait_for(lambda: "unreachable" in log.read_text(), "the outage to be announced", timeout=400, process=process, log=log)
        time.sleep(3)  # a few retries against a server that is still away
    finally:
        tracking_server.start()
    assert process.wait(600) == 0, log.read_text()[-3000:]
    console = log.read_text()
    assert "tracking server http://127.0.0.1" in console and "retrying for up to 600 s (tracking.max_outage_seconds)" in console
    assert "answers again after" in console
    exploration, nested = _audit(client, "outage-restart")
    assert exploration.info.status == "FINISHED"
    assert [(i, kind) for i, kind, _, _ in nested] == [(0, "seed"), (1, "action"), (2, "action"), (3, "action")]
    assert all(status in ("ok", "cached") and state == "FINISHED" for _, _, status, state in nested)


@pytest.mark.slow
def test_past_max_outage_seconds_it_stops_with_one_line_and_resumes_cleanly(tracking_server, tmp_path):
    client = MlflowClient(tracking_server.uri)
    log = tmp_path / "explore.log"
    study = "outage-stop"
    process = _cli(tracking_server, log, "explore", "--study", "demo", *EXPLORE, "iterations=2", f"name={study}", "tracking.max_outage_seconds=5")
    try:
        _wait_for(_action_started(client, study), "its first action", process=process, log=log)
        tracking_server.stop()
        assert process.wait(600) == 2, log.read_text()[-3000:]
    finally:
        tracking_server.start()
    errors = [line for line in log.read_text().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unreachable for" in errors[0] and "tracking.max_outage_seconds=5" in errors[0], log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    _, before = _audit(client, study)
    finished_before = [n for n in before if n[3] == "FINISHED"]

    resumed = tmp_path / "resume.log"
    assert _cli(tracking_server, resumed, "explore", "--study", study, "--resume", "latest").wait(600) == 0, resumed.read_text()[-3000:]
    exploration, after = _audit(client, study)
    assert exploration.info.status == "FINISHED"
    assert all(n in after for n in finished_before)  # nothing finished was lost or redone
    done = [(i, kind) for i, kind, status, _ in after if status in ("ok", "cached")]
    assert done == [(0, "seed"), (1, "action"), (2, "action")]  # each step done once
    assert all(status == "killed" for _, _, status, state in after if (status not in ("ok", "cached")))
