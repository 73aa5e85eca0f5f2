"""Strong non-LLM policies in the same action space, for the claim that the agent helps:
greedy hill-climbing (extend the best model with its most promising untried action) and a
model-based search through optuna (TPE over an encoding of the action, ask-and-tell); and the
guided policy, the LLM agent choosing among greedy's proposals.

They learn from the outcomes of the exploration's earlier decisions, read from its journal with the
pool each decision saw, so they keep no history of their own: a resumed exploration, in another
process, makes the same decisions as one that ran through (given the seed and the iteration).
"""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lamdagent.agent import prompts
from lamdagent.agent.policies import POLICIES, Decision, LLMPolicy, Policy
from lamdagent.journal import Entry, Journal
from lamdagent.space import Action, ActionSpace, ModelObject, lineage, with_defaults

if TYPE_CHECKING:
    from lamdagent.actions import ActionType

TOP_RANKS = 4  # input models are encoded by their score rank, capped: 0 (best), 1, 2, 3, 4 (any other)


def ranked_models(models: list[ModelObject]) -> list[ModelObject]:
    """The scored models, best first (earlier models first on ties)."""
    return sorted((m for m in models if m.score is not None), key=lambda m: (-m.score, m.iteration))


def _label(value) -> str:
    """A hyperparameter's value as the agent names it (Action.names)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def ranks_of(ranked: list[ModelObject]) -> dict[str, int]:
    """Model name -> its position in `ranked` (what `features` encodes), computed once per pool."""
    return {m.name: i for i, m in enumerate(ranked)}


def _features(action_type: ActionType, names: dict[str, str], rank: dict[str, int]) -> dict[str, str]:
    names = with_defaults(action_type, names)  # a specialist names no epochs: its default
    kinds = {slot.name: slot.kind for slot in action_type.slots}
    models = [names[slot] for slot, kind in kinds.items() if kind == "model"]
    data = [names[slot] for slot, kind in kinds.items() if kind in ("dataset", "preference")]

    def rank_of(name: str) -> str:
        return str(min(rank.get(name, TOP_RANKS), TOP_RANKS))

    return {
        "type": action_type.name,
        "data": data[0] if data else "-",
        "hparams": ",".join(f"{slot}={names[slot]}" for slot, kind in kinds.items() if kind == "hparam") or "-",
        "rank_a": rank_of(models[0]) if models else "-",
        "rank_b": rank_of(models[1]) if len(models) > 1 else "-",
    }


def features(action: Action, rank: dict[str, int]) -> dict[str, str]:
    """The action as categorical features: its type, its data, its hyperparameters and the score
    ranks of its input models (`rank`: ranks_of the pool's ranked models; what transfers from one
    iteration's pool to the next)."""
    return _features(action.type, action.names(), rank)


@dataclass
class Outcome:
    """A past decision as a learning policy sees it: its features when it was made, the best score
    among its inputs and the score of the model it made; for an action that trains one model on data
    (sft, dpo), also the per-task scores (rewards in [0, 1]) of that model before and after."""

    features: dict[str, str]
    base_score: float
    score: float
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)

    @property
    def gain(self) -> float:
        return self.score - self.base_score

    def gain_on(self, scores: dict[str, float], weights: dict[str, float]) -> float:
        """The gain this outcome predicts for its kind of action on a model of per-task `scores`, under
        the task weights: on each task, training closes the same share of the room left to gain (a
        rise from 0.2 to 0.6 closed half of 0.8: on a model at 0.9 it adds 0.05) or takes the same
        share of the score (a fall from 0.5 to 0.4 takes a fifth). A fine-tune that raised a target
        from nothing predicts little for a model already near the top there (diminishing returns).
        Without per-task scores or weights (a merge, an unscored input): the gain as measured."""
        if not (self.before and self.after and weights):
            return self.gain
        total = 0.0
        for task, weight in weights.items():
            before, after, now = (min(max(s.get(task, 0.0), 0.0), 1.0) for s in (self.before, self.after, scores))
            if after >= before:
                total += weight * (after - before) / (1.0 - before) * (1.0 - now) if before < 1.0 else 0.0
            else:
                total += weight * (after - before) / before * now
        return total


def outcomes(journal: Journal, space: ActionSpace) -> list[Outcome]:
    """Every outcome of the journal that made a scored model (the initial models an action made, then
    the decisions in the order their outcomes arrived), encoded with the ranks of the pool it saw
    (outcomes of an action type the study no longer has are left out)."""
    found = []
    for entry in journal.measured():
        if entry.model is None or entry.model.score is None or entry.action_type not in space.action_types:
            continue
        f = _features(space.action_types[entry.action_type], entry.action, ranks_of(ranked_models(journal.pool_at(entry))))
        trained = f["data"] != "-" and len(entry.inputs) == 1 and entry.inputs[0].scores  # one model trained on data
        found.append(Outcome(f, entry.model.score - entry.gain, entry.model.score, dict(entry.inputs[0].scores) if trained else {},
                             dict(entry.model.scores) if trained else {}))
    return found


