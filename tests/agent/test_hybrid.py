"""The hybrid policy against a real local HTTP endpoint: the search proposes, the LLM accepts or
overrides with a reason; an invalid reply, a no-gain lineage or harmful data falls back to the
proposal, and an agent whose overrides did worse than its accepted proposals is no longer asked."""

import dataclasses
import json

import pytest

from lamdagent.agent.hybrid import HybridPolicy
from lamdagent.agent.llm import OpenAIChatModel
from lamdagent.agent.policies import LLMPolicy
from lamdagent.agent.search import GreedyPolicy
from lamdagent.journal import Evidence
from tests.journals import journal_of, made
from tests.test_space import _model, _space


def _hybrid(server, max_retries=1) -> HybridPolicy:
    return HybridPolicy(LLMPolicy(OpenAIChatModel("fake-model", api_key="sk-test", base_url=server.base_url, max_retries=0), max_retries=max_retries))


def _world():
    models = [dataclasses.replace(_model(n), score=s, scores={"arith": a, "facts": f}) for n, s, a, f in
              (("base", 0.5, 0.1, 0.1), ("a", 2.0, 0.9, 0.4), ("b", 1.0, 0.0, 0.8))]
    journal = journal_of(models)
    return journal, _space(journal.models())


def test_accepting_takes_the_searchs_proposal(fake_openai):
    journal, space = _world()
    fake_openai.script = ['{"decision": "accept"}']
    decision = _hybrid(fake_openai).select(space, journal, 1)
    assert str(decision.action) == str(GreedyPolicy(0).select(space, journal, 1).action) and decision.origin == "accepted"
    prompt = fake_openai.prompts()[0]
    assert "proposes this next action:\n" + str(decision.action) in prompt and "Do not override without such a reason" in prompt
    schema = fake_openai.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["decision"]["enum"][0] == "accept" and schema["properties"]["reason"] == {"type": "string"}


def test_an_override_with_a_reason_is_taken_and_its_reason_kept(fake_openai):
    journal, space = _world()
    fake_openai.script = ['{"decision": "ties", "reason": "a is strong on arith, b on facts"}',
                          '{"model_a": "a", "model_b": "b", "weight": "0.5"}']
    decision = _hybrid(fake_openai).select(space, journal, 1)
    assert str(decision.action) == "ties(model_a=a, model_b=b, weight=0.5, density=0.5)" and decision.origin == "override"
    verdict = decision.transcript[-1]
    assert verdict["step"] == "verdict" and verdict["problem"] == "" and verdict["reason"] == "a is strong on arith, b on facts"
    assert verdict["proposal"] == str(GreedyPolicy(0).select(space, journal, 1).action) != verdict["override"]  # what the LLM replaced


def test_an_invalid_reply_falls_back_to_the_proposal_not_to_chance(fake_openai):
    journal, space = _world()
    fake_openai.default = lambda request: "I would rather not say."
    decision = _hybrid(fake_openai).select(space, journal, 1)
    assert str(decision.action) == str(GreedyPolicy(0).select(space, journal, 1).action)
    assert [str(f) for f in decision.fallbacks] == ['override: no valid reply (2 attempts; the reply holds no JSON object); chose {"decision": "accept"}']


def test_an_override_whose_objects_are_invalid_is_refused_and_says_it_took_the_proposal(fake_openai):
    journal, space = _world()
    fake_openai.script = ['{"decision": "sft", "reason": "try it"}'] + ['{"model": "nobody", "dataset": "arith"}'] * 2
    decision = _hybrid(fake_openai).select(space, journal, 1)
    proposal = str(GreedyPolicy(0).select(space, journal, 1).action)
    assert str(decision.action) == proposal and decision.origin == "refused"
    assert decision.transcript[-1]["problem"] == "its objects could not be written validly"
    (fallback,) = decision.fallbacks
    assert fallback.step == "objects" and str(fallback).endswith(f"chose the search's proposal {proposal}")  # not "at random"


def test_an_override_that_extends_a_no_gain_model_or_uses_harmful_data_is_refused(fake_openai):
    journal, space = _world()
    merge = space.find("ties", {"model_a": "a", "model_b": "b", "weight": "0.5", "density": "0.5"})
    made(journal, merge, "m1", 2.0, 1, {"arith": 0.9, "facts": 0.4})  # a copy of a: no gain
    journal.evidence = Evidence({"arith": {"arith": -0.2, "facts": -0.1}, "facts": {"arith": 0.1, "facts": 0.3}})
    space = _space(journal.models())
    proposal = GreedyPolicy(0).select(space, journal, 2).action
    for objects, why in (('{"model": "m1", "dataset": "facts", "learning_rate": "0.001"}', "made with no gain"),
                         ('{"model": "a", "dataset": "arith", "learning_rate": "0.001"}', "predicts arith to hurt every target")):
        fake_openai.script = ['{"decision": "sft", "reason": "try it"}', objects]
        decision = _hybrid(fake_openai).select(space, journal, 2)
        assert str(decision.action) == str(proposal) and decision.origin == "refused"
        assert why in decision.transcript[-1]["problem"]


def test_an_agent_whose_overrides_did_worse_is_no_longer_asked(fake_openai):
    journal, space = _world()
    for iteration, (origin, gain) in enumerate((("override", -0.5), ("accepted", 0.3), ("override", -0.2)), start=1):
        action = [x for x in space.actions("sft") if x.names()["model"] == "a"][iteration - 1]  # on a (score 2.0)
        model = made(journal, action, f"m{iteration}", 2.0 + gain, iteration, {"arith": 0.1 * iteration, "facts": 0.0})
        journal.entries[-1].origin = origin
        assert journal.entries[-1].gain == pytest.approx(gain) and model.name == f"m{iteration}"
    space = _space(journal.models())
    decision = _hybrid(fake_openai).select(space, journal, 4)
    assert fake_openai.requests == [] and decision.origin == "proposal"
    assert "its 2 overrides gained -0.350 on average, the proposals it accepted +0.300" in decision.transcript[0]["problem"]
    assert json.dumps(decision.transcript)  # the transcript is logged as JSON


def test_an_agent_that_overrode_every_proposal_and_gained_nothing_is_no_longer_asked(fake_openai):
    journal, space = _world()
    gains = (0.0, -0.1)
    for iteration, gain in enumerate(gains, start=1):
        action = [x for x in space.actions("sft") if x.names()["model"] == "a"][iteration - 1]
        made(journal, action, f"m{iteration}", 2.0 + gain, iteration, {"arith": 0.1 * iteration, "facts": 0.0})
        journal.entries[-1].origin = "override"
    decision = _hybrid(fake_openai).select(_space(journal.models()), journal, 3)
    assert fake_openai.requests == [] and decision.origin == "proposal"
    assert decision.notice == "not asked: its 2 overrides gained -0.050 on average (nothing), and it took no proposal to compare"
    journal.entries[-1].origin = "accepted"  # one override that gained nothing is not yet a record
    fake_openai.script = ['{"decision": "accept"}']
    assert _hybrid(fake_openai).select(_space(journal.models()), journal, 3).origin == "accepted"
