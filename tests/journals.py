"""Journals for policy tests: the history a policy reads, built as the loop builds it."""

from __future__ import annotations

import dataclasses

from lamdagent.journal import Entry, Journal
from lamdagent.space import Action, ModelObject

TASKS = ["arith", "facts"]


def journal_of(models: list[ModelObject], memory: str = "", budget: int = 10) -> Journal:
    """A journal whose initial models are `models`; `memory` as written after an earlier (failed) decision."""
    journal = Journal(list(TASKS), budget, list(models))
    if memory:
        entry = journal.decide(Entry(0, "run-remembered", "sft", {}, "fp-remembered", "sft()", [], [m.name for m in models]))
        journal.finish(entry.run_id, "failed", None, "an earlier failure")
        entry.memory = memory
    return journal


def made(journal: Journal, action: Action, name: str, score: float, iteration: int, scores: dict[str, float] | None = None) -> ModelObject:
    """`action` decided at `iteration` over the journal's pool, and the model it made (scored `score`)."""
    pool = [m.name for m in journal.models()]
    model = ModelObject(name, f"run-{name}", f"m-{name}", action.fingerprint, action.pipeline(), "llama/64", dict(scores or {}), score,
                        iteration, parents=action.models)
    entry = journal.decide(Entry(iteration, model.run_id, action.type.name, action.names(), action.fingerprint, action.pipeline(),
                                 list(action.models), pool))
    journal.finish(entry.run_id, "ok", model)
    return model


def scored(model: ModelObject, score: float, iteration: int = 0, **scores: float) -> ModelObject:
    return dataclasses.replace(model, score=score, iteration=iteration, scores=dict(scores))
