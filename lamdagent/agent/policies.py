"""Policies pick the next action: the LLM agent (two inference steps) and the random baseline."""

from __future__ import annotations

import json
import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from lamdagent.agent import prompts
from lamdagent.agent.facts import lessons_of
from lamdagent.agent.llm import ChatError, ChatModel
from lamdagent.faults import checkpoint
from lamdagent.journal import Cause, Entry, Fallback, Journal
from lamdagent.registry import Registry
from lamdagent.space import Action, ActionSpace
from lamdagent.tracking import traces


@dataclass
class Decision:
    action: Action
    transcript: list[dict] = field(default_factory=list)  # prompts and raw replies, for artifacts
    fallbacks: list[Fallback] = field(default_factory=list)  # the steps that fell back to a random choice, and why
    retries: int = 0  # re-asks after an invalid reply
    endpoint_retries: int = 0  # retried requests to the agent's endpoint while deciding
    steps: int = 0  # inference steps asked (action type, objects)
    origin: str = ""  # who chose the action, for a policy of two minds (hybrid: accepted, override, refused; guided: first, other; proposal: not asked)
    notice: str = ""  # a degraded mode the loop announces on the console (the LLM no longer asked, and why)

    @property
    def endpoint_failures(self) -> int:
        """Steps that fell back because the endpoint failed (not because a reply was invalid)."""
        return sum(f.cause == Cause.ENDPOINT for f in self.fallbacks)


class Policy(ABC):
    """Chooses the next action from the action space and the exploration's journal, which holds all
    the history a policy may use: a policy keeps none of its own, so a resumed exploration decides as
    one that ran through. What the loop may use of a policy is declared here, with defaults."""

    name: ClassVar[str]
    uses_chat: ClassVar[bool] = False  # it asks the configured chat model (agent.backend): checked before any compute
    chat: ChatModel | None = None  # the chat model it asks: the loop traces its requests

    @classmethod
    @abstractmethod
    def from_config(cls, agent_cfg, seed: int = 0) -> Policy:
        """The policy `agent` settings describe; `seed` is its own randomness."""

    @abstractmethod
    def select(self, space: ActionSpace, journal: Journal, iteration: int) -> Decision:
        """One valid action of `space` for decision `iteration`."""

    def remember(self, journal: Journal, entry: Entry) -> tuple[str, list[dict]]:
        """The agent's new lessons after `entry`'s outcome (kept beside the tool's facts), and the
        transcript that produced them (by default a summary written without an LLM)."""
        return summary_memory(journal, entry), []

    @property
    def structured_form(self) -> str | None:
        """The structured-output form the chat endpoint accepted (None: no endpoint)."""
        return self.chat.structured_form if self.chat is not None else None

    @property
    def negotiation(self) -> list[str]:
        """Every step down of the structured-output form so far, and why."""
        return self.chat.negotiation if self.chat is not None else []

    @property
    def endpoint_retries(self) -> int:
        """Retried requests of the chat endpoint so far."""
        return self.chat.retries if self.chat is not None else 0


def summary_memory(journal: Journal, entry: Entry) -> str:
    """A memory written without an LLM: the last result and the best model."""
    return (f"Last (iteration {entry.iteration}): {prompts.action_text(entry)} -> {prompts.result_text(journal, entry)}\n"
            f"Best so far: {prompts.best_text(journal)}")


def memory_problem(reply: str, old_memory: str, prompt: str) -> str:
    """Why a memory rewrite is unusable ("" if it is fine): empty, unchanged, or a copy of the
    prompt's own text (what a very small model does)."""
    text = reply.strip()
    if not text:
        return "empty reply"
    if text == old_memory.strip():
        return "the old memory unchanged"
    own_lines = {line.strip() for line in old_memory.splitlines()}
    for line in prompt.splitlines():
        line = line.strip()
        if len(line) >= 30 and line not in own_lines and line in text:
            return "the reply copies the prompt"
    return ""


POLICIES: Registry[type[Policy]] = Registry("agent policy")


def chat_policies() -> list[str]:
    """The registered policies that ask the configured chat model, in the order they were registered."""
    return [name for name, policy in POLICIES.items() if policy.uses_chat]


def benchmark_policies() -> list[str]:
    """Every registered policy, those that ask the chat model first (compare-policies' default)."""
    return chat_policies() + [name for name, policy in POLICIES.items() if not policy.uses_chat]


