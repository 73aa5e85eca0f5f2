"""Rounds of k actions (batch selection), run one after another or as Ray tasks, against a real
MLflow store; a lost Ray worker is a failed action and the exploration goes on."""

import io
import json
import os
import signal
import threading
import time

import pytest
from mlflow import MlflowClient
from rich.console import Console

from lamdagent.console import Display
from lamdagent.exploration.loop import start_or_resume
from lamdagent.tracking import Tracker
from tests.conftest import FAST
from tests.test_explore import steps_agent

RANDOM = [*FAST, "agent.policy=random", "specialists=false"]


def explore(overrides, resume=None):
    display = Display(Console(file=io.StringIO()))
    with display:
        return start_or_resume("demo", overrides, resume, Tracker(), display)


def actions_of(run_id):
    client = MlflowClient()
    runs = client.search_runs([client.get_run(run_id).info.experiment_id],
                              f"tags.mlflow.parentRunId = '{run_id}' and tags.`lamdagent.kind` = 'action'", max_results=100)
    return sorted(runs, key=lambda r: int(r.data.tags["lamdagent.iteration"]))


@pytest.fixture
def ray_cluster():
    """A local Ray cluster (started by the executor), shut down after the test."""
    ray = pytest.importorskip("ray")
    yield
    ray.shutdown()


def test_a_round_holds_k_different_actions_and_resume_fills_gaps(tracking_uri):
    run_id, records, _ = explore([*RANDOM, "iterations=4", "execution.parallel=2", "actions=[sft]"])
    actions = actions_of(run_id)
    assert [int(r.data.tags["lamdagent.iteration"]) for r in actions] == [1, 2, 3, 4]
    assert len({r.data.tags["lamdagent.fingerprint"] for r in actions}) == 4  # a round never repeats itself
    assert all(r.data.tags["lamdagent.round_size"] == "2" and r.data.tags["lamdagent.status"] == "ok" for r in actions)
    assert sorted(int(r.data.tags["lamdagent.memory_seq"]) for r in actions) == [1, 2, 3, 4]

    # a round cut short (iteration 3 lost) is redone on resume, without renumbering the others
    MlflowClient().delete_run(actions[2].info.run_id)
    explore(["iterations=5"], resume=run_id)
    resumed = actions_of(run_id)
    assert [int(r.data.tags["lamdagent.iteration"]) for r in resumed] == [1, 2, 3, 4, 5]
    assert [r.info.run_id for r in resumed][:2] == [r.info.run_id for r in actions][:2]


def test_a_round_never_holds_the_same_action_twice(tracking_uri):
    """One valid action at first (sft of the base on arith): the round's second pick has nothing left,
    so the round holds one action instead of a duplicate."""
    run_id, _, _ = explore([*RANDOM, "iterations=2", "execution.parallel=2", "actions=[sft]", "datasets=[arith]"])
    pipelines = [r.data.tags["lamdagent.pipeline"] for r in actions_of(run_id)]
    assert pipelines[0] == "sft(base, arith)" and len(set(pipelines)) == len(pipelines)
    assert pipelines[1:] in ([], ["sft(sft(base, arith), arith)"])  # none when m1 gained nothing (its kind is then blocked on it)


def test_the_agent_sees_the_round_in_flight(tracking_uri, fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fake_openai.default = steps_agent({
        1: ("sft", {"model": "base", "dataset": "arith"}),
        2: ("sft", {"model": "base", "dataset": "facts"}),
    })
    run_id, _, _ = explore([*FAST, "agent.backend=openai", "agent.model=fake", f"agent.base_url={fake_openai.base_url}",
                            "iterations=2", "execution.parallel=2", "actions=[sft]", "specialists=false"])
    second = [p for p in fake_openai.prompts() if "Iteration 2 of 2" in p and "Choose the TYPE" in p][0]
    assert "(running now, result not known yet; choose something different) sft(model=base, dataset=arith" in second
    first = [p for p in fake_openai.prompts() if "Iteration 1 of 2" in p and "Choose the TYPE" in p][0]
    assert "running now" not in first
    assert [json.loads(r.data.tags["lamdagent.action"])["model"] for r in actions_of(run_id)] == ["base", "base"]


@pytest.mark.slow
@pytest.mark.requires("ray")
def test_ray_workers_run_a_round_in_parallel_and_a_lost_worker_is_a_failed_action(tracking_uri, ray_cluster):
    killed: list[str] = []

    def kill_first_worker():
        client = MlflowClient()
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            for run in client.search_runs(["1"], "tags.`lamdagent.kind` = 'action' and tags.`lamdagent.status` = 'running'"):
                worker = run.data.tags.get("lamdagent.worker")
                if worker:
                    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
                    killed.append(run.info.run_id)
                    return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_first_worker, daemon=True)
    killer.start()
    run_id, _, _ = explore([*RANDOM, "iterations=4", "execution.parallel=2", "execution.executor=ray", "actions=[sft]"])
    killer.join()
    actions = actions_of(run_id)
    assert killed and [int(r.data.tags["lamdagent.iteration"]) for r in actions] == [1, 2, 3, 4]
    lost = next(r for r in actions if r.info.run_id == killed[0])
    assert lost.data.tags["lamdagent.status"] == "failed" and lost.info.status == "FAILED"
    assert lost.data.tags["lamdagent.error"].startswith("worker lost")
    others = [r for r in actions if r.info.run_id != killed[0]]
    assert all(r.data.tags["lamdagent.status"] == "ok" and "val.score" in r.data.metrics for r in others)  # it went on
    workers = {r.data.tags["lamdagent.worker"] for r in actions}
    assert len(workers) >= 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)  # worker processes, not the loop's
    by_worker = {}
    for run in others:
        by_worker.setdefault(run.data.tags["lamdagent.worker"], []).append(run)
    assert len(by_worker) >= 2  # after the loss, a round still ran on two workers
    versions = MlflowClient().search_model_versions("name = 'lamdagent-demo'")
    assert {r.info.run_id for r in others} <= {v.run_id for v in versions}
    assert lost.info.run_id not in {v.run_id for v in versions}
    assert MlflowClient().get_run(run_id).info.status == "FINISHED"


def test_joining_a_cluster_with_a_local_store_is_refused_before_any_compute(tracking_uri):
    from lamdagent.errors import UserError

    with pytest.raises(UserError, match=r"execution.ray_address='auto' joins a cluster, but the tracking store 'sqlite:///.*' is local"):
        explore([*RANDOM, "execution.executor=ray", "execution.ray_address=auto"])
    assert not MlflowClient().search_runs(["0"]) and MlflowClient().get_experiment_by_name("lamdagent/demo") is None
