"""The journal of an exploration: every decision in order, with the pool its policy saw, the action,
its outcome (model, per-task scores, status, failure), its cost, the agent's fallbacks and the memory
after it. Plain data: built from the tracking server's records (`journal/reading.py`), so it is the
same after a resume, in another process or on another machine, and extended in memory as the loop
goes. The loop asks it for the best model, the trailing failures and what was tried; every policy
reads its history from it and keeps none of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lamdagent.journal.evidence import Evidence
from lamdagent.journal.noise import ScoreNoise
from lamdagent.space.objects import ModelObject
from lamdagent.space.space import kind_of

FAILED = "failed"  # the status of an action that made no model (tracking.Status.FAILED)


class Cause(StrEnum):
    """Why a step of the agent's decision fell back to a random choice."""

    ENDPOINT = "endpoint error"  # the endpoint failed after the client's retries
    INVALID = "no valid reply"  # every reply was invalid after the re-asks


PATIENCE = 3  # decisions in a row that did not beat the best model, after which its lineage counts as stalled


@dataclass(frozen=True)
class Fallback:
    """One step of a decision that fell back to a random valid choice."""

    step: str  # action_type, objects, proposal, override
    cause: Cause
    detail: str  # the endpoint's error, or what was wrong with the last reply
    took: str = "at random"  # what was chosen instead: a random valid choice, or the search's proposal

    @property
    def reason(self) -> str:
        """What the end-of-run count groups by: the step and the cause."""
        return f"{self.step}: {self.cause}"

    def __str__(self) -> str:
        return f"{self.reason} ({self.detail}); chose {self.took}"

    def to_dict(self) -> dict[str, str]:
        return {"step": self.step, "cause": str(self.cause), "detail": self.detail, "took": self.took}

    @classmethod
    def from_dict(cls, data: dict) -> Fallback:
        return cls(data["step"], Cause(data["cause"]), data.get("detail", ""), data.get("took", "at random"))


@dataclass
class Entry:
    """One decision of the exploration and, once its run ends, its outcome."""

    iteration: int
    run_id: str
    action_type: str
    action: dict[str, str]  # slot -> the name of the bound model, dataset or value
    fingerprint: str
    pipeline: str
    inputs: list[ModelObject]  # the action's input models
    pool: list[str]  # the names of the models the policy saw when it decided
    fallbacks: list[Fallback] = field(default_factory=list)
    origin: str = ""  # who chose the action, for a policy of two minds (hybrid: accepted, override, refused; guided: first, other; proposal: not asked)
    status: str | None = None  # ok, cached or failed; None while it runs
    model: ModelObject | None = None  # the model it made (None while running, or failed)
    error: str = ""  # why it failed
    cost_seconds: float | None = None  # the compute it costs: building and evaluating its model (had nothing been cached)
    memory: str | None = None  # the agent's memory after it (read back for the latest entry only)
    memory_seq: int = 0  # the order in which outcomes arrived (a round of k > 1 finishes in any order)
    cost_flops: float | None = None  # the same compute in floating-point operations (None: not counted)

    @property
    def finished(self) -> bool:
        return self.status is not None

    @property
    def flops_missing(self) -> bool:
        """Its cost was measured in seconds only (Record.flops_missing)."""
        return self.cost_seconds is not None and self.cost_flops is None

    @property
    def label(self) -> str:
        """The action as the agent names it: `sft(model=m1, dataset=all, learning_rate=0.001)`."""
        return f"{self.action_type}({', '.join(f'{k}={v}' for k, v in self.action.items())})"

    @property
    def gain(self) -> float | None:
        """The new model's score minus its best input's (None without a scored model)."""
        if self.model is None or self.model.score is None:
            return None
        return self.model.score - max((m.score for m in self.inputs if m.score is not None), default=0.0)

    @property
    def kind(self) -> tuple:
        """Its kind of action apart from its models (space.kind_of)."""
        return kind_of(self.action_type, self.action, {m.name for m in self.inputs})

    @property
    def same_as(self) -> ModelObject | None:
        """The input whose per-task scores its model repeats exactly, if any: the action changed
        nothing the targets measure (a merge of near-copies, a repeat)."""
        if self.model is None or not self.model.scores:
            return None
        return next((m for m in self.inputs if m.scores == self.model.scores), None)

    @property
    def no_gain(self) -> bool:
        return self.same_as is not None