@POLICIES.register("random")
class RandomPolicy(Policy):
    """The paper's ablation: an action type uniformly at random, then its objects uniformly."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    @classmethod
    def from_config(cls, agent_cfg, seed: int = 0) -> Policy:
        return cls(seed)

    def select(self, space: ActionSpace, journal: Journal, iteration: int) -> Decision:
        rng = random.Random(f"{self.seed}/{iteration}")
        type_name = rng.choice(space.available_types())
        return Decision(rng.choice(space.actions(type_name)))


_JSON_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)


def _loose(value) -> str:
    """A value as a small model may write it: case, spacing and quotes aside, and a call
    (`ties(base, spec_facts, 0.5)`) read as its name."""
    text = str(value).strip().strip("'\"`").strip()
    call = re.match(r"^([A-Za-z_][\w.]*)\s*\(", text)
    return (call.group(1) if call else text).lower()


def _same(value, expected: str) -> bool:
    try:
        return str(value) == expected or float(value) == float(expected)
    except (TypeError, ValueError):
        return False


def free_fields(reply: str, free: tuple[str, ...]) -> dict[str, str]:
    """The free-text fields (e.g. a reason) of a reply's JSON object, those given."""
    match = _JSON_OBJECT.search(reply)
    try:
        parsed = json.loads(match.group(0)) if match else {}
    except json.JSONDecodeError:
        return {}
    return {k: str(parsed[k]) for k in free if isinstance(parsed, dict) and k in parsed}


def parse_choice(reply: str, options: list[dict[str, str]], ignore: frozenset[str] = frozenset()) -> tuple[dict[str, str] | None, str]:
    """(the option the reply names, "") or (None, what is wrong with it). The reply's JSON object
    (prose or code fences around it are ignored) must have exactly the option's keys (keys in
    `ignore`, the fixed slots, may be added); numbers are compared by value. A value written more
    loosely (case, quotes, a whole action where its type was asked) is accepted when it names
    exactly one valid option; a one-key question answered without JSON, by naming exactly one valid
    value, is accepted too. Ambiguous replies are rejected."""
    keys = list(options[0])
    match = _JSON_OBJECT.search(reply)
    if not match:
        if len(keys) == 1:  # e.g. "I choose ties." for {"action_type": ...}
            words = set(re.findall(r"[A-Za-z_]\w*", reply.lower()))
            named = [o for o in options if o[keys[0]].lower() in words]
            if len(named) == 1:
                return named[0], ""
        return None, "the reply holds no JSON object"
    try:
        parsed = json.loads(match.group(0))
    except json.JSONDecodeError as err:
        return None, f"the JSON does not parse ({err.msg})"
    if isinstance(parsed, dict):
        parsed = {k: v for k, v in parsed.items() if k not in ignore}
    if not isinstance(parsed, dict) or set(parsed) != set(keys):
        return None, f"the JSON must have exactly the keys {keys}"
    for option in options:
        if all(_same(parsed[key], option[key]) for key in option):
            return option, ""
    loose = [o for o in options if all(_same(parsed[k], o[k]) or _loose(parsed[k]) == _loose(o[k]) for k in o)]
    if len(loose) == 1:
        return loose[0], ""
    if len(loose) > 1:
        return None, f"{json.dumps(parsed)} names {len(loose)} valid choices; name exactly one"
    return None, f"{json.dumps(parsed)} is not one of the valid choices"


