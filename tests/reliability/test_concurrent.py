"""Three explorations at once in one tracking store (two of the same study, one of another), each
its own process and agent: histories, memories and iteration numbers never mix."""

from __future__ import annotations

import contextlib
import json

import mlflow
import pytest

from tests.conftest import FAST
from tests.fake_openai import FakeOpenAI
from tests.reliability import invariants
from tests.reliability.harness import Store

STEPS = {1: {"model": "base", "dataset": "arith"}, 2: {"model": "m1", "dataset": "facts"}}


def labelled_agent(label: str):
    """SFT by STEPS; a memory that names the exploration, so that any mix-up shows."""

    def reply(request):
        prompt = request["messages"][0]["content"]
        if "Write the updated notes" in prompt:
            iteration = int(prompt.split("New experiment (iteration ")[1].split(" ")[0])
            return f"Lessons: iteration {iteration} done by {label}.\nNext: keep going."
        if "Choose the TYPE" in prompt:
            return '{"action_type": "sft"}'
        return f'{{"model": "{STEPS[int(prompt.split("Iteration ")[1].split(" ")[0])]["model"]}", '\
               f'"dataset": "{STEPS[int(prompt.split("Iteration ")[1].split(" ")[0])]["dataset"]}", "learning_rate": "0.003"}}'

    return reply


@pytest.mark.slow  # `make test-all` (CI's time goes to the kills, the outage and the full loop)
def test_three_explorations_in_one_store_never_mix(tmp_path):
    labels = {"A": "demo", "B": "demo", "C": "other"}
    with contextlib.ExitStack() as stack:
        agents = {label: stack.enter_context(FakeOpenAI(default=labelled_agent(label))) for label in labels}
        store = Store(tmp_path, {"OPENAI_API_KEY": "sk-test"})
        processes = {
            label: store.start(["explore", "--study", "demo", *FAST, "data.val_size=6", "specialists=false", "iterations=2", f"name={study}",
                                "agent.backend=openai", "agent.model=fake", f"agent.base_url={agents[label].base_url}"])
            for label, study in labels.items()
        }
        for label, process in processes.items():
            process.join(600)
            assert process.exitcode == 0, open(process.log).read()[-3000:]
        prompts = {label: agent.prompts() for label, agent in agents.items()}
    client = store.client
    explorations = {}
    for study in ("demo", "other"):
        experiment = client.get_experiment_by_name(f"lamdagent/{study}").experiment_id
        for run in client.search_runs([experiment], "tags.`lamdagent.kind` = 'exploration'"):
            explorations[run.data.params["agent.base_url"]] = run.info.run_id
    assert len(explorations) == 3
    for label, agent_url in ((label, agents[label].base_url) for label in labels):
        exploration = explorations[agent_url]
        assert client.get_run(exploration).data.tags["lamdagent.study"] == labels[label]
        counts = invariants.check(client, exploration)
        assert counts["finished"] == 2
        runs = invariants.children(client, exploration)
        assert [r.data.tags["lamdagent.name"] for r in runs] == ["base", "m1", "m2"]
        for run in runs[1:]:
            memory = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/agent/memory.txt")
            assert memory.endswith(f"done by {label}.\nNext: keep going.")
            assert set(json.loads(run.data.tags["lamdagent.inputs"])) <= {r.info.run_id for r in runs}  # its own lineage
        others = [other for other in labels if other != label]
        assert not [p for p in prompts[label] if any(f"done by {other}" in p for other in others)]
        assert sum(f"done by {label}" in p for p in prompts[label]) >= 2  # iteration 2 saw iteration 1's memory