class LearningPolicy(Policy):
    """A policy that learns from the outcomes of the journal's decisions."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    @classmethod
    def from_config(cls, agent_cfg, seed: int = 0) -> Policy:
        return cls(seed)


UNTRIED_BONUS = 0.01  # an untried kind of action is worth more than one that gained nothing


def factors(f: dict[str, str]) -> list[tuple]:
    """The parts of a kind of action that may transfer to another kind of its type: its data, and each
    hyperparameter's value (e.g. ("sft", "epochs", "12"))."""
    parts = [(f["type"], "data", f["data"])] if f["data"] != "-" else []
    if f["hparams"] != "-":
        parts += [(f["type"], *part.split("=", 1)) for part in f["hparams"].split(",")]
    return parts


def untried(estimate: float, bonus: float) -> float:
    """An untried kind's promise from the gain its parts predict (`estimate`): that gain plus `bonus`
    when positive; else a share of `bonus` that shrinks as the predicted loss grows, so the kind
    still comes before any kind that gained nothing or lost, but after the untried kinds with less
    against them."""
    return estimate + bonus if estimate > 0 else bonus / (1.0 - estimate)


def transferred(f: dict[str, str], gains: dict[tuple, list[float]]) -> float:
    """The mean gain expected of an untried kind of a measured type: the type's mean gain, moved by
    each of the kind's parts that was measured in other kinds by how far their mean gain is from the
    type's (main effects: a learning rate or a training length that lost on one dataset is expected
    to lose on another, and data that gained at one setting to gain at another)."""
    of_type = statistics.fmean(gains[(f["type"],)])
    return of_type + sum(statistics.fmean(gains[part]) - of_type for part in factors(f) if part in gains)


def extension_order(ranked: list[ModelObject], journal: Journal) -> list[ModelObject]:
    """The models in the order greedy extends them: best first; but once the best model's lineage
    stalled (Journal.stalled), the models outside it (neither its ancestor nor its descendant) come
    first, so another line of descent grows until it beats the best or stalls too."""
    if not journal.stalled():
        return ranked
    others = lineage.outside(journal.best(), ranked)
    return others + [m for m in ranked if all(m is not o for o in others)]


def extension_groups(ranked: list[ModelObject], journal: Journal) -> list[list[ModelObject]]:
    """The models greedy extends, in groups taken in turn: first the leading models of
    `extension_order` that the validation set does not tell apart from the first (no better, within
    the noise of the score: Journal.noise), whose actions compete together; then each other model on
    its own. A fine-tune that scored a little below its input by chance does not end its line: the
    kind of action that gained so far may extend either."""
    order = extension_order(ranked, journal)
    if not order:
        return []
    lead = order[0]
    size = 1
    while size < len(order) and order[size].score <= lead.score and journal.noise.tied(lead, order[size]):
        size += 1
    return [order[:size]] + [[m] for m in order[size:]]


