"""Ask a search policy again at each of an exploration's decisions, from the tracking server alone
(no training, no evaluation): the journal is rebuilt as the policy saw it at that decision, and the
policy of the code at hand decides. With the code that ran, every decision is the recorded one (the
resume equivalence); with a changed policy, each line says where it would have chosen otherwise,
given the same history (after its first departure, the history itself would have differed).

    python analysis/counterfactual_decisions.py --tracking-uri URI --study NAME [--policy greedy]
"""

from __future__ import annotations

import argparse
import dataclasses

from lamdagent.agent.policies import make_policy
from lamdagent.config import load_config
from lamdagent.errors import UserError
from lamdagent.evaluation.evaluator import task_weights
from lamdagent.exploration.seeds import DEFAULTS_PREFIX, sets_weights
from lamdagent.exploration.study import Study
from lamdagent.journal import ScoreNoise
from lamdagent.journal.reading import models_from_records, read_journal
from lamdagent.screening import recorded_evidence
from lamdagent.tracking import Kind, Tracker


def replay(tracker: Tracker, run) -> list[tuple[int, str, str]]:
    """(iteration, recorded action, the policy's choice now) for each decision of exploration `run`."""
    cfg = load_config("", [], base=tracker.exploration_config(run.info.run_id))  # the exploration's own config, as it ran
    study = Study(cfg)
    records = tracker.children(run.info.run_id, run.info.experiment_id)
    seeds = models_from_records([r for r in records if r.kind == Kind.SEED])
    order = ["base", *(f"spec_{t}" for t in study.task_names), *(f"{DEFAULTS_PREFIX}{n}" for n in cfg.seed_models)]
    seeds.sort(key=lambda m: order.index(m.name) if m.name in order else len(order))  # as ensure_seeds gives them: the pool's order breaks ties
    journal = read_journal(records, seeds, study.task_names, cfg.iterations)
    weights = task_weights([s.scores for s in seeds if sets_weights(s.name)], study.task_names, cfg.task_weights)
    policy = make_policy(cfg.agent, cfg.seed if cfg.agent.seed is None else cfg.agent.seed)
    evidence = recorded_evidence(records, [d.name for d in study.datasets], cfg.screening.repeats)
    rows = []
    for k, entry in enumerate(journal.entries):
        seen = dataclasses.replace(journal, entries=list(journal.entries[:k]), evidence=evidence, noise=ScoreNoise(weights, cfg.data.val_size))
        space = study.space(seen.models(), seen.done(), seen.blocked(), seen.copies())
        choice = policy.select(space, seen, entry.iteration).action
        rows.append((entry.iteration, entry.pipeline, choice.pipeline() if choice.fingerprint != entry.fingerprint else ""))
    return rows


def main() -> None:
    try:
        _main()
    except UserError as err:  # an unknown study or tracking store: one line, no traceback
        raise SystemExit(f"error: {err}") from None


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--policy", default="greedy")
    args = parser.parse_args()
    tracker = Tracker(args.tracking_uri)
    experiment = tracker.experiment(load_config(args.study, []).name)
    runs = tracker.client.search_runs([experiment], f"tags.`lamdagent.kind` = 'exploration' and params.`agent.policy` = '{args.policy}'")
    changed = total = 0
    for run in sorted(runs, key=lambda r: r.info.start_time):
        if run.info.status != "FINISHED":
            continue
        rows = replay(tracker, run)
        first = next((i for i, (_, _, now) in enumerate(rows) if now), None)
        print(f"exploration {run.info.run_id[:8]} (train_seed {run.data.params.get('train_seed')}): {sum(1 for r in rows if r[2])} of "
              f"{len(rows)} decisions differ" + (f"; first at iteration {rows[first][0]}" if first is not None else ""))
        for iteration, recorded, now in rows:
            if now:
                print(f"  #{iteration} recorded {recorded}\n       now      {now}")
        changed += first is not None
        total += 1
    print(f"{changed} of {total} explorations would have departed from their recorded decisions")


if __name__ == "__main__":
    main()
