"""Real servers' dialects, played by the local fake server: structured-output negotiation,
replies in looser forms, and an endpoint that fails every request (it stops the exploration)."""

from __future__ import annotations

import io
import json

import mlflow
import pytest
from rich.console import Console

from lamdagent.agent.llm import request_form
from lamdagent.console import Display
from lamdagent.exploration.loop import start_or_resume
from lamdagent.tracking import Tracker
from tests.conftest import FAST
from tests.fake_openai import FakeOpenAI
from tests.test_explore import ITERATION_REPLIES, steps_agent

LLAMA_CPP_500 = ("1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
                 "  Input should be 'text' or 'json_object' [type=literal_error, input_value='json_schema']")


def dialect(name: str, steps: dict = ITERATION_REPLIES):
    """A server's way of answering: llama-cpp-python (500 to json_schema, json_object + schema
    accepted), one that ignores response_format and answers in prose, one that fences its JSON,
    one that answers the type question with a whole action."""
    agent = steps_agent(steps)

    def reply(request: dict):
        fmt = request.get("response_format") or {}
        text = agent(request)
        if "Write the updated notes" in request["messages"][0]["content"]:
            return text
        if name == "llama_cpp":
            return (500, LLAMA_CPP_500) if fmt.get("type") == "json_schema" else text
        if name == "prose":
            return f"Sure! Here is my choice: {text} Hope this helps."
        if name == "fenced":
            return f"```json\n{text}\n```\nI picked it because it extends the best model."
        if name == "whole_action" and "action_type" in text:
            chosen = json.loads(text)["action_type"]
            return json.dumps({"action_type": f"{chosen}(spec_arith, all, learning_rate=0.003)"})
        return text

    return reply


def _explore(server, extra=()):
    display = Display(Console(file=io.StringIO(), width=200))
    overrides = [*FAST, "iterations=3", "repeat_actions=true", "agent.backend=openai", "agent.model=fake", f"agent.base_url={server.base_url}",
                 "agent.request_retries=0", *extra]
    with display:
        run_id, records, _ = start_or_resume("demo", overrides, None, Tracker(), display)
    return run_id, records, display.console.file.getvalue()


def test_each_refused_form_steps_down_once_and_the_accepted_one_is_kept(fake_openai):
    """The negotiation ladder against servers that take less and less: json_schema, json_object with a
    schema (llama-cpp-python answers 500 to json_schema), a plain json_object, nothing."""
    from lamdagent.agent.llm import OpenAIChatModel

    def server(takes: tuple[str, ...]):
        def reply(request):
            form = request_form(request)
            if form in takes:
                return '{"pick": "b"}'
            return (500, LLAMA_CPP_500) if form == "json_schema" else (400, f"response_format {form} is not supported")
        return reply

    options = [{"pick": "a"}, {"pick": "b"}]
    for takes, accepted in ((("json_schema",), "json_schema"), (("json_object+schema",), "json_object+schema"), (("json_object",), "json_object"),
                            (("none",), "none")):
        fake_openai.requests.clear()
        fake_openai.default = server(takes)
        chat = OpenAIChatModel("fake", api_key="sk-test", base_url=fake_openai.base_url, max_retries=0)
        assert [chat.choose([{"role": "user", "content": "Pick b."}], options) for _ in range(2)] == ['{"pick": "b"}'] * 2
        sent = [request_form(r) for r in fake_openai.requests]
        ladder = ["json_schema", "json_object+schema", "json_object", "none"]
        assert sent == ladder[:ladder.index(accepted) + 1] + [accepted]  # each refused form tried once, the accepted one kept
        assert chat.structured_form == accepted and len(chat.negotiation) == ladder.index(accepted) and chat.retries == 0
        if accepted != "json_schema":
            assert chat.negotiation[0].startswith("json_schema refused (HTTP 500")
            schemas = [r["response_format"].get("schema") for r in fake_openai.requests if "response_format" in r]
            assert schemas[1:2] == [{"type": "object", "properties": {"pick": {"type": "string", "enum": ["a", "b"]}}, "required": ["pick"],
                                     "additionalProperties": False}]


