"""The hybrid policy: the classical search proposes, the LLM agent accepts or overrides it with any
valid action and says why (the pattern that beats both an LLM alone and the search alone in fixed
search spaces: the optimiser gives a strong default, the LLM may change part of the decisions).

An override is refused, and the proposal taken, when it would extend a model that was made with no
gain, when its data is predicted to hurt every target, or when it could not be written validly; and
the agent loses the right to override once its overrides have gained less, on average, than the
proposals it accepted, or gained nothing when it accepted none (AdvisedGreedy.withdrawn, read from
the journal). So a weak model costs at most a few decisions against the search alone, and a capable
one can do better."""

from __future__ import annotations

import dataclasses
import random

from lamdagent.agent import prompts
from lamdagent.agent.policies import POLICIES, Decision
from lamdagent.agent.search import WITHOUT_LLM, AdvisedGreedy
from lamdagent.journal import Journal
from lamdagent.space import Action, ActionSpace

ACCEPT = "accept"
ACCEPTED, OVERRIDE, REFUSED = "accepted", "override", "refused"  # Entry.origin (WITHOUT_LLM: the agent was not asked)


@POLICIES.register("hybrid")
class HybridPolicy(AdvisedGreedy):
    name = "hybrid"

    def select(self, space: ActionSpace, journal: Journal, iteration: int) -> Decision:
        proposal = self.proposals(space, journal, iteration, limit=1)[0]
        decision = Decision(proposal, origin=ACCEPTED)
        if (withdrawn := self.withdrawn(journal, ACCEPTED, OVERRIDE, "overrides", "the proposals it accepted")) is not None:
            decision.origin, decision.notice = WITHOUT_LLM, withdrawn
            decision.transcript.append({"step": "override", "messages": [], "reply": None, "problem": withdrawn})
            return decision
        rng = random.Random(f"{self.seed}/{iteration}/hybrid")
        types = space.available_types()
        options = [{"decision": ACCEPT}] + [{"decision": t} for t in types]
        prompt = prompts.hybrid_prompt(journal, iteration, space, proposal, types)
        chosen = self.llm.ask(prompt, options, "override", decision, rng, free=("reason",), fallback={"decision": ACCEPT})["decision"]
        if chosen == ACCEPT:
            return decision
        fallbacks = len(decision.fallbacks)
        action = self.llm.objects(space, journal, iteration, chosen, decision, rng)
        reason = next((t.get("free", {}).get("reason", "") for t in reversed(decision.transcript) if t["step"] == "override"), "")
        if len(decision.fallbacks) > fallbacks:  # the random objects are discarded: say what is taken instead
            decision.fallbacks[fallbacks:] = [dataclasses.replace(f, took=f"the search's proposal {proposal}") for f in decision.fallbacks[fallbacks:]]
        refusal = "its objects could not be written validly" if len(decision.fallbacks) > fallbacks else self.refusal(action, journal)
        decision.transcript.append({"step": "verdict", "messages": [], "reply": None, "problem": refusal, "proposal": str(proposal), "override": str(action),
                                    "reason": reason})
        if refusal:
            decision.origin = REFUSED
        else:
            decision.action, decision.origin = action, OVERRIDE
        return decision

    @staticmethod
    def refusal(action: Action, journal: Journal) -> str:
        """Why an override is refused ("" when it is taken)."""
        copies = [m.name for m in action.models if m.name in journal.no_gain()]
        if copies:
            return f"it extends {', '.join(copies)}, made with no gain (a copy of its input): a no-gain lineage"
        data = [name for slot, name in action.names().items() if name in journal.evidence.effects]
        harmful = [d for d in data if journal.predicted_harmful(d)]
        if harmful:
            return f"the data screening predicts {', '.join(harmful)} to hurt every target"
        return ""
