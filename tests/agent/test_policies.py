"""The contract every Policy passes, and the LLM policy against a real local HTTP endpoint."""

import dataclasses

import pytest

from lamdagent.agent import prompts
from lamdagent.agent.llm import CHAT_BACKENDS, OpenAIChatModel
from lamdagent.agent.policies import POLICIES, LLMPolicy, RandomPolicy, parse_choice
from lamdagent.agent.search import GuidedPolicy
from lamdagent.config import load_config
from lamdagent.errors import UserError
from lamdagent.journal import Cause, Entry
from tests.journals import journal_of, made, scored
from tests.test_space import _model, _space

OPTIONS = [{"model": "a", "dataset": "all"}, {"model": "b", "dataset": "all"}]


MEMORY = "Lessons: sft on all helped."


def _journal(space, memory=MEMORY):
    return journal_of(space.models, memory)


def _outcome(space, text: str, iteration: int = 3, memory: str = MEMORY):
    """A journal whose latest decision (iteration `iteration`) made a model scored as `text` says, and that entry."""
    journal = _journal(space, memory)
    model = _model(text.split()[0])
    model.score, model.scores = float(text.split()[-1]), {"arith": 0.4}
    entry = journal.decide(Entry(iteration, "run-x", "ties", {"model_a": "a", "model_b": "b"}, "fp-x", "ties(a, b)", [], []))
    journal.finish("run-x", "ok", model)
    return journal, entry


def _llm(server, **kwargs) -> LLMPolicy:
    chat = OpenAIChatModel("fake-model", api_key="sk-test-secret", base_url=server.base_url, max_retries=0)
    return LLMPolicy(chat, **kwargs)


@pytest.fixture(params=["random", "llm", "greedy", "optuna", "guided", "hybrid"])
def policy(request, fake_openai):
    if request.param == "llm":
        return _llm(fake_openai)
    if request.param == "guided":
        return GuidedPolicy(_llm(fake_openai))
    if request.param == "hybrid":
        from lamdagent.agent.hybrid import HybridPolicy

        return HybridPolicy(_llm(fake_openai))
    return POLICIES[request.param].from_config(None, 0)


def test_contract_selects_a_valid_action_of_the_space(policy):
    space = _space([_model("base"), _model("a"), _model("b")])
    for iteration in range(1, 4):
        action = policy.select(space, _journal(space), iteration).action
        assert action.type.name in space.available_types()
        assert space.find(action.type.name, action.names()) is not None


def test_contract_is_deterministic(policy):
    space = _space([_model("base"), _model("a")])
    first = [str(policy.select(space, _journal(space), i).action) for i in range(1, 4)]
    assert first == [str(policy.select(space, _journal(space), i).action) for i in range(1, 4)]


def test_contract_memory_is_text(policy):
    memory, _ = policy.remember(*_outcome(_space([_model("a"), _model("b")]), "m1 scored 1.2"))
    assert isinstance(memory, str) and memory.strip()


def test_random_policy_samples_action_types_uniformly():
    space = _space([_model(f"m{i}") for i in range(8)])  # ties has far more bindings than sft
    types = [RandomPolicy(seed=3).select(space, _journal(space), i).action.type.name for i in range(1, 201)]
    assert 70 <= types.count("ties") <= 130


def test_two_steps_with_memory_directive_and_anti_bias(fake_openai):
    fake_openai.script = ['{"action_type": "ties"}', '{"model_a": "b", "model_b": "a", "weight": "0.7"}']
    space = _space([_model("base"), _model("a"), _model("b")])
    decision = _llm(fake_openai).select(space, _journal(space, "Lessons: merging a and b looked promising."), 1)
    assert decision.action.names() == {"model_a": "b", "model_b": "a", "weight": "0.7", "density": "0.5"}
    assert decision.fallbacks == []
    type_prompt, objects_prompt = fake_openai.prompts()
    for prompt in (type_prompt, objects_prompt):
        assert "merging a and b looked promising" in prompt
        assert "Exploration directive:" in prompt and "Avoid bias" in prompt
    assert "- sft(model, dataset, learning_rate)" in type_prompt and "- ties(" in type_prompt
    assert 'You chose the action type "ties"' in objects_prompt
    assert "0.3, 0.5, 0.7" in objects_prompt
    assert "(fixed by the study, not yours to choose: density = 0.5)" in objects_prompt  # one value: no choice
    schema = fake_openai.requests[1]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["weight"]["enum"] == ["0.3", "0.5", "0.7"]
    assert set(schema["properties"]) == {"model_a", "model_b", "weight"}
    assert {k.lower(): v for k, v in fake_openai.headers[0].items()}["authorization"] == "Bearer sk-test-secret"