@pytest.mark.slow
@pytest.mark.ci  # CI's dialect in the loop: the demo on the base alone, one task, one iteration
def test_llama_cpp_negotiation_is_said_once_and_tagged_on_the_exploration(tracking_uri, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI(default=dialect("llama_cpp", {1: ("sft", {"model": "base", "dataset": "arith", "learning_rate": "0.003"})})) as server:
        run_id, records, log = _explore(server, ["specialists=false", "tasks=[arith]", "iterations=1"])
    client = mlflow.MlflowClient()
    assert [(r.iteration, r.pipeline, r.status) for r in records if r.kind == "action"] == [(1, "sft(base, arith)", "ok")]
    assert sum(m.value for m in client.get_metric_history(run_id, "agent.fallbacks")) == 0
    assert client.get_run(run_id).data.tags["lamdagent.agent.structured_output"] == "json_object+schema"
    assert " ".join(log.split()).count("structured output json_schema refused (HTTP 500") == 1
    assert [request_form(r) for r in server.requests if "response_format" in r] == ["json_schema", "json_object+schema", "json_object+schema"]


@pytest.mark.slow
@pytest.mark.parametrize("name, form", [("llama_cpp", "json_object+schema"), ("prose", "json_schema"), ("fenced", "json_schema"),
                                        ("whole_action", "json_schema")])
def test_each_dialect_gives_valid_decisions_without_fallbacks(tracking_uri, monkeypatch, name, form):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI(default=dialect(name)) as server:
        run_id, records, log = _explore(server)
    client = mlflow.MlflowClient()
    assert sum(m.value for m in client.get_metric_history(run_id, "agent.fallbacks")) == 0
    assert [r.iteration for r in records if r.kind == "action"] == [1, 2, 3]
    assert client.get_run(run_id).data.tags["lamdagent.agent.structured_output"] == form
    if name == "llama_cpp":  # the step down is said once, and json_schema is not sent again
        assert " ".join(log.split()).count("structured output json_schema refused (HTTP 500") == 1
        sent = [r["response_format"]["type"] for r in server.requests if "response_format" in r]
        assert sent[0] == "json_schema" and set(sent[1:]) == {"json_object"} and all("schema" in r["response_format"] for r in server.requests[1:]
                                                                                   if "response_format" in r)


def test_an_endpoint_failing_every_request_stops_the_exploration_in_one_line(tracking_uri, monkeypatch, capsys):
    from lamdagent.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI(default=lambda request: (503, "model is loading")) as server:
        code = main(["explore", "--study", "demo", *FAST, "specialists=false", "iterations=2", "agent.backend=openai", "agent.model=fake",
                     f"agent.base_url={server.base_url}", "agent.request_retries=0"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 2
    assert "error: agent endpoint http://127.0.0.1" in out and "every request of iteration 1 failed (InternalServerError" in out
    assert "agent.on_endpoint_failure=random" in out and "Traceback" not in out
    assert "#1 agent fallback: action_type: endpoint error" in out  # each fallback was said on the console first
    (exploration,) = mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name("lamdagent/demo").experiment_id],
                                                       "tags.`lamdagent.kind` = 'exploration'")
    assert exploration.info.status == "KILLED"  # resumable once the endpoint is fixed


@pytest.mark.slow
def test_on_endpoint_failure_random_keeps_the_old_behaviour_and_says_so(tracking_uri, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI(default=lambda request: (503, "down") if "response_format" in request else "notes") as server:
        run_id, records, log = _explore(server, ["iterations=1", "agent.on_endpoint_failure=random"])
    text = " ".join(log.split())
    assert [r.iteration for r in records if r.kind == "action"] == [1]
    assert "agent fallbacks: 2 random choices over 1 decisions (1 x action_type: endpoint error, 1 x objects: endpoint error)" in text


def test_a_slow_answer_within_the_timeout_is_used_and_a_timeout_names_the_setting(fake_openai):
    from lamdagent.agent.llm import ChatError, OpenAIChatModel
    from tests.fake_openai import Slow

    chat = OpenAIChatModel("fake", api_key="sk-test", base_url=fake_openai.base_url, timeout=3, max_retries=0)
    fake_openai.script = [Slow(1.0, '{"a": "x"}'), Slow(5.0, '{"a": "x"}')]
    assert chat.choose([{"role": "user", "content": "?"}], [{"a": "x"}]) == '{"a": "x"}'
    with pytest.raises(ChatError, match="no answer within agent.request_timeout=3 s"):
        chat.choose([{"role": "user", "content": "?"}], [{"a": "x"}])
