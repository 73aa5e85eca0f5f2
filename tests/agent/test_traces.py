"""MLflow traces of the agent's and the judge's LLM calls: one trace per decision and per memory
rewrite, a span per request (a retried request shows as a failed span), token counts, linked to
the action's run (its Traces tab) and its LoggedModel; never an API key; never a broken exploration."""

from __future__ import annotations

import io
import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from rich.console import Console

from lamdagent.console import Display
from lamdagent.exploration.loop import start_or_resume
from lamdagent.tracking import Tracker, traces
from tests.conftest import FAST
from tests.fake_openai import FakeOpenAI
from tests.test_explore import ITERATION_REPLIES, steps_agent

SECRET = "sk-trace-secret-4242"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(autouse=True)
def _tracing_on():
    """Each test starts with tracing on and no earlier failure remembered."""
    traces._state.update(enabled=True, failed=False)
    yield
    traces._state.update(enabled=True, failed=False)


def _explore(overrides: list[str]) -> str:
    display = Display(Console(file=io.StringIO(), width=200))
    with display:
        run_id, _, _ = start_or_resume("demo", [*FAST, *overrides], None, Tracker(), display)
    return run_id


def _experiment() -> str:
    return mlflow.get_experiment_by_name("lamdagent/demo").experiment_id


def _traces(run_id: str | None = None) -> list:
    mlflow.flush_trace_async_logging()
    return list(MlflowClient().search_traces(locations=[_experiment()], run_id=run_id, max_results=200))


def _actions(exploration: str) -> list:
    runs = MlflowClient().search_runs([_experiment()], f"tags.mlflow.parentRunId = '{exploration}' and tags.`lamdagent.kind` = 'action'")
    return sorted(runs, key=lambda r: int(r.data.tags["lamdagent.iteration"]))


def _by_name(trace) -> dict[str, list]:
    spans: dict[str, list] = {}
    for span in sorted(trace.data.spans, key=lambda s: s.start_time_ns):
        spans.setdefault(span.name, []).append(span)
    return spans


def _endpoint(server) -> list[str]:
    return ["agent.backend=openai", "agent.model=fake", f"agent.base_url={server.base_url}", "agent.temperature=0", "repeat_actions=true"]


# two decisions on the base alone (no specialists to train: CI runs this test)
ON_BASE = {1: ("sft", {"model": "base", "dataset": "arith", "learning_rate": "0.003"}),
           2: ("sft", {"model": "m1", "dataset": "facts", "learning_rate": "0.003"})}  # m1 copies the base (all score 0): no merge of the two