def test_malformed_and_invalid_replies_are_retried(fake_openai):
    fake_openai.script = [
        "I am not sure yet",  # no JSON, no valid name
        '{"action_type": "sft"}',
        '{"model": "zzz", "dataset": "arith", "learning_rate": "0.001"}',  # not in the space
        '```json\n{"model": "a", "dataset": "arith", "learning_rate": 0.001}\n```',  # fenced, number
    ]
    space = _space([_model("base"), _model("a")])
    decision = _llm(fake_openai, max_retries=2).select(space, _journal(space), 1)
    assert str(decision.action) == "sft(model=a, dataset=arith, learning_rate=0.001)"
    assert decision.fallbacks == []
    problems = [t["problem"] for t in decision.transcript]
    assert problems[0] == "the reply holds no JSON object"
    assert "is not one of the valid choices" in problems[2]
    assert "Invalid reply" in fake_openai.prompts()[1]


def test_falls_back_to_a_random_valid_action_and_says_why(fake_openai):
    fake_openai.default = lambda request: '{"action_type": "dpo"}'
    space = _space([_model("base"), _model("a")])
    decision = _llm(fake_openai, max_retries=1).select(space, _journal(space), 1)
    assert space.find(decision.action.type.name, decision.action.names()) is not None
    assert [(f.step, f.cause) for f in decision.fallbacks] == [("action_type", Cause.INVALID), ("objects", Cause.INVALID)]
    assert "no valid reply (2 attempts; " in str(decision.fallbacks[0])


def test_memory_is_rewritten_by_the_llm(fake_openai):
    fake_openai.script = ["Lessons: ties hurt facts.\nNext: sft m2 on all."]
    memory, transcript = _llm(fake_openai).remember(*_outcome(_space([_model("a"), _model("b")]), "m3 scored 0.4"))
    assert memory == "Lessons: ties hurt facts.\nNext: sft m2 on all."
    prompt = fake_openai.prompts()[0]
    assert "Lessons: sft on all helped." in prompt and "ties(model_a=a, model_b=b) = ties(a, b)" in prompt and "m3 scored 0.400" in prompt


def test_empty_memory_reply_keeps_a_written_summary(fake_openai):
    fake_openai.script = [""]
    memory, _ = _llm(fake_openai).remember(*_outcome(_space([_model("a"), _model("b")]), "m3 scored 0.4"))
    assert "m3 scored 0.400" in memory


def test_server_errors_are_retried_by_the_client(fake_openai):
    fake_openai.script = [(500, "overloaded"), (429, "slow down"), '{"model": "a", "dataset": "all"}']
    chat = OpenAIChatModel("fake", api_key="k", base_url=fake_openai.base_url, max_retries=3)
    assert parse_choice(chat.choose([{"role": "user", "content": "x"}], OPTIONS), OPTIONS)[0] == OPTIONS[0]
    assert len(fake_openai.requests) == 3


def test_missing_api_key_is_a_one_line_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = load_config("demo", ["agent.backend=openai", "agent.model=gpt-4o"])
    with pytest.raises(UserError, match=r"needs an API key in \$OPENAI_API_KEY"):
        CHAT_BACKENDS[cfg.agent.backend](cfg.agent)


