"""Ask a search policy again at each of an exploration's decisions, from the tracking server alone
(no training, no evaluation): the journal is rebuilt as the policy saw it at that decision, and the
policy of the code at hand decides. With the code that ran, every decision is the recorded one (the
resume equivalence; explorations that decided in parallel rounds are skipped); with a changed policy, each line says where it would have chosen otherwise,
given the same history (after its first departure, the history itself would have differed).

    python analysis/counterfactual_decisions.py --tracking-uri URI --study NAME [--policy greedy]
"""

from __future__ import annotations

import argparse
import dataclasses

from lamdagent.agent.policies import POLICIES, make_policy
from lamdagent.config import load_config
from lamdagent.console import quiet_libraries
from lamdagent.errors import UserError
from lamdagent.exploration.recorded import recorded_journal
from lamdagent.tracking import Tracker


def replay(tracker: Tracker, run) -> list[tuple[int, str, str]]:
    """(iteration, recorded action, the policy's choice now) for each decision of exploration `run`."""
    study, journal = recorded_journal(tracker, run.info.run_id, run.info.experiment_id)
    if (k := study.cfg.execution.parallel) > 1:  # a round's earlier choices were still running when the next was made
        raise UserError(f"exploration {run.info.run_id[:8]} decided in rounds of {k} (execution.parallel); this replay rebuilds "
                        f"one decision at a time only")
    agent = study.cfg.agent
    policy = make_policy(agent, study.cfg.seed if agent.seed is None else agent.seed)
    rows = []
    for k, entry in enumerate(journal.entries):
        seen = dataclasses.replace(journal, entries=list(journal.entries[:k]))  # the journal as it stood at that decision
        choice = policy.select(study.decision_space(seen), seen, entry.iteration).action
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
    POLICIES.check(args.policy, "--policy")
    quiet_libraries()
    tracker = Tracker(args.tracking_uri)
    experiment = tracker.experiment(load_config(args.study, []).name)
    runs = tracker.client.search_runs([experiment], f"tags.`lamdagent.kind` = 'exploration' and params.`agent.policy` = '{args.policy}'")
    changed = total = 0
    for run in sorted(runs, key=lambda r: r.info.start_time):
        if run.info.status != "FINISHED":
            continue
        try:
            rows = replay(tracker, run)
        except UserError as err:
            print(f"skipped: {err}")
            continue
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
