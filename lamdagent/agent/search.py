"""Strong non-LLM policies in the same action space, for the claim that the agent helps:
greedy hill-climbing (extend the best model with its most promising untried action) and a
model-based search through optuna (TPE over an encoding of the action, ask-and-tell); and the
guided policy, the LLM agent choosing among greedy's proposals.

Both learn from their own decisions' outcomes, read back from the space's models at the next
decision (a model made by an action carries its fingerprint), so they need no hook in the loop
and are deterministic given the seed, the iteration and what they have seen. A resumed
exploration starts their history afresh (the scores of the models in the pool still steer greedy).
"""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass

from lamdagent.agent import prompts
from lamdagent.agent.policies import POLICIES, Decision, LLMPolicy, Policy, summary_memory
from lamdagent.agent.prompts import AgentContext
from lamdagent.space import Action, ActionSpace, ModelObject

TOP_RANKS = 4  # input models are encoded by their score rank, capped: 0 (best), 1, 2, 3, 4 (any other)


def ranked_models(space: ActionSpace) -> list[ModelObject]:
    """The scored models of the pool, best first (earlier models first on ties)."""
    return sorted((m for m in space.models if m.score is not None), key=lambda m: (-m.score, m.iteration))


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def features(action: Action, ranked: list[ModelObject]) -> dict[str, str]:
    """The action as categorical features: its type, its data, its hyperparameters and the score
    ranks of its input models (what transfers from one iteration's pool to the next)."""
    rank = {m.fingerprint: i for i, m in enumerate(ranked)}
    models = action.models
    data = [v.name for slot, v in action.bindings.items() if slot not in action.hparams and not isinstance(v, ModelObject)]

    def rank_of(model: ModelObject) -> str:
        return str(min(rank.get(model.fingerprint, TOP_RANKS), TOP_RANKS))

    return {
        "type": action.type.name,
        "data": data[0] if data else "-",
        "hparams": ",".join(f"{k}={_label(v)}" for k, v in action.hparams.items()) or "-",
        "rank_a": rank_of(models[0]) if models else "-",
        "rank_b": rank_of(models[1]) if len(models) > 1 else "-",
    }


@dataclass
class Pending:
    """A decision whose outcome is read back later: its features, its fingerprint, and the best
    score among its inputs (the gain is measured against it)."""

    features: dict[str, str]
    fingerprint: str
    base_score: float


class LearningPolicy(Policy):
    """A policy that remembers its decisions and reads their outcomes from the pool."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.pending: dict[int, Pending] = {}  # iteration -> its decision

    def outcomes(self, space: ActionSpace, before: int) -> list[tuple[Pending, float]]:
        """(decision, score of the model it made) for this policy's decisions before iteration `before`."""
        score_of = {m.fingerprint: m.score for m in space.models if m.score is not None}
        return [(p, score_of[p.fingerprint]) for it, p in sorted(self.pending.items()) if it < before and p.fingerprint in score_of]

    def decided(self, action: Action, ranked: list[ModelObject], ctx: AgentContext) -> Decision:
        base = max((m.score for m in action.models if m.score is not None), default=0.0)
        self.pending[ctx.iteration] = Pending(features(action, ranked), action.fingerprint, base)
        return Decision(action)

    def remember(self, ctx, action, result, best):
        return summary_memory(ctx, action, result, best), []


@POLICIES.register("greedy")
def greedy_policy(agent_cfg, seed: int = 0) -> Policy:
    return GreedyPolicy(seed)


UNTRIED_BONUS = 0.01  # an untried kind of action is worth more than one that gained nothing


class GreedyPolicy(LearningPolicy):
    """Hill-climbing: extend the best model that still has an untried action, with the action
    whose kind (type, data, hyperparameters) gained most on average so far. A kind not tried yet
    is estimated at half its type's average gain when that is positive, plus a small bonus: it comes
    before any kind that gained nothing or lost (else a merge of two near-copies, which gains exactly
    nothing, would be repeated for ever). A merge takes the best partner."""

    name = "greedy"

    def select(self, space: ActionSpace, ctx: AgentContext) -> Decision:
        ranked = ranked_models(space)
        return self.decided(self.proposals(space, ctx, ranked, limit=1)[0], ranked, ctx)

    def proposals(self, space: ActionSpace, ctx: AgentContext, ranked: list[ModelObject], limit: int) -> list[Action]:
        """Up to `limit` actions, the most promising first: for each scored model from the best down,
        its most promising action of each type (the first is greedy's own choice)."""
        rng = random.Random(f"{self.seed}/{ctx.iteration}")
        gains: dict[tuple, list[float]] = {}
        for pending, score in self.outcomes(space, ctx.iteration):
            f = pending.features
            for key in ((f["type"], f["data"], f["hparams"]), (f["type"],)):
                gains.setdefault(key, []).append(score - pending.base_score)

        def promise(action: Action) -> float:
            f = features(action, ranked)
            kind, of_type = gains.get((f["type"], f["data"], f["hparams"])), gains.get((f["type"],))
            if kind:
                return statistics.fmean(kind)
            return max(0.5 * statistics.fmean(of_type), 0.0) + UNTRIED_BONUS if of_type else UNTRIED_BONUS

        actions = [a for name in space.available_types() for a in space.actions(name)]
        chosen: list[Action] = []
        for model in ranked:
            extending = [a for a in actions if a.models and a.models[0] is model and all(m.score is not None for m in a.models)]
            partner = {id(a): min((ranked.index(m) for m in a.models[1:]), default=0) for a in extending}
            keys = {id(a): (promise(a), -partner[id(a)], rng.random()) for a in extending}
            best_of_type: dict[str, Action] = {}
            for action in sorted(extending, key=lambda a: keys[id(a)], reverse=True):
                best_of_type.setdefault(action.type.name, action)
            chosen += sorted(best_of_type.values(), key=lambda a: keys[id(a)], reverse=True)
            if len(chosen) >= limit:
                return chosen[:limit]
        return chosen or [rng.choice(actions)]  # no scored model to extend: any valid action