@pytest.mark.parametrize(
    "reply, ok",
    [('{"model": "a", "dataset": "all"}', True), ('{"model": "a"}', False), ('{"model": "a", "dataset": "all", "x": 1}', False),
     ("{'model': 'a'}", False), ('{"model": "c", "dataset": "all"}', False)],
)
def test_parse_choice_is_strict(reply, ok):
    assert (parse_choice(reply, OPTIONS)[0] is not None) == ok


TYPES = [{"action_type": "sft"}, {"action_type": "ties"}, {"action_type": "dare_ties"}]


@pytest.mark.parametrize("reply, chosen", [
    ('{"action_type": "ties(base, spec_facts, 0.5, \'trim\')"}', "ties"),  # a whole action where its type was asked
    ('{"action_type": "sft(spec_arith, all, learning_rate=0.01)"}', "sft"),
    ('Sure! Here is my choice:\n```json\n{"action_type": "TIES"}\n```\nHope this helps.', "ties"),  # prose, a fence, case
    ("I choose dare_ties.", "dare_ties"),  # no JSON, but exactly one valid name
    ("sft or ties, hard to say", None),  # two valid names: ambiguous
    ('{"action_type": "dpo"}', None),  # not offered
])
def test_parse_choice_accepts_a_looser_reply_only_when_it_names_exactly_one_option(reply, chosen):
    option, problem = parse_choice(reply, TYPES)
    assert (option["action_type"] if option else None) == chosen, problem


def test_a_rewrite_that_copies_the_prompt_is_replaced_by_a_summary(fake_openai):
    fake_openai.default = lambda request: "Old notes:\n" + request["messages"][0]["content"].split("New experiment")[1]
    memory, transcript = _llm(fake_openai).remember(*_outcome(_space([_model("a"), _model("b")]), "m3 scored 0.4"))
    assert transcript[0]["problem"] == "the reply copies the prompt"
    assert memory.startswith("Last (iteration 3): ties(model_a=a, model_b=b)")


def test_a_fixed_value_named_in_the_reply_is_tolerated(fake_openai):
    fake_openai.script = ['{"action_type": "ties"}', '{"model_a": "a", "model_b": "base", "weight": "0.3", "density": "0.9"}']
    space = _space([_model("base"), _model("a")])
    decision = _llm(fake_openai).select(space, _journal(space), 1)
    assert decision.fallbacks == [] and decision.action.names()["density"] == "0.5"


def test_an_endpoint_that_keeps_failing_gives_a_logged_fallback_not_a_crash(fake_openai):
    fake_openai.script = [(503, "down")] * 20
    space = _space([_model("base"), _model("a")])
    policy = _llm(fake_openai)
    decision = policy.select(space, _journal(space), 1)
    assert space.find(decision.action.type.name, decision.action.names()) is not None
    assert [f.cause for f in decision.fallbacks] == [Cause.ENDPOINT] * 2 and decision.endpoint_failures == 2
    assert "endpoint error (InternalServerError" in str(decision.fallbacks[0])
    memory, transcript = policy.remember(*_outcome(space, "m2 scored 1.0", iteration=2))
    assert memory.startswith("Last (iteration 2)") and transcript[0]["problem"].startswith("endpoint error")


def test_an_unreachable_endpoint_is_a_one_line_error_at_start(monkeypatch, fake_openai):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cfg = load_config("demo", ["agent.backend=openai", "agent.model=x", "agent.base_url=http://127.0.0.1:9/v1"])
    with pytest.raises(UserError, match=r"cannot reach the agent's endpoint http://127.0.0.1:9/v1"):
        CHAT_BACKENDS[cfg.agent.backend](cfg.agent)
    reachable = load_config("demo", ["agent.backend=openai", "agent.model=x", f"agent.base_url={fake_openai.base_url}"])
    assert CHAT_BACKENDS[reachable.agent.backend](reachable.agent).name == "x"  # the fake answers /models with an HTTP error: reachable


