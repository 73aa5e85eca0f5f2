"""One process at a time runs an exploration: a lease with a heartbeat on its parent run."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from mlflow import MlflowClient

from lamdagent import config as config_mod
from lamdagent.errors import UserError
from lamdagent.tracking import Tracker
from lamdagent.tracking.lease import TAG, Lease, LeaseLost
from tests.conftest import FAST
from tests.reliability.harness import Store


def _exploration(tracker: Tracker, study: str = "demo") -> str:
    cfg = config_mod.load_config("demo", [*FAST, "agent.policy=random", "specialists=false", f"name={study}", "iterations=1"])
    plain = config_mod.to_dict(cfg)
    return tracker.start_exploration(tracker.experiment(study), study, plain, config_mod.flat_params(plain))


def _holder(**fields) -> str:
    return json.dumps({"owner": "elsewhere:123", "host": "elsewhere", "pid": 123, "started": 0.0, "heartbeat": time.time(), **fields})


def test_a_second_process_refuses_to_resume_a_held_exploration(tracking_uri, tmp_path):
    tracker = Tracker()
    run_id = _exploration(tracker)
    with Lease(tracker.client, run_id, timeout=300, heartbeat=0.2):
        first = json.loads(tracker.client.get_run(run_id).data.tags[TAG])
        assert first["owner"] == f"{socket.gethostname()}:{os.getpid()}"
        refused = Store(tmp_path, {}).run(["explore", "--resume", run_id])  # the same store, another process
        time.sleep(0.5)
        assert json.loads(tracker.client.get_run(run_id).data.tags[TAG])["heartbeat"] > first["heartbeat"]  # refreshed
    assert refused.exitcode == 2, refused.log[-2000:]
    line = " ".join(refused.log.split())
    assert f"error: exploration {run_id} is being run by {socket.gethostname()}:{os.getpid()}" in line
    assert "its lease goes stale at" in line and "(lease.timeout_seconds=300)" in line and "Traceback" not in line
    assert not tracker.children(run_id, tracker.run(run_id).info.experiment_id)  # it did nothing
    assert TAG not in tracker.client.get_run(run_id).data.tags  # released


def test_a_live_foreign_lease_refuses_and_a_stale_or_dead_one_is_taken_over(tracking_uri):
    client = MlflowClient()
    run_id = _exploration(Tracker())
    client.set_tag(run_id, TAG, _holder())
    with pytest.raises(UserError, match=rf"exploration {run_id} is being run by elsewhere:123 \(last heartbeat \d+ s ago\); its lease goes stale at"):
        Lease(client, run_id, timeout=60).acquire()
    client.set_tag(run_id, TAG, _holder(heartbeat=time.time() - 61))  # no heartbeat for longer than the timeout
    Lease(client, run_id, timeout=60).acquire().release()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    client.set_tag(run_id, TAG, _holder(owner=f"{socket.gethostname()}:{dead}", host=socket.gethostname(), pid=dead, started=time.time()))
    lease = Lease(client, run_id, timeout=300).acquire()  # a holder on this host that is gone: stale at once (kill -9)
    assert json.loads(client.get_run(run_id).data.tags[TAG])["pid"] == os.getpid()
    lease.release()


def test_a_lease_taken_over_is_noticed(tracking_uri):
    client = MlflowClient()
    run_id = _exploration(Tracker())
    lease = Lease(client, run_id, timeout=1.0, heartbeat=0.1).acquire()
    client.set_tag(run_id, TAG, _holder())
    time.sleep(0.5)
    with pytest.raises(LeaseLost):
        lease.check()
    lease.release()
    assert json.loads(client.get_run(run_id).data.tags[TAG])["owner"] == "elsewhere:123"  # not ours to release


def test_resume_latest_names_the_study_when_there_is_nothing_to_resume(tracking_uri, capsys):
    from lamdagent.cli.main import main

    assert main(["explore", "--resume", "latest", "--study", "demo"]) == 2
    assert "no exploration of study 'demo'" in capsys.readouterr().out