@POLICIES.register("guided")
def guided_policy(agent_cfg, seed: int = 0) -> Policy:
    from lamdagent.agent.policies import llm_policy

    return GuidedPolicy(llm_policy(agent_cfg, seed), seed)


class GuidedPolicy(GreedyPolicy):
    """The LLM agent choosing among greedy's proposals: the search proposes its most promising
    actions (each of the best models' best action of each type), the LLM picks one in a single
    step from the same memory, models and directive as the paper's agent, and rewrites its memory.
    A small LLM cannot weigh hundreds of bindings; it can weigh four."""

    name = "guided"
    PROPOSALS = 4

    def __init__(self, llm: LLMPolicy, seed: int = 0):
        super().__init__(seed)
        self.llm = llm

    @property
    def chat(self):
        """The chat model asked (the loop traces its requests and reports its retries and structured-output form)."""
        return self.llm.chat

    def select(self, space: ActionSpace, ctx: AgentContext) -> Decision:
        ranked = ranked_models(space)
        proposals = self.proposals(space, ctx, ranked, self.PROPOSALS)
        decision = Decision(action=proposals[0])
        if len(proposals) > 1:
            options = [{"proposal": str(number)} for number in range(1, len(proposals) + 1)]
            rng = random.Random(f"{self.seed}/{ctx.iteration}/guided")
            choice = self.llm.ask(prompts.proposals_prompt(ctx, space, proposals), options, "proposal", decision, rng)
            decision.action = proposals[int(choice["proposal"]) - 1]
        self.decided(decision.action, ranked, ctx)
        return decision

    def remember(self, ctx, action, result, best):
        return self.llm.remember(ctx, action, result, best)


@POLICIES.register("optuna")
def optuna_policy(agent_cfg, seed: int = 0) -> Policy:
    return OptunaPolicy(seed)


class OptunaPolicy(LearningPolicy):
    """Model-based search: optuna's TPE sampler, told the features and score of every decision so
    far (ask-and-tell), proposes the features of the next action; the available action that
    matches them best is taken (type first, then data, input ranks, hyperparameters)."""

    name = "optuna"
    WEIGHTS = {"type": 8, "data": 4, "rank_a": 2, "rank_b": 1, "hparams": 1}

    def select(self, space: ActionSpace, ctx: AgentContext) -> Decision:
        import optuna

        rng = random.Random(f"{self.seed}/{ctx.iteration}")
        ranked = ranked_models(space)
        distributions = {name: optuna.distributions.CategoricalDistribution(choices) for name, choices in self.vocabulary(space).items()}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=rng.randrange(2**31), n_startup_trials=3)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for pending, score in self.outcomes(space, ctx.iteration):
            params = {k: v for k, v in pending.features.items() if v in distributions[k].choices}
            if len(params) == len(distributions):
                study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=score))
        wanted = study.ask(fixed_distributions=distributions).params

        def match(action: Action) -> tuple:
            f = features(action, ranked)
            return sum(w for k, w in self.WEIGHTS.items() if f[k] == wanted[k]), rng.random()

        actions = [a for name in space.available_types() for a in space.actions(name)]
        return self.decided(max(actions, key=match), ranked, ctx)

    @staticmethod
    def vocabulary(space: ActionSpace) -> dict[str, list[str]]:
        """Every value each feature can take in this study (fixed as the pool grows: ranks are capped)."""
        hparams = {"-"}
        for action_type in space.action_types.values():
            choices = action_type.hparam_choices()
            for values in itertools.product(*choices.values()):
                hparams.add(",".join(f"{k}={_label(v)}" for k, v in zip(choices, values)) or "-")
        data = {"-", *(d.name for d in space.datasets), *(d.name for d in space.preference_datasets)}
        ranks = [str(i) for i in range(TOP_RANKS + 1)]
        return {"type": sorted(space.action_types), "data": sorted(data), "hparams": sorted(hparams), "rank_a": ["-", *ranks],
                "rank_b": ["-", *ranks]}
