"""The whole loop on the tiny demo, against a real MLflow store and a real local HTTP agent."""

import io
import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from rich.console import Console

from lamdagent.actions import ACTION_TYPES
from lamdagent.console import Display
from lamdagent.exploration.loop import start_or_resume
from lamdagent.tracking import Tracker
from tests.conftest import FAST

ITERATION_REPLIES = {
    1: ("sft", {"model": "spec_arith", "dataset": "all", "learning_rate": "0.003"}),
    2: ("ties", {"model_a": "m1", "model_b": "spec_facts", "weight": "0.5", "density": "0.5"}),
    3: ("sft", {"model": "base", "dataset": "arith", "learning_rate": "0.003"}),  # = spec_arith: cached
    # the demo's fast models all score 0: each action gains nothing, so its kind is not offered on its model again
    4: ("sft", {"model": "m2", "dataset": "facts", "learning_rate": "0.003"}),
    5: ("ties", {"model_a": "m4", "model_b": "spec_choice", "weight": "0.5", "density": "0.5"}),
}


def steps_agent(steps: dict) -> callable:
    """An agent that takes `steps[iteration]` (action type, objects) and writes a memory naming
    the iteration: it answers by what the prompt asks."""

    def reply(request: dict) -> str:
        prompt = request["messages"][0]["content"]
        if "Write the updated notes" in prompt:
            iteration = int(prompt.split("(iteration ")[1].split(" ")[0])
            return f"Lessons: iteration {iteration} done.\nNext: keep going."
        action_type, objects = steps[int(prompt.split("Iteration ")[1].split(" ")[0])]
        return json.dumps({"action_type": action_type} if "Choose the TYPE" in prompt else objects)

    return reply


@pytest.fixture
def agent(fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-e2e-secret")
    fake_openai.default = steps_agent(ITERATION_REPLIES)
    return ["agent.backend=openai", "agent.model=fake", f"agent.base_url={fake_openai.base_url}", "agent.temperature=0",
            "repeat_actions=true"]


def _explore(overrides, resume=None):
    display = Display(Console(file=io.StringIO()))
    with display:
        return start_or_resume("demo", overrides, resume, Tracker(), display)


def _runs(client, experiment_id, parent):
    runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent}'", max_results=100)
    return sorted(runs, key=lambda r: (int(r.data.tags["lamdagent.iteration"]), r.info.start_time))