@pytest.mark.parametrize("name", ["random", "greedy", "optuna"])
def test_the_seed_changes_a_policys_choices_but_not_the_world(name):
    """agent.seed varies the policy's own randomness (what compare-policies' seeds vary): the seeds
    choose differently; the study (its actions, data, fingerprints) is the same under every seed."""
    from lamdagent.exploration.study import Study

    space = _space([_model("base"), _model("a"), _model("b")])
    choices = {seed: [str(POLICIES[name].from_config(None, seed).select(space, _journal(space), i).action) for i in range(1, 4)]
               for seed in range(5)}
    assert len({tuple(c) for c in choices.values()}) >= 3, choices

    worlds = [Study(load_config("demo", ["data.train_size=8", f"agent.seed={seed}"])) for seed in (0, 3)]
    models = [_model("base"), _model("a")]
    first, second = ([a.fingerprint for a in world.space(models).actions("sft")] for world in worlds)
    assert first == second
    assert [d.rows() for d in worlds[0].datasets] == [d.rows() for d in worlds[1].datasets]


def test_the_tools_facts_survive_a_nonsense_rewrite(fake_openai):
    """A weak model's rewrite that passes every check is still only its lessons: the facts the tool
    wrote from the journal (the best model, what each action did to each target) stay in the memory."""
    from lamdagent.agent.facts import FACTS, memory_text

    fake_openai.script = ["Your game hit 99.93% accuracy! Keep playing the levels."]
    journal, entry = _outcome(_space([_model("a"), _model("b")]), "m3 scored 0.4")
    lessons, transcript = _llm(fake_openai).remember(journal, entry)
    assert lessons.startswith("Your game hit") and transcript[0]["problem"] == ""  # nonsense the checks cannot tell
    memory = memory_text(journal, lessons)
    assert memory.startswith(FACTS) and "Best: m3 = " in memory and "- m3 = ties(a, b):" in memory and memory.endswith(lessons)
    assert "Best: m3 = " in fake_openai.prompts()[0]  # the facts are in the rewrite's prompt, apart from the old notes


def test_a_busy_endpoint_at_start_is_said_and_not_taken_for_an_absent_one(monkeypatch, capsys):
    """A local server serving another exploration takes the connection and answers later: the start-up
    check says so on the console and goes on; no listener at all stays a one-line error."""
    import socket

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setattr(OpenAIChatModel, "PROBE_SECONDS", 0.5)
    with socket.socket() as busy:  # the kernel completes the handshake; nobody ever answers
        busy.bind(("127.0.0.1", 0))
        busy.listen(8)
        url = f"http://127.0.0.1:{busy.getsockname()[1]}/v1"
        cfg = load_config("demo", ["agent.backend=openai", "agent.model=x", f"agent.base_url={url}", "agent.request_timeout=300"])
        assert CHAT_BACKENDS[cfg.agent.backend](cfg.agent).name == "x"
    said = " ".join(capsys.readouterr().err.split())
    assert f"agent endpoint {url}/: connected, but no answer within 0.5 s (busy with another client?)" in said
    assert "each request waits up to agent.request_timeout=300 s" in said