@POLICIES.register("llm")
class LLMPolicy(Policy):
    """LaMDAgent's agent: action type first, then all its objects in one step, from prompts
    holding the memory. Replies are validated; after `max_retries` re-asks the policy falls back
    to a random valid choice and says why."""

    name = "llm"
    uses_chat = True

    def __init__(self, chat: ChatModel, *, temperature: float = 0.0, max_retries: int = 2, memory_max_tokens: int = 96, seed: int = 0):
        self.chat = chat
        self.temperature = temperature
        self.max_retries = max_retries
        self.memory_max_tokens = memory_max_tokens
        self.seed = seed

    @classmethod
    def from_config(cls, agent_cfg, seed: int = 0) -> LLMPolicy:
        """The paper's LLM agent, over the configured chat backend and prompt templates (checked before any compute)."""
        from lamdagent.agent.llm import CHAT_BACKENDS

        prompts.check_templates()
        return cls(CHAT_BACKENDS[agent_cfg.backend](agent_cfg, seed), temperature=agent_cfg.temperature, max_retries=agent_cfg.max_retries,
                   memory_max_tokens=agent_cfg.memory_max_tokens, seed=seed)

    def ask(self, prompt: str, options: list[dict[str, str]], step: str, decision: Decision, rng: random.Random,
            ignore: frozenset[str] = frozenset(), free: tuple[str, ...] = (), fallback: dict[str, str] | None = None) -> dict[str, str]:
        """The option the chat model chooses for `prompt` in one inference step, traced; retried on an
        invalid reply, and `fallback` (default: a random option) with the reason in `decision.fallbacks`
        when none comes. `free` fields (e.g. a reason) may come with the choice: kept in the transcript."""
        with traces.span(step, "CHAIN", inputs={"prompt": prompt, "options": len(options)}) as span:
            before = len(decision.transcript), len(decision.fallbacks)
            choice = self._ask_step(prompt, options, step, decision, rng, ignore, free, fallback)
            asked = decision.transcript[before[0]:]
            fell_back = decision.fallbacks[before[1]:]
            span.outputs({"choice": choice, "fallback": str(fell_back[0]) if fell_back else None,
                          "invalid": [t["problem"] for t in asked if t["problem"]], **(asked[-1].get("free") or {})})
            span.attributes(attempts=len(asked), invalid_replies=sum(1 for t in asked if t["problem"] and t["reply"] is not None))
            if fell_back:
                span.fail(str(fell_back[0]))
            return choice

    def _ask_step(self, prompt: str, options: list[dict[str, str]], step: str, decision: Decision, rng: random.Random,
                  ignore: frozenset[str], free: tuple[str, ...], fallback: dict[str, str] | None) -> dict[str, str]:
        messages = [{"role": "user", "content": prompt}]
        decision.steps += 1
        took = "at random" if fallback is None else f"{json.dumps(fallback)}"
        for attempt in range(self.max_retries + 1):
            try:
                reply = self.chat.choose(messages, options, temperature=self.temperature, free=free)
            except ChatError as err:  # the client already retried with backoff: fall back now
                decision.transcript.append({"step": step, "attempt": attempt, "messages": list(messages), "reply": None, "problem": str(err)})
                decision.fallbacks.append(Fallback(step, Cause.ENDPOINT, str(err), took))
                return fallback or rng.choice(options)
            checkpoint("agent_call")
            choice, problem = parse_choice(reply, options, ignore | frozenset(free))
            decision.transcript.append({"step": step, "attempt": attempt, "messages": list(messages), "reply": reply, "problem": problem,
                                        **({"free": free_fields(reply, free)} if free and choice else {})})
            if choice:
                return choice
            if attempt < self.max_retries:
                decision.retries += 1
            messages = messages + [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": f"Invalid reply: {problem}. Reply again with JSON only."},
            ]
        decision.fallbacks.append(Fallback(step, Cause.INVALID, f"{self.max_retries + 1} attempts; {problem}", took))
        return fallback or rng.choice(options)

    def objects(self, space: ActionSpace, journal: Journal, iteration: int, type_name: str, decision: Decision, rng: random.Random) -> Action:
        """The paper's second step: every slot of an action of `type_name` in one inference step."""
        slots = space.choice_slots(type_name)
        by_choice = {json.dumps({k: a.names()[k] for k in slots}): a for a in space.actions(type_name)}
        options = [json.loads(key) for key in by_choice]
        fixed = frozenset(s.name for s in space.action_types[type_name].slots) - set(slots)
        choice = self.ask(prompts.objects_prompt(journal, iteration, space, type_name), options, "objects", decision, rng, fixed)
        return by_choice[json.dumps(choice)]

    def select(self, space: ActionSpace, journal: Journal, iteration: int) -> Decision:
        rng = random.Random(f"{self.seed}/{iteration}")
        decision = Decision(action=None)  # type: ignore[arg-type]
        types = space.available_types()
        type_prompt = prompts.action_type_prompt(journal, iteration, space, types)
        type_name = self.ask(type_prompt, [{"action_type": t} for t in types], "action_type", decision, rng)["action_type"]
        decision.action = self.objects(space, journal, iteration, type_name, decision, rng)
        return decision

    def remember(self, journal: Journal, entry: Entry) -> tuple[str, list[dict]]:
        """The LLM rewrites its memory after `entry`; a useless rewrite never erases what it knew."""
        prompt = prompts.memory_prompt(journal, entry, max_words=max(20, int(self.memory_max_tokens * 0.7)))
        messages = [{"role": "user", "content": prompt}]
        try:
            reply = self.chat.chat(messages, max_tokens=self.memory_max_tokens, temperature=self.temperature)
            problem = memory_problem(reply, lessons_of(journal.memory()), prompt)
        except ChatError as err:
            reply, problem = "", f"endpoint error ({err})"
        transcript = [{"step": "memory", "messages": messages, "reply": reply, "problem": problem}]
        if problem:
            return summary_memory(journal, entry), transcript
        return reply.strip(), transcript


def make_policy(agent_cfg, seed: int = 0) -> Policy:
    """The policy `agent.policy` names, its chat model checked before any compute."""
    return POLICIES[agent_cfg.policy].from_config(agent_cfg, seed)
