"""The journal an exploration's policy reads, assembled in one place: by the loop from the initial
models, weights and screening it has just ensured, and from the tracking server alone (no compute,
nothing logged) to ask a policy again at a recorded decision."""

from __future__ import annotations

from lamdagent.config import load_config
from lamdagent.exploration.seeds import initial_weights, seed_order
from lamdagent.exploration.study import Study
from lamdagent.journal import Evidence, Journal, ScoreNoise, models_from_records, read_journal
from lamdagent.screening import recorded_evidence
from lamdagent.space import ModelObject
from lamdagent.tracking import Kind, Record, Tracker


def exploration_journal(study: Study, records: list[Record], seeds: list[ModelObject], weights: dict[str, float], evidence: Evidence,
                        fetch=None, memory_of=None) -> Journal:
    """The journal of an exploration's `records` with what every policy reads beside its entries:
    the screening's evidence and the score noise of the study's validation split under `weights`."""
    cfg = study.cfg
    journal = read_journal(records, seeds, study.task_names, cfg.iterations, fetch, memory_of, cfg.budget.seconds, cfg.budget.flops)
    journal.evidence = evidence
    journal.noise = ScoreNoise(weights, cfg.data.val_size)
    return journal


def recorded_journal(tracker: Tracker, run_id: str, experiment_id: str) -> tuple[Study, Journal]:
    """The study of exploration `run_id`, as its own config ran it, and its journal rebuilt from its
    records alone: the initial models in the order the loop gives them (the pool's order breaks
    greedy's ties), their weights and the screening runs' evidence."""
    study = Study(load_config("", [], base=tracker.exploration_config(run_id)))
    records = tracker.children(run_id, experiment_id)
    seeds = seed_order(study, models_from_records([r for r in records if r.kind == Kind.SEED]))
    evidence = recorded_evidence(records, [d.name for d in study.datasets], study.cfg.screening.repeats)
    return study, exploration_journal(study, records, seeds, initial_weights(study, seeds), evidence)