@dataclass
class Journal:
    """An exploration's history: its initial models and its decisions, in the order they were made."""

    tasks: list[str]
    budget: int  # the exploration's iterations in total
    seeds: list[ModelObject]
    entries: list[Entry] = field(default_factory=list)
    budget_seconds: float | None = None  # the exploration's compute budget (None: iterations only)
    overhead_seconds: float = 0.0  # compute spent before the first decision: the initial models, the data screening
    budget_flops: float | None = None  # the compute budget in floating-point operations (None: none)
    overhead_flops: float = 0.0  # the overhead's operations
    overhead_uncounted: bool = False  # a step of the overhead measured seconds only (Record.flops_missing)
    evidence: Evidence = field(default_factory=Evidence)  # what the data screening measured
    initial_actions: list[Entry] = field(default_factory=list)  # the initial models an action made (specialists, defaults), as iteration 0
    noise: ScoreNoise = field(default_factory=ScoreNoise)  # how far a validation score may move by chance

    # --- what happened --------------------------------------------------------------------------
    def measured(self) -> list[Entry]:
        """Every outcome a learning policy learns from: the initial models an action made (a
        specialist is a full fine-tune of the base on its data, measured before the first decision),
        then the decisions whose outcome is known."""
        return self.initial_actions + self.finished()

    def measured_data(self) -> set[str]:
        """The screened datasets some scored outcome trained on: its measurement replaces the screening's prediction."""
        return {name for e in self.measured() if e.model is not None and e.model.score is not None for name in e.action.values()
                if name in self.evidence.effects}

    def predicted_harmful(self, dataset: str) -> bool:
        """Predicted by the screening to hurt every target, and never measured (a dataset not to try blind)."""
        return self.evidence.harmful(dataset) and dataset not in self.measured_data()

    def finished(self) -> list[Entry]:
        """Decisions whose outcome is known, in the order the outcomes arrived."""
        return sorted((e for e in self.entries if e.finished), key=lambda e: (e.memory_seq, e.iteration))

    def pending(self) -> list[Entry]:
        """Decisions whose action is still running (a round of k > 1)."""
        return [e for e in self.entries if not e.finished]

    def models(self) -> list[ModelObject]:
        """The pool now: the initial models, then every model made, in the order they arrived."""
        return self.seeds + [e.model for e in self.finished() if e.model is not None]

    def model(self, name: str) -> ModelObject | None:
        return next((m for m in self.models() if m.name == name), None)

    def best(self) -> ModelObject | None:
        """The model with the best validation score (the earliest on ties)."""
        return max((m for m in self.models() if m.score is not None), key=lambda m: m.score, default=None)

    def best_score(self) -> float:
        best = self.best()
        return best.score if best is not None else 0.0

    def stalled(self) -> bool:
        """PATIENCE decisions in a row did not beat the best model: its line of descent may be at its ceiling."""
        return self.best() is not None and self.since_best() >= PATIENCE

    def since_best(self) -> int:
        """How many decisions, in the order their outcomes arrived, came after the one that made the best
        model (all of them when the best is an initial model): none of them beat it."""
        best, finished = self.best(), self.finished()
        made = next((i for i, e in enumerate(finished) if best is not None and e.model is not None and e.model.name == best.name), -1)
        return len(finished) - made - 1

    def trailing_failures(self) -> int:
        """How many of the latest outcomes in a row are failures."""
        count = 0
        for entry in reversed(self.finished()):
            if entry.status != FAILED:
                break
            count += 1
        return count

    def tried_types(self) -> set[str]:
        """Action types with a known outcome."""
        return {e.action_type for e in self.finished()}

    def done(self) -> set[str]:
        """Fingerprints of the initial models and of every action computed or running."""
        return {m.fingerprint for m in self.seeds} | {e.fingerprint for e in self.entries}

    def repeated(self, entry: Entry) -> bool:
        """Whether `entry`'s model is one this exploration had before it (with `repeat_actions`)."""
        return any(m.fingerprint == entry.fingerprint for m in self.seeds) or any(
            e is not entry and e.fingerprint == entry.fingerprint and e.model is not None and e.memory_seq < entry.memory_seq
            for e in self.finished())

    def no_gain(self) -> dict[str, Entry]:
        """Model name -> the entry that made it and gained nothing."""
        return {e.model.name: e for e in self.finished() if e.no_gain}

    def blocked(self) -> set[tuple[tuple, str]]:
        """(kind, model) pairs no policy is offered: the kind of action that made a model and gained
        nothing, on that model again (it would gain nothing again: a no-gain loop)."""
        return {(entry.kind, name) for name, entry in self.no_gain().items()}

    def copies(self) -> dict[str, str]:
        """Model name -> the model it copies by every target's score: the input of the no-gain action
        that made it, followed back to a model that is no copy (space: no merge of a model with its copy)."""
        direct = {name: entry.same_as.name for name, entry in self.no_gain().items()}
        found = {}
        for name in direct:
            original, seen = name, set()
            while original in direct and original not in seen:
                seen.add(original)
                original = direct[original]
            found[name] = original
        return found

    def memory(self) -> str:
        """The agent's memory: the text written after the latest outcome ("" before any)."""
        written = [e for e in self.finished() if e.memory is not None]
        return written[-1].memory if written else ""

    def memory_seq(self) -> int:
        return max((e.memory_seq for e in self.entries), default=0)

    def remaining(self) -> list[int]:
        """Iteration numbers of the budget without a known outcome, in order (a killed round may leave gaps)."""
        known = {e.iteration for e in self.entries if e.finished}
        return [i for i in range(1, self.budget + 1) if i not in known]

    def spent_seconds(self) -> float:
        """Compute spent so far: the initial models, the screening and every finished action."""
        return self.overhead_seconds + sum(e.cost_seconds or 0.0 for e in self.finished())

    def spent_flops(self) -> float:
        """The same compute in floating-point operations (a step that was not counted adds none)."""
        return self.overhead_flops + sum(e.cost_flops or 0.0 for e in self.finished())

    def uncounted(self) -> bool:
        """Whether a step's operations were not counted (made before they were): spent_flops is too low."""
        return self.overhead_uncounted or any(e.flops_missing for e in self.finished())

    def out_of_compute(self) -> bool:
        return (self.budget_seconds is not None and self.spent_seconds() >= self.budget_seconds) or \
               (self.budget_flops is not None and self.spent_flops() >= self.budget_flops)

    def pool_at(self, entry: Entry) -> list[ModelObject]:
        """The models its policy saw when it decided `entry`."""
        by_name = {m.name: m for m in self.seeds + [e.model for e in self.entries if e.model is not None]}
        return [by_name[name] for name in entry.pool if name in by_name]

    def entry(self, run_id: str) -> Entry:
        return next(e for e in self.entries if e.run_id == run_id)

    # --- what the loop adds ---------------------------------------------------------------------
    def decide(self, entry: Entry) -> Entry:
        """A decision made: its action runs from now on."""
        self.entries.append(entry)
        self.entries.sort(key=lambda e: e.iteration)
        return entry

    def finish(self, run_id: str, status: str, model: ModelObject | None, error: str = "", cost_seconds: float | None = None,
               cost_flops: float | None = None) -> Entry:
        """A decision's outcome arrived (its memory is set once the agent rewrote it)."""
        entry = self.entry(run_id)
        entry.status, entry.model, entry.error, entry.cost_seconds, entry.cost_flops = str(status), model, error, cost_seconds, cost_flops
        entry.memory_seq = self.memory_seq() + 1
        return entry