@POLICIES.register("greedy")
class GreedyPolicy(LearningPolicy):
    """Hill-climbing: extend the best model that still has an untried action, with the action
    whose kind (type, data, hyperparameters) gained most on average so far, each training on data read
    as the gain it predicts on the model at hand (the same share of each target's room left to gain:
    `Outcome.gain_on`; a fine-tune that taught a target from nothing is not repeated on a model that
    already knows it); the models that the
    validation set does not tell apart from the best (within the score's noise: `extension_groups`)
    count as the best together, so the kind that gained most extends any of them. A kind not tried yet
    is estimated at half the gain its parts predict (its type's average gain, moved by what its data and
    each hyperparameter value gained in other kinds: `transferred`) plus a small bonus when that gain is
    positive, and at a share of the bonus that shrinks with the loss when it is not (`untried`): it
    comes before any kind that gained nothing or lost (else a merge of two near-copies, which gains
    exactly nothing, would be repeated for ever), and after the untried kinds with less against them.
    Once PATIENCE decisions in a row did not beat the best model (Journal.stalled), greedy extends the
    best model outside its lineage instead: a start that won by noise, or a line of descent at its
    ceiling, does not hold the rest of the budget. The data
    screening orders the untried data by its predicted benefit, and data predicted to hurt every
    target comes after any kind that gained nothing, until an action trained on it: a measurement
    replaces the prediction. The initial models an action made (the specialists, the practitioner's
    defaults) count as measured outcomes of their kind. A merge takes the best partner outside the
    model's own lineage when there is one: merged with its ancestor or descendant, a model only moves
    along the path that made it."""

    name = "greedy"

    def select(self, space: ActionSpace, journal: Journal, iteration: int) -> Decision:
        return Decision(self.proposals(space, journal, iteration, limit=1)[0])

    def proposals(self, space: ActionSpace, journal: Journal, iteration: int, limit: int) -> list[Action]:
        """Up to `limit` actions, the most promising first: for each group of `extension_groups`, its
        most promising action of each type, then each of its models' (the first is greedy's own choice)."""
        rng = random.Random(f"{self.seed}/{iteration}")
        ranked = ranked_models(space.models)
        rank, position, kin = ranks_of(ranked), {id(m): i for i, m in enumerate(ranked)}, lineage.Kinship()
        found, weights = outcomes(journal, space), journal.noise.weights
        predicted: dict[str, dict[tuple, list[float]]] = {}

        def gains_on(model: ModelObject) -> dict[tuple, list[float]]:
            """Each kind's, type's and part's outcomes as the gains they predict on `model` (Outcome.gain_on)."""
            if model.name not in predicted:
                gains = predicted[model.name] = {}
                for outcome in found:
                    f, gain = outcome.features, outcome.gain_on(model.scores, weights)
                    for key in ((f["type"], f["data"], f["hparams"]), (f["type"],), *factors(f)):
                        gains.setdefault(key, []).append(gain)
            return predicted[model.name]

        evidence, measured = journal.evidence, journal.measured_data()

        def promise(action: Action) -> float:
            f, gains = features(action, rank), gains_on(action.models[0])
            kind, of_type = gains.get((f["type"], f["data"], f["hparams"])), gains.get((f["type"],))
            if kind:
                return statistics.fmean(kind)
            estimate = 0.5 * transferred(f, gains) if of_type else 0.0
            if f["data"] in evidence.effects and f["data"] not in measured:  # the screening ranks the data no action measured yet
                return -UNTRIED_BONUS if evidence.harmful(f["data"]) else untried(estimate, UNTRIED_BONUS * (1 + evidence.benefit(f["data"])))
            return untried(estimate, UNTRIED_BONUS)

        types = space.available_types()
        chosen: list[Action] = []
        for group in extension_groups(ranked, journal):
            in_group = {id(m): i for i, m in enumerate(group)}
            extending = [a for name in types for a in space.actions(name, first_of=group)  # not the pool's every pair
                         if all(m.score is not None for m in a.models)]
            keys, order = {}, {}
            for action in extending:  # a partner outside the model's lineage, then the best ranked one
                first, *partners = action.models
                order[id(action)] = in_group[id(first)]  # the group's first model first, on equal promise
                keys[id(action)] = (promise(action), not any(kin.related(first, m) for m in partners),
                                    -min((position[id(m)] for m in partners), default=0), -order[id(action)], rng.random())
            best_of_type: dict[str, Action] = {}  # the group's best action of each type, then each model's
            best_per_model: dict[tuple[int, str], Action] = {}
            for action in sorted(extending, key=lambda a: keys[id(a)], reverse=True):
                best_of_type.setdefault(action.type.name, action)
                best_per_model.setdefault((order[id(action)], action.type.name), action)
            firsts = sorted(best_of_type.values(), key=lambda a: keys[id(a)], reverse=True)
            chosen += firsts + [a for a in sorted(best_per_model.values(), key=lambda a: keys[id(a)], reverse=True) if all(a is not f for f in firsts)]
            if len(chosen) >= limit:
                return chosen[:limit]
        return chosen or [rng.choice([a for name in types for a in space.actions(name)])]  # no scored model to extend: any valid action


WITHOUT_LLM = "proposal"  # Entry.origin of a decision the LLM was no longer asked about: the search's proposal
TRIAL_CHOICES = 2  # choices of its own the LLM makes before its record can take the right to them away


