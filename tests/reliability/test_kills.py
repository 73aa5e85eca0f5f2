"""Kill -9 an exploration at every named fault hook and at random times, resume it each time,
and check the store: nothing finished lost, the interrupted iteration KILLED and redone, no
duplicated or skipped iteration, the memory consistent, no half-written model registered."""

from __future__ import annotations

import random

import pytest

from lamdagent.tracking.lease import TAG as LEASE_TAG
from tests.conftest import FAST
from tests.fake_openai import FakeOpenAI
from tests.reliability import invariants
from tests.reliability.harness import Store
from tests.test_explore import steps_agent

STEPS = {
    1: ("sft", {"model": "spec_arith", "dataset": "arith", "learning_rate": "0.003"}),
    2: ("ties", {"model_a": "m1", "model_b": "spec_facts", "weight": "0.5", "density": "0.5"}),
    3: ("sft", {"model": "m2", "dataset": "facts", "learning_rate": "0.003"}),
}
# (LAMDAGENT_FAULT, where the process dies: "seed", an iteration, or None before any run starts)
KILLS = [
    ("train_step:2", "seed"),  # training spec_arith, an initial model
    ("agent_call:2", None),  # iteration 1: between the agent's two inference steps
    ("train_step:2", 1),
    ("after_build", 1),
    ("eval:2", 1),
    ("before_log_model", 1),
    ("log_model", 1),  # artifacts stored, the LoggedModel not finalised
    ("after_log_model", 1),  # registered, the run not finished
    ("memory_update", 1),
    ("before_finish", 1),  # memory logged, the run not finished
    ("after_finish", None),  # iteration 1 finished, its best.val.score point not logged
    ("after_merge", 2),
]
RANDOM_KILLS = 2


@pytest.mark.slow
@pytest.mark.ci
def test_kill_at_every_hook_and_at_random_times_then_resume(tmp_path, monkeypatch):
    with FakeOpenAI(default=steps_agent(STEPS)) as agent:
        store = Store(tmp_path, {"OPENAI_API_KEY": "sk-kill-test"})
        start = ["explore", "--study", "demo", *FAST, "data.val_size=6", "iterations=3", "agent.backend=openai", "agent.model=fake",
                 f"agent.base_url={agent.base_url}", "agent.request_retries=0"]
        resume = ["explore", "--resume", "latest", "--study", "demo"]
        killed_runs, seconds, cpu = 0, [], []
        for n, (fault, where) in enumerate(KILLS):
            outcome = store.run(start if n == 0 else resume, fault=fault)
            seconds.append(outcome.seconds)
            cpu.append(outcome.cpu_seconds)
            assert outcome.exitcode == -9, f"{fault}: the hook was not reached\n{outcome.log[-3000:]}"
            (exploration,) = [r.info.run_id for r in store.client.search_runs(
                [store.client.get_experiment_by_name("lamdagent/demo").experiment_id], "tags.`lamdagent.kind` = 'exploration'")]
            counts = invariants.check(store.client, exploration, resumed=False)
            killed_runs += where is not None
            assert store.client.get_run(exploration).data.tags.get(LEASE_TAG)  # a dead holder's lease is left behind
        rng = random.Random(6)
        for _ in range(RANDOM_KILLS):
            outcome = store.run(["explore", "--resume", exploration], kill_after=rng.uniform(2.0, 8.0))  # may also finish
            assert outcome.exitcode in (-9, 0), outcome.log[-3000:]
            invariants.check(store.client, exploration, resumed=outcome.exitcode == 0)
        final = store.run(["explore", "--resume", exploration])
        assert final.exitcode == 0, final.log[-3000:]
        counts = invariants.check(store.client, exploration)

    assert counts["finished"] == 3  # iterations lost: 0
    runs = invariants.children(store.client, exploration)
    by_iteration = {}
    for run in runs:
        by_iteration.setdefault((run.data.tags["lamdagent.kind"], run.data.tags["lamdagent.iteration"]), []).append(run.data.tags["lamdagent.status"])
    assert by_iteration[("action", "1")].count("killed") == sum(where == 1 for _, where in KILLS)
    assert by_iteration[("action", "1")][-1] == "ok" and by_iteration[("action", "2")][-1] == "ok"
    assert [r.data.tags["lamdagent.pipeline"] for r in runs if r.data.tags["lamdagent.status"] == "ok" and r.data.tags["lamdagent.kind"] == "action"] == [
        "sft(spec_arith, arith)", "ties(sft(spec_arith, arith), spec_facts)", "sft(ties(sft(spec_arith, arith), spec_facts), facts)"]
    seeds = sorted(r.data.tags["lamdagent.name"] for r in runs if r.data.tags["lamdagent.kind"] == "seed" and r.data.tags["lamdagent.status"] == "ok")
    assert seeds == ["base", "spec_arith", "spec_choice", "spec_facts"]
    assert counts["versions"] == 4 + 3  # seeds and three produced models; none of a killed run
    parent = store.client.get_run(exploration)
    assert parent.info.status == "FINISHED" and LEASE_TAG not in parent.data.tags  # released at exit
    # the memory each decision saw is the one of the last finished iteration, never a killed one's
    for prompt in agent.prompts():
        if "Choose the TYPE" in prompt:
            iteration = int(prompt.split("Iteration ")[1].split(" ")[0])
            expected = f"Lessons: iteration {iteration - 1} done." if iteration > 1 else "(empty: this is the first iteration)"
            assert expected in prompt
    print(f"kills survived: {len(KILLS) + RANDOM_KILLS}; killed runs redone: {counts['killed']} (at hooks: {killed_runs}); "
          f"per killed process: {sum(seconds) / len(seconds):.1f} s, {sum(cpu) / len(cpu):.1f} s of CPU")