@pytest.mark.slow  # an exploration
@pytest.mark.ci
def test_each_decision_and_memory_rewrite_is_a_trace_on_its_action_run(tracking_uri, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeOpenAI(default=steps_agent(ON_BASE)) as server:
        server.script = [(503, "model is loading")]  # the first request fails once, then is retried
        exploration = _explore([*_endpoint(server), "specialists=false", "iterations=2", "agent.request_retries=1"])
    actions = _actions(exploration)
    assert [r.data.tags["lamdagent.iteration"] for r in actions] == ["1", "2"]
    everything = _traces()
    assert len(everything) == 4  # a decision and a memory rewrite per iteration, nothing else
    for run in actions:
        run_id, iteration = run.info.run_id, run.data.tags["lamdagent.iteration"]
        found = _traces(run_id)  # what the run's Traces tab lists
        assert sorted(t.info.tags["lamdagent.trace"] for t in found) == ["decide", "remember"]
        by_kind = {t.info.tags["lamdagent.trace"]: t for t in found}
        decide, remember = by_kind["decide"], by_kind["remember"]
        for trace in found:
            assert trace.info.trace_metadata["mlflow.sourceRun"] == run_id
            assert trace.info.tags["lamdagent.iteration"] == iteration and trace.info.tags["lamdagent.exploration"] == exploration
            assert trace.info.experiment_id == run.info.experiment_id
        # the decision: root AGENT span, one CHAIN span per step, a CHAT_MODEL span per request
        spans = _by_name(decide)
        root = decide.data.spans[0]
        assert root.parent_id is None and root.name == "decide" and root.span_type == "AGENT"
        assert root.inputs["iteration"] == int(iteration) and "sft" in root.inputs["action_types"]
        assert "ties" not in root.inputs["action_types"]  # 1: one model; 2: m1 copies the base (all score 0): no merge of a model with its copy
        assert root.outputs["pipeline"] == run.data.tags["lamdagent.pipeline"] and root.outputs["fallbacks"] == []
        assert [s.span_type for s in spans["action_type"] + spans["objects"]] == ["CHAIN", "CHAIN"]
        assert spans["objects"][0].outputs["choice"].items() <= ON_BASE[int(iteration)][1].items()  # fixed slots are not asked
        requests = spans["chat.completions"]
        assert all(s.span_type == "CHAT_MODEL" for s in requests)
        for request in requests:
            assert request.inputs["messages"][0]["role"] == "user" and request.attributes["model"] == "fake"
            assert request.attributes["structured_form"] == "json_schema" and request.attributes["latency_ms"] >= 0
        ok = [s for s in requests if s.status.status_code == "OK"]
        assert len(ok) == 2 and json.loads(ok[0].outputs["reply"]) == {"action_type": ON_BASE[int(iteration)][0]}
        assert all(s.attributes["mlflow.chat.tokenUsage"] == {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2} for s in ok)
        assert decide.info.token_usage["total_tokens"] == 4
        failed = [s for s in requests if s.status.status_code == "ERROR"]
        if iteration == "1":  # the retried request: a failed span with its error, then the attempt that answered
            assert len(requests) == 3 and requests[0] is failed[0]
            assert failed[0].attributes["attempt"] == 0 and failed[0].attributes["status_code"] == 503
            assert "model is loading" in failed[0].events[0].attributes["exception.message"]
            assert requests[1].attributes["attempt"] == 1 and requests[1].status.status_code == "OK"
        else:
            assert failed == [] and len(requests) == 2
        # the memory rewrite: its request, the new memory, linked to the run's LoggedModel
        memory = _by_name(remember)
        assert remember.data.spans[0].outputs["memory"].endswith(f"Lessons: iteration {iteration} done.\nNext: keep going.")
        assert memory["chat.completions"][0].attributes["structured_form"] == "none"
        assert remember.info.trace_metadata["mlflow.modelId"] == run.data.tags["lamdagent.model_id"]
    # filtering by the run link works too, and the exploration run itself holds no trace
    first = actions[0].info.run_id
    assert len(MlflowClient().search_traces(locations=[_experiment()], filter_string=f"metadata.`mlflow.sourceRun` = '{first}'")) == 2
    assert _traces(exploration) == []
    # no API key in any trace (request, response, attributes, tags), nor anywhere in the store
    for trace in everything:
        assert SECRET not in trace.to_json()
    stored = [p for p in Path(".").rglob("*") if p.is_file()]
    assert not [p for p in stored if SECRET.encode() in p.read_bytes()]


@pytest.mark.slow  # an exploration: the seeds are trained (~2 min)
def test_no_usage_reported_means_no_token_counts(tracking_uri, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeOpenAI(default=steps_agent(ITERATION_REPLIES)) as server:
        server.usage = None
        _explore([*_endpoint(server), "iterations=1"])
    (decide,) = [t for t in _traces() if t.info.tags["lamdagent.trace"] == "decide"]
    assert all("mlflow.chat.tokenUsage" not in s.attributes for s in decide.data.spans)


@pytest.mark.slow  # an exploration: the seeds are trained (~2 min)
def test_switched_off_or_without_an_llm_there_are_no_traces(tracking_uri, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeOpenAI(default=steps_agent(ITERATION_REPLIES)) as server:
        _explore([*_endpoint(server), "iterations=1", "agent.trace=false"])
        assert len(server.requests) == 3  # the agent was asked, nothing traced
    _explore(["iterations=1", "agent.policy=random"])
    assert _traces() == []


@pytest.mark.slow  # an exploration: the seeds are trained (~2 min)
def test_a_failing_trace_store_never_breaks_the_exploration(tracking_uri, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)

    def broken(*args, **kwargs):
        raise RuntimeError("this store keeps no traces")

    monkeypatch.setattr(mlflow, "start_span", broken)
    with FakeOpenAI(default=steps_agent(ITERATION_REPLIES)) as server:
        exploration = _explore([*_endpoint(server), "iterations=1"])
    assert [r.data.tags["lamdagent.status"] for r in _actions(exploration)] == ["ok"]
    err = capsys.readouterr().err
    assert err.count("tracing off: MLflow could not record an agent trace (RuntimeError: this store keeps no traces)") == 1


def test_trace_ids_are_unique_and_leave_the_seeded_random_stream_alone(tracking_uri):
    """MLflow draws ids from the global `random`, which training seeds: traces made after the same
    seed must still differ, and the seeded stream must not move."""
    import random

    experiment = MlflowClient().create_experiment("ids")
    ids = []
    for _ in range(3):
        random.seed(0)
        with traces.trace("decide", experiment_id=experiment) as trace, traces.span("chat.completions") as span:
            ids.append(trace.trace_id)
            assert span.trace_id == trace.trace_id
        assert random.random() == random.Random(0).random()
    assert len(set(ids)) == 3
    mlflow.flush_trace_async_logging()
    assert len(MlflowClient().search_traces(locations=[experiment])) == 3


def test_spans_outside_a_trace_record_nothing(tracking_uri, fake_openai):
    """A policy or chat model used outside an exploration writes nothing to any store."""
    from lamdagent.agent.llm import OpenAIChatModel

    chat = OpenAIChatModel("fake", api_key=SECRET, base_url=fake_openai.base_url, max_retries=0)
    assert chat.choose([{"role": "user", "content": "?"}], [{"a": "x"}]) == '{"a": "x"}'
    mlflow.flush_trace_async_logging()
    assert list(MlflowClient().search_traces(locations=["0"])) == []


def test_judge_calls_are_traces_of_the_run_being_evaluated(tracking_uri, fake_openai, monkeypatch):
    from lamdagent.agent.llm import OpenAIChatModel
    from lamdagent.evaluation.judge import Judge

    client = MlflowClient()
    experiment = client.create_experiment("judged")
    run_id = client.create_run(experiment).info.run_id
    fake_openai.script = ["I cannot decide.", "Rating: [[7]]"]
    judge = Judge(OpenAIChatModel("judge-model", api_key=SECRET, base_url=fake_openai.base_url, max_retries=0))
    with traces.linked(run_id, experiment):
        assert judge.rate("What is 2+2?", "4") == 7
    mlflow.flush_trace_async_logging()
    (trace,) = client.search_traces(locations=[experiment], run_id=run_id)
    spans = _by_name(trace)
    assert spans["judge"][0].span_type == "LLM" and spans["judge"][0].outputs == {"rating": 7.0, "attempts": 2}
    assert spans["judge"][0].inputs["question"] == "What is 2+2?" and spans["judge"][0].attributes["judge_model"] == "judge-model"
    assert [s.outputs["reply"] for s in spans["chat.completions"]] == ["I cannot decide.", "Rating: [[7]]"]
    assert SECRET not in trace.to_json()


def test_the_offline_backend_traces_prompts_replies_and_token_counts(tracking_uri):
    """The local backend, here on the tiny test model (SmolLM2's real weights are in the slow tests)."""
    from lamdagent.agent.local_llm import LocalChatModel
    from lamdagent.models.folders import resolve_base_model

    client = MlflowClient()
    experiment = client.create_experiment("offline")
    run_id = client.create_run(experiment).info.run_id
    chat = LocalChatModel(str(resolve_base_model("builtin:tiny-llama")))
    chat.tokenizer.chat_template = CHATML  # the tiny model's tokenizer has none
    messages = [{"role": "user", "content": "Pick a fruit."}]
    with traces.trace("decide", experiment_id=experiment, run_id=run_id):
        reply = chat.choose(messages, [{"pick": "apple"}, {"pick": "zebra"}])
        note = chat.chat(messages, max_tokens=5)
    mlflow.flush_trace_async_logging()
    (trace,) = client.search_traces(locations=[experiment], run_id=run_id)
    spans = _by_name(trace)
    choose, generate = spans["local.choose"][0], spans["local.generate"][0]
    assert choose.span_type == generate.span_type == "CHAT_MODEL"
    assert choose.inputs["messages"] == messages and choose.outputs == {"reply": reply} and choose.attributes["structured_form"] == "constrained decoding"
    assert generate.outputs == {"reply": note}
    for span in (choose, generate):
        usage = span.attributes["mlflow.chat.tokenUsage"]
        assert usage["input_tokens"] > 3 and usage["output_tokens"] >= 1
    assert generate.attributes["mlflow.chat.tokenUsage"]["output_tokens"] <= 5