class AdvisedGreedy(GreedyPolicy):
    """Greedy's proposals put to the LLM agent (its chat model, its memory rewrite): the base of the
    policies where the search proposes and the LLM decides. The LLM loses the right to depart from
    the search's first proposal once its own choices have gained less, on average, than the
    proposals it deferred to, or, having deferred to none, gained nothing on average (read from the
    journal, so the same after a resume): a weak model costs a few decisions against the search
    alone, not the exploration."""

    uses_chat = True

    def __init__(self, llm: LLMPolicy, seed: int = 0):
        super().__init__(seed)
        self.llm = llm
        self.chat = llm.chat

    @classmethod
    def from_config(cls, agent_cfg, seed: int = 0) -> Policy:
        return cls(LLMPolicy.from_config(agent_cfg, seed), seed)

    def remember(self, journal: Journal, entry: Entry) -> tuple[str, list[dict]]:
        return self.llm.remember(journal, entry)

    @staticmethod
    def withdrawn(journal: Journal, deferred: str, own: str, own_label: str, deferred_label: str) -> str | None:
        """Why the LLM is no longer asked (None while it is): the mean gain of its decisions of origin
        `own` against those of origin `deferred` (the search's first proposal), or against no gain."""
        gains = {origin: [e.gain for e in journal.finished() if e.origin == origin and e.gain is not None] for origin in (deferred, own)}
        if len(gains[own]) < TRIAL_CHOICES:
            return None
        mine = statistics.fmean(gains[own])
        if gains[deferred]:
            theirs = statistics.fmean(gains[deferred])
            return None if mine >= theirs else f"not asked: its {len(gains[own])} {own_label} gained {mine:+.3f} on average, {deferred_label} {theirs:+.3f}"
        return None if mine > 0 else f"not asked: its {len(gains[own])} {own_label} gained {mine:+.3f} on average (nothing), and it took no proposal to compare"


@POLICIES.register("guided")
class GuidedPolicy(AdvisedGreedy):
    """The LLM agent choosing among greedy's proposals: the search proposes its most promising
    actions (each of the best models' best action of each type), the LLM picks one in a single
    step from the same memory, models and directive as the paper's agent, and rewrites its memory.
    A small LLM cannot weigh hundreds of bindings; it can weigh four."""

    name = "guided"
    PROPOSALS = 4
    FIRST, OTHER = "first", "other"  # Entry.origin: the LLM picked the search's first proposal, or another

    def select(self, space: ActionSpace, journal: Journal, iteration: int) -> Decision:
        proposals = self.proposals(space, journal, iteration, self.PROPOSALS)
        decision = Decision(action=proposals[0])
        if (withdrawn := self.withdrawn(journal, self.FIRST, self.OTHER, "picks of another proposal", "its picks of the first")) is not None:
            decision.origin, decision.notice = WITHOUT_LLM, withdrawn
            decision.transcript.append({"step": "proposal", "messages": [], "reply": None, "problem": withdrawn})
            return decision
        if len(proposals) > 1:
            options = [{"proposal": str(number)} for number in range(1, len(proposals) + 1)]
            rng = random.Random(f"{self.seed}/{iteration}/guided")
            choice = self.llm.ask(prompts.proposals_prompt(journal, iteration, space, proposals), options, "proposal", decision, rng)
            decision.action = proposals[int(choice["proposal"]) - 1]
            decision.origin = self.FIRST if choice["proposal"] == "1" else self.OTHER
            decision.transcript.append({"step": "choice", "messages": [], "reply": None, "problem": "", "chosen": int(choice["proposal"]),
                                        "proposals": [str(p) for p in proposals]})  # which decisions the LLM changed (analysis/agent_decisions.py)
        return decision


@POLICIES.register("optuna")
class OptunaPolicy(LearningPolicy):
    """Model-based search: optuna's TPE sampler, told the features and score of every decision so
    far (ask-and-tell), proposes the features of the next action; the available action that
    matches them best is taken (type first, then data, input ranks, hyperparameters), leaving out
    data the screening predicts to hurt every target (and no action measured) while other actions remain."""

    name = "optuna"
    WEIGHTS = {"type": 8, "data": 4, "rank_a": 2, "rank_b": 1, "hparams": 1}

    def select(self, space: ActionSpace, journal: Journal, iteration: int) -> Decision:
        import optuna

        rng = random.Random(f"{self.seed}/{iteration}")
        rank = ranks_of(ranked_models(space.models))
        distributions = {name: optuna.distributions.CategoricalDistribution(choices) for name, choices in self.vocabulary(space).items()}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=rng.randrange(2**31), n_startup_trials=3)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for outcome in outcomes(journal, space):
            params = {k: v for k, v in outcome.features.items() if v in distributions[k].choices}
            if len(params) == len(distributions):
                study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=outcome.score))
        wanted = study.ask(fixed_distributions=distributions).params

        def match(action: Action) -> tuple:
            f = features(action, rank)
            return sum(w for k, w in self.WEIGHTS.items() if f[k] == wanted[k]), rng.random()

        actions = [a for name in space.available_types() for a in space.actions(name)]
        screened = [a for a in actions if not journal.predicted_harmful(features(a, rank)["data"])]
        return Decision(max(screened or actions, key=match))  # data predicted to hurt every target is not tried blind

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