@pytest.mark.slow
@pytest.mark.ci
def test_three_iterations_then_resume_to_five(tracking_uri, agent, fake_openai):
    run_id, _, _ = _explore([*FAST, *agent, "iterations=3"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("lamdagent/demo")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    parent = client.get_run(run_id)
    assert parent.data.tags["lamdagent.kind"] == "exploration" and parent.info.status == "FINISHED"
    assert parent.data.params["iterations"] == "3" and parent.data.params["agent.base_url"] == agent[2].split("=", 1)[1]

    runs = _runs(client, experiment.experiment_id, run_id)
    seeds = [r for r in runs if r.data.tags["lamdagent.kind"] == "seed"]
    actions = [r for r in runs if r.data.tags["lamdagent.kind"] == "action"]
    assert [r.data.tags["lamdagent.name"] for r in seeds] == ["base", "spec_arith", "spec_choice", "spec_facts"]
    assert [int(r.data.tags["lamdagent.iteration"]) for r in actions] == [1, 2, 3]
    run_of = {r.data.tags["lamdagent.name"]: r.info.run_id for r in runs}
    m1, m2, m3 = (r.data.tags for r in actions)
    assert m1["lamdagent.pipeline"] == "sft(spec_arith, all)"
    assert json.loads(m1["lamdagent.inputs"]) == [run_of["spec_arith"]]
    assert json.loads(m1["lamdagent.action"]) == ITERATION_REPLIES[1][1]
    assert m2["lamdagent.pipeline"] == "ties(sft(spec_arith, all), spec_facts)"
    assert json.loads(m2["lamdagent.inputs"]) == [run_of["m1"], run_of["spec_facts"]]
    assert [t["lamdagent.status"] for t in (m1, m2, m3)] == ["ok", "ok", "cached"]
    assert m3["lamdagent.source_run"] == run_of["spec_arith"]
    assert client.get_run(run_of["spec_arith"]).data.tags["lamdagent.pipeline"] == "sft(base, arith)"
    cached_metrics, source_metrics = actions[2].data.metrics, client.get_run(run_of["spec_arith"]).data.metrics
    assert "train.steps" not in cached_metrics and source_metrics["train.steps"] > 0  # nothing was trained again
    assert cached_metrics["cost.seconds"] < 0.25 * source_metrics["cost.seconds"]
    print(f"cached action: {cached_metrics['cost.seconds']:.3f} s; computing it: {source_metrics['cost.seconds']:.3f} s")
    assert m3["lamdagent.model_id"] == client.get_run(run_of["spec_arith"]).data.tags["lamdagent.model_id"]
    for run in actions:
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == run_id
        assert {"lamdagent.action_type", "lamdagent.fingerprint", "lamdagent.policy"} <= tags.keys()
        assert {"val.score", "val.arith", "val.choice", "val.facts"} <= run.data.metrics.keys()
        assert "agent.fallbacks" in run.data.metrics and run.data.metrics["agent.fallbacks"] == 0
        assert run.info.status == "FINISHED"
        memory = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/agent/memory.txt")
        facts, lessons = memory.split("Lessons (the agent's own notes):")
        assert facts.startswith("Facts (written by the tool from the results):\nBest: ") and "What the latest actions did to each target:" in facts
        assert lessons.strip().startswith(f"Lessons: iteration {tags['lamdagent.iteration']} done.")
        decision = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/agent/decision.json"))
        assert [step["step"] for step in decision] == ["action_type", "objects"]
    predictions = json.loads(mlflow.artifacts.load_text(f"runs:/{run_of['m1']}/predictions/val/arith.json"))
    assert len(predictions) == 12 and {"prompt", "generation", "answer", "gold", "reward"} <= predictions[0].keys()

    # one registered version per produced model: 4 seeds + m1 + m2 (m3 reused spec_arith's)
    versions = client.search_model_versions("name = 'lamdagent-demo'")
    assert len(versions) == 6
    assert {v.run_id for v in versions} == {run_of[n] for n in ("base", "spec_arith", "spec_choice", "spec_facts", "m1", "m2")}
    restored = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/lamdagent-demo/{versions[0].version}")
    assert any(name.endswith(".safetensors") for name in __import__("os").listdir(restored))

    # resume: iterations 4 and 5 under the same parent, the memory carried over
    fake_openai.requests.clear()
    again, records, _ = _explore(["iterations=5"], resume=run_id)
    assert again == run_id
    runs = _runs(client, experiment.experiment_id, run_id)
    actions = [r for r in runs if r.data.tags["lamdagent.kind"] == "action"]
    assert [int(r.data.tags["lamdagent.iteration"]) for r in actions] == [1, 2, 3, 4, 5]
    assert len([r for r in runs if r.data.tags["lamdagent.kind"] == "seed"]) == 4  # seeds not rebuilt
    assert "Lessons: iteration 3 done." in fake_openai.prompts()[0]  # iteration 4's first prompt
    assert actions[3].data.tags["lamdagent.pipeline"] == f"sft({m2['lamdagent.pipeline']}, facts)"
    assert actions[4].data.tags["lamdagent.pipeline"] == f"ties(sft({m2['lamdagent.pipeline']}, facts), spec_choice)"
    assert client.get_run(run_id).data.metrics["best.val.score"] == max(r.score for r in records if r.score is not None)
    history = client.get_metric_history(run_id, "best.val.score")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]

    # the API key never reaches the store: database, params, tags, artifacts
    stored = [p for p in Path(".").rglob("*") if p.is_file()]
    assert any(p.name == "memory.txt" for p in stored) and any(p.suffix == ".db" for p in stored)
    assert not [p for p in stored if b"sk-e2e-secret" in p.read_bytes()]


@pytest.mark.slow
@pytest.mark.ci  # CI's real offline agent in the loop: SmolLM2's weights converted once (~20 s), then ~15 s
def test_the_offline_agent_makes_a_real_decision(tracking_uri):
    """One iteration of the demo's default agent, SmolLM2 run locally, on the base alone: it picks the
    dataset to fine-tune on (four options) by constrained decoding, valid at once, and writes notes."""
    run_id, records, cfg = _explore([*FAST, "specialists=false", "tasks=[arith]", "iterations=1", "agent.memory_max_tokens=24"])
    assert cfg.agent.backend == "local" and cfg.agent.policy == "llm"
    [action] = [r for r in records if r.kind == "action"]
    decision = json.loads(mlflow.artifacts.load_text(f"runs:/{action.run_id}/agent/decision.json"))
    assert [(step["step"], step["problem"]) for step in decision] == [("action_type", ""), ("objects", "")]
    chosen = json.loads(decision[1]["reply"])
    assert chosen["model"] == "base" and chosen["dataset"] in ("arith", "choice", "facts", "all")  # the datasets stay the demo's
    assert action.status == "ok" and action.pipeline == f"sft(base, {chosen['dataset']})"
    assert mlflow.artifacts.load_text(f"runs:/{action.run_id}/agent/memory.txt").strip()


@pytest.mark.slow
def test_offline_local_agent_drives_the_loop(tracking_uri):
    """The demo's default agent: SmolLM2 run locally, its choices always valid."""
    run_id, records, cfg = _explore([*FAST, "iterations=2"])
    assert cfg.agent.backend == "local" and cfg.agent.policy == "llm"
    actions = [r for r in records if r.kind == "action"]
    assert [r.iteration for r in actions] == [1, 2]
    for record in actions:
        assert record.status in ("ok", "failed") and record.action_type in ("sft", "ties")
        decision = json.loads(mlflow.artifacts.load_text(f"runs:/{record.run_id}/agent/decision.json"))
        assert [step["problem"] for step in decision] == ["", ""]  # constrained: valid at once
        chosen = json.loads(decision[1]["reply"])
        assert chosen == {k: v for k, v in record.action.items() if k in chosen}  # fixed hparams are not asked
        assert mlflow.artifacts.load_text(f"runs:/{record.run_id}/agent/memory.txt").strip()
    assert actions[0].fingerprint != actions[1].fingerprint


@pytest.mark.slow
def test_interrupted_iteration_is_marked_killed_and_redone(tracking_uri, agent, monkeypatch):
    ties = ACTION_TYPES["ties"]
    original = ties.run

    def interrupted(self, bindings, ctx):
        raise KeyboardInterrupt  # Ctrl-C in the middle of iteration 2's merge

    monkeypatch.setattr(ties, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _explore([*FAST, *agent, "iterations=3"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("lamdagent/demo")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`lamdagent.kind` = 'exploration'")
    assert parent.info.status == "KILLED"
    monkeypatch.setattr(ties, "run", original)

    _explore(["iterations=3"], resume=parent.info.run_id)
    runs = _runs(client, experiment.experiment_id, parent.info.run_id)
    actions = [(int(r.data.tags["lamdagent.iteration"]), r.data.tags["lamdagent.status"], r.info.status)
               for r in runs if r.data.tags["lamdagent.kind"] == "action"]
    assert actions == [(1, "ok", "FINISHED"), (2, "killed", "KILLED"), (2, "ok", "FINISHED"), (3, "cached", "FINISHED")]
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"


ALL_TYPES = {
    1: ("dpo", {"model": "spec_facts", "preference_dataset": "facts_prefs", "beta": "0.1", "learning_rate": "0.0005"}),
    2: ("ties", {"model_a": "m1", "model_b": "spec_arith", "weight": "0.7", "density": "0.5"}),
    3: ("dare_ties", {"model_a": "spec_arith", "model_b": "spec_facts", "weight": "0.5", "density": "0.3"}),
    4: ("task_arithmetic", {"model_a": "m2", "model_b": "m3", "weight": "0.5"}),
    5: ("linear", {"model_a": "spec_choice", "model_b": "m4", "weight": "0.5"}),
    6: ("slerp", {"model_a": "m5", "model_b": "spec_arith", "t": "0.3"}),
    7: ("sft", {"model": "m6", "dataset": "all", "learning_rate": "0.003"}),
}


def _api_agent(fake_openai, monkeypatch, steps) -> list[str]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fake_openai.default = steps_agent(steps)
    return ["agent.backend=openai", "agent.model=fake", f"agent.base_url={fake_openai.base_url}"]


@pytest.mark.slow
def test_a_study_with_every_action_type(tracking_uri, fake_openai, monkeypatch):
    """demo_all: DPO, five merge methods and SFT chained over each other's outputs."""
    agent = _api_agent(fake_openai, monkeypatch, ALL_TYPES)
    display = Display(Console(file=io.StringIO()))
    with display:
        run_id, records, _ = start_or_resume("demo_all", [*FAST, "iterations=7", *agent, "dpo.epochs=1"], None, Tracker(), display)
    actions = [r for r in records if r.kind == "action"]
    assert [(r.action_type, r.status) for r in actions] == [(ALL_TYPES[i][0], "ok") for i in range(1, 8)]
    assert all(r.error == "" and r.score is not None for r in actions)
    assert actions[5].pipeline == (
        "slerp(linear(spec_choice, task_arithmetic(ties(dpo(spec_facts, facts_prefs, beta=0.1), spec_arith, weight=0.7),"
        " dare_ties(spec_arith, spec_facts, density=0.3))), spec_arith, t=0.3)"
    )
    client = MlflowClient()
    dpo_run = client.get_run(actions[0].run_id)
    assert dpo_run.data.metrics["train.pairs"] == 48 and "train.on_policy_pairs" in dpo_run.data.metrics
    assert dpo_run.data.params == {"beta": "0.1", "learning_rate": "0.0005"}
    for record in actions:
        metrics = client.get_run(record.run_id).data.metrics
        assert metrics["cost.seconds"] > 0 and metrics["cost.peak_rss_mb"] > 100
        assert metrics["agent.fallbacks"] == 0


LORA_STEPS = {
    1: ("sft", {"model": "base", "dataset": "all", "learning_rate": "0.003"}),
    2: ("dpo", {"model": "m1", "preference_dataset": "all_prefs", "beta": "0.1", "learning_rate": "0.0005"}),
    3: ("ties", {"model_a": "m2", "model_b": "spec_facts", "weight": "0.5", "density": "0.5"}),
    4: ("sft", {"model": "m2", "dataset": "arith", "learning_rate": "0.003"}),
}


@pytest.mark.slow
def test_lora_models_store_adapters_and_survive_resume(tracking_uri, fake_openai, monkeypatch):
    agent = _api_agent(fake_openai, monkeypatch, LORA_STEPS)
    overrides = [*FAST, "iterations=3", "actions=[sft,dpo,ties]", "sft.lora.enabled=true", "dpo.lora.enabled=true", "dpo.epochs=1", *agent]
    run_id, records, _ = _explore(overrides)
    _explore(["iterations=4"], resume=run_id)
    client = MlflowClient()
    runs = {r.data.tags["lamdagent.name"]: r for r in _runs(client, client.get_experiment_by_name("lamdagent/demo").experiment_id, run_id)}
    base = runs["base"]
    for name in ("spec_arith", "m1", "m2", "m4"):  # LoRA-trained: adapters over the base model
        assert runs[name].data.tags["lamdagent.status"] == "ok", runs[name].data.tags.get("lamdagent.error")
        assert runs[name].data.tags["lamdagent.adapter_of"] == base.info.run_id
        assert runs[name].data.metrics["model.bytes"] * 4 < base.data.metrics["model.bytes"]  # r=8 over a 128-wide model
    assert "lamdagent.adapter_of" not in runs["m3"].data.tags  # a merge of adapters is a full model
    assert runs["m3"].data.metrics["model.bytes"] >= base.data.metrics["model.bytes"] * 0.9
    assert runs["m4"].data.tags["lamdagent.pipeline"] == "sft(dpo(sft(base, all), all_prefs), arith)"  # base is a seed too
    assert all(r.data.metrics.get("agent.fallbacks", 0) == 0 for r in runs.values())


@pytest.mark.slow
def test_a_flops_budget_over_steps_made_before_the_count_says_so(tracking_uri, monkeypatch):
    """Models reused from runs that logged no operations (an older version) count none under
    budget.flops: the console says so once, not only the records."""
    world = [*FAST, "specialists=false", "tasks=[arith]", "datasets=[arith]", "agent.policy=greedy", "iterations=1"]
    logged = Tracker.log

    def without_operations(self, run_id, metrics=None, *args, **kwargs):
        return logged(self, run_id, {k: v for k, v in (metrics or {}).items() if k != "compute.flops"} or None, *args, **kwargs)

    monkeypatch.setattr(Tracker, "log", without_operations)
    _explore(world)
    monkeypatch.setattr(Tracker, "log", logged)
    out = io.StringIO()
    with Display(Console(file=out, width=300)) as display:
        start_or_resume("demo", [*world, "budget.flops=1e18"], None, Tracker(), display)
    said = " ".join(out.getvalue().split())
    assert said.count("were made before their floating-point operations were counted") == 1


@pytest.mark.slow
@pytest.mark.ci
def test_a_compute_budget_stops_the_exploration_and_a_resume_with_more_continues_it(tracking_uri):
    """budget.seconds counts the initial models' compute too: a budget they already spent stops
    before the first decision; a resume with a larger budget continues with the compute read back.
    budget.flops stops the same way, on the operations counted."""
    from lamdagent.journal import read_journal
    from lamdagent.tracking import Kind

    world = [*FAST, "specialists=false", "tasks=[arith]", "datasets=[arith,all]", "agent.policy=greedy", "iterations=2"]
    out = io.StringIO()
    with Display(Console(file=out, width=200)) as display:
        run_id, records, _ = start_or_resume("demo", [*world, "budget.seconds=0.001"], None, Tracker(), display)
    assert [r for r in records if r.kind == Kind.ACTION] == []
    assert "the compute budget is spent: " in out.getvalue() and "s (budget.seconds=0.001)" in out.getvalue()
    _, records, _ = _explore(["budget.seconds=null"], resume=run_id)
    assert [r.iteration for r in records if r.kind == Kind.ACTION] == [1, 2]
    seeds = [r for r in records if r.kind == Kind.SEED]
    journal = read_journal(records, [], ["arith"], 2)
    assert journal.overhead_seconds == pytest.approx(sum(r.compute_seconds for r in seeds)) and journal.overhead_seconds > 0
    assert journal.spent_seconds() > journal.overhead_seconds
    # budget.flops: the operations counted (the same on a busy machine); one action crosses a budget just above the initial models'
    assert journal.overhead_flops == sum(r.compute_flops for r in seeds) > 0 and not journal.uncounted()
    assert journal.spent_flops() > journal.overhead_flops
    out = io.StringIO()
    with Display(Console(file=out, width=200)) as display:
        _, records, _ = start_or_resume("demo", [*world, f"budget.flops={journal.overhead_flops * 1.001}"], None, Tracker(), display)
    assert [r.iteration for r in records if r.kind == Kind.ACTION] == [1]
    assert "the compute budget is spent: " in out.getvalue() and "floating-point operations (budget.flops=" in out.getvalue()