def test_the_objects_prompt_lists_what_was_already_made_with_that_type(fake_openai, monkeypatch):
    """A 1.5B agent re-chose an already-made merge four times in eight decisions (each a random fallback):
    the objects step now lists the type's earlier actions as not valid choices."""
    space = _space([_model("base"), _model("a"), dataclasses.replace(_model("b"), pipeline="sft(base, arith)")])  # b: an initial fine-tune
    journal = _journal(space)
    made(journal, space.find("ties", {"model_a": "a", "model_b": "b", "weight": "0.5", "density": "0.5"}), "m1", 1.0, 1)
    made(journal, next(iter(space.actions("sft"))), "m2", 1.0, 2)
    fake_openai.script = ['{"action_type": "ties"}', '{"model_a": "b", "model_b": "a", "weight": "0.7"}']
    _llm(fake_openai).select(_space(journal.models()), journal, 3)
    objects_prompt = fake_openai.prompts()[1]
    assert "Already made with this type (a repeat is not a valid choice): m1 = ties(model_a=a, model_b=b, weight=0.5, density=0.5)\n" in objects_prompt
    assert "m2 =" not in objects_prompt.split("Already made")[1]  # only this type's
    fake_openai.script = ['{"action_type": "sft"}', '{"model": "a", "dataset": "arith", "learning_rate": "0.001"}']
    _llm(fake_openai).select(_space(journal.models()), journal, 3)
    assert ("Already made with this type (a repeat is not a valid choice): b = sft(base, arith); sft() (failed); "
            "m2 = sft(model=base, dataset=arith, learning_rate=0.001)\n") in fake_openai.prompts()[3]  # an initial fine-tune, a failure, an action
    monkeypatch.setattr(prompts, "MADE_LISTED", 1)  # a long exploration lists the latest only
    fake_openai.script = ['{"action_type": "sft"}', '{"model": "a", "dataset": "arith", "learning_rate": "0.001"}']
    _llm(fake_openai).select(_space(journal.models()), journal, 3)
    assert "(a repeat is not a valid choice): m2 = sft(model=base, dataset=arith, learning_rate=0.001) (and 2 earlier)\n" in fake_openai.prompts()[5]


def test_every_prompt_begins_with_the_same_head_and_the_rewrite_reads_like_the_next_decision(fake_openai):
    """A server that reuses the previous request's prefix (llama.cpp, vLLM; OpenAI's prompt caching)
    evaluates only what changed: every prompt of an exploration starts with the same head (role, goal,
    data screening), and the memory rewrite's prompt shows the memory as the next decision's prompt
    will, up to the lessons. Behind a 1.5B llama.cpp server this cut the tokens evaluated by 38%."""
    from lamdagent.agent.facts import LESSONS, memory_text
    from lamdagent.agent.hybrid import HybridPolicy

    space = _space([scored(_model("a"), 0.6, arith=0.3, facts=0.3), scored(_model("b"), 0.5, arith=0.1, facts=0.4)])
    journal = _journal(space)
    fake_openai.script = ['{"action_type": "ties"}', '{"model_a": "a", "model_b": "b", "weight": "0.5"}']
    action = _llm(fake_openai).select(space, journal, 1).action
    made(journal, action, "m1", 0.9, 1, {"arith": 0.4, "facts": 0.5})
    fake_openai.script = ["Lessons: ties kept both.\nNext: sft m1 on all."]
    lessons, _ = _llm(fake_openai).remember(journal, journal.entries[-1])
    journal.entries[-1].memory = memory_text(journal, lessons)
    space = _space(journal.models())
    fake_openai.script = ['{"action_type": "sft"}', '{"model": "m1", "dataset": "arith", "learning_rate": "0.001"}']
    _llm(fake_openai).select(space, journal, 2)
    for policy, reply in ((GuidedPolicy(_llm(fake_openai)), '{"proposal": "2"}'), (HybridPolicy(_llm(fake_openai)), '{"decision": "accept"}')):
        fake_openai.script = [reply]
        assert not policy.select(space, journal, 2).fallbacks
    sent = [request["messages"][0]["content"] for request in fake_openai.requests]
    assert len(sent) == 7 and "A search heuristic" in sent[-2] and "proposes this next action" in sent[-1]
    assert all(p.startswith(prompts.head(journal) + "\n\nYour memory (the tool's facts, then your lessons):\n") for p in sent)
    rewrite, next_decision = sent[2], sent[3]
    shared = next_decision[: next_decision.index(LESSONS) + len(LESSONS)]
    assert rewrite.startswith(shared) and "Lessons: sft on all helped." in rewrite.split(LESSONS)[1]  # the old lessons, to rewrite


def test_the_shipped_templates_use_only_what_the_tool_fills():
    """check_templates passes on the package's own prompts, and its list of the common placeholders is
    what _common fills (a key added to one and not the other would fail here)."""
    prompts.check_templates()
    space = _space([_model("a"), _model("b")])
    assert set(prompts._common(_journal(space), 1, space)) == set(prompts.COMMON)
