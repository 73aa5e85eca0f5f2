"""The journal read back from the tracking server's records of an exploration's runs."""

from __future__ import annotations

from typing import Callable

from lamdagent.journal.journal import Entry, Fallback, Journal
from lamdagent.space.objects import ModelObject
from lamdagent.tracking.schema import DONE, Kind, Record, Status

FINISHED = (Status.OK, Status.CACHED, Status.FAILED)  # an action run whose outcome is known


def models_from_records(records: list[Record], known: list[ModelObject] = (), fetch=None) -> list[ModelObject]:
    """Model objects of successful runs, in order, with their parents linked by run id whatever the
    records' order (the lineage a policy reads must not depend on it); `fetch` builds an adapter's
    base model when it is not among them."""
    by_run = {m.run_id: m for m in known}
    done = [r for r in records if r.status in DONE]
    models = [ModelObject(r.name, r.run_id, r.model_id, r.fingerprint, r.pipeline, r.arch, dict(r.scores), r.score, r.iteration,
                          cost_seconds=r.model_cost_seconds) for r in done]
    by_run.update({m.run_id: m for m in models})
    for r, model in zip(done, models):
        model.parents = [by_run[i] for i in r.inputs if i in by_run]
        model.adapter_base = by_run.get(r.adapter_of) or (fetch(r.adapter_of) if r.adapter_of and fetch else None)
    return models


def read_journal(records: list[Record], seeds: list[ModelObject], tasks: list[str], budget: int, fetch=None,
                 memory_of: Callable[[str], str] | None = None, budget_seconds: float | None = None, budget_flops: float | None = None) -> Journal:
    """The journal of an exploration from its nested runs: every action run with a known outcome (an
    interrupted one is redone, so it has none), in the order the outcomes arrived; `memory_of(run_id)`
    reads the latest memory. A run written before the pool was recorded saw every model that
    arrived before it."""
    finished = sorted((r for r in records if r.kind == Kind.ACTION and r.status in FINISHED), key=lambda r: (r.memory_seq, r.iteration))
    by_run = {m.run_id: m for m in seeds}
    by_run.update({m.run_id: m for m in models_from_records(finished, seeds, fetch)})
    entries, arrived = [], [m.name for m in seeds]
    for r in finished:
        model = by_run.get(r.run_id) if r.status in DONE else None
        entries.append(Entry(r.iteration, r.run_id, r.action_type, r.action, r.fingerprint, r.pipeline,
                             [by_run[i] for i in r.inputs if i in by_run], r.pool if r.pool is not None else list(arrived),
                             [Fallback.from_dict(f) for f in r.fallbacks], r.origin, str(r.status), model, r.error, r.compute_seconds,
                             memory_seq=r.memory_seq, cost_flops=r.compute_flops))
        if model is not None:
            arrived.append(model.name)
    if entries and memory_of is not None:
        entries[-1].memory = memory_of(entries[-1].run_id)
    before = [r for r in records if r.kind in (Kind.SEED, Kind.SCREENING)]
    return Journal(list(tasks), budget, list(seeds), sorted(entries, key=lambda e: e.iteration), budget_seconds=budget_seconds,
                   overhead_seconds=sum(r.compute_seconds or 0.0 for r in before), budget_flops=budget_flops,
                   overhead_flops=sum(r.compute_flops or 0.0 for r in before), overhead_uncounted=any(r.flops_missing for r in before),
                   initial_actions=initial_actions(records, seeds))


def initial_actions(records: list[Record], seeds: list[ModelObject]) -> list[Entry]:
    """The initial models made by an action (the specialists, the practitioner's defaults) as entries
    of iteration 0 whose pool was their inputs: outcomes a policy learns from, not decisions."""
    by_run = {m.run_id: m for m in seeds}
    made = {r.run_id: r for r in records if r.kind == Kind.SEED and r.action_type and r.status in DONE}
    found = []
    for seed in seeds:
        if (r := made.get(seed.run_id)) is not None:
            inputs = [by_run[i] for i in r.inputs if i in by_run]
            found.append(Entry(0, r.run_id, r.action_type, r.action, r.fingerprint, r.pipeline, inputs, [m.name for m in inputs],
                               status=str(Status.OK), model=seed, cost_seconds=r.compute_seconds, cost_flops=r.compute_flops))
    return found
