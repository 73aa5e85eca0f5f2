"""Which decisions the LLM changed: for each exploration of a `compare-policies` run, every action with
who chose it (hybrid: accepted, override, refused; guided: which of the search's proposals; other
policies: the policy), what it made and how it scored against its best input, and for an override, a
refusal or a guided pick other than the first, the search's proposal (and the hybrid LLM's reason).
Read from the tracking server; prints a Markdown table per exploration and a summary.

    python analysis/agent_decisions.py <compare-policies run id> [--policies hybrid,guided] [--out decisions.md]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from lamdagent.errors import UserError
from lamdagent.tracking import Tracker


def _step(tracker: Tracker, run_id: str, name: str) -> dict:
    """A step of the decision's transcript: the hybrid's `verdict` (an override or a refusal), guided's `choice`."""
    return next((step for step in tracker.load_json(run_id, "agent/decision.json") if step.get("step") == name), {})


def _origin(record, policy: str, choice: dict) -> str:
    """Who chose the action: the hybrid's origin, guided's pick among the search's proposals, else the policy."""
    if choice:
        return f"proposal {choice['chosen']} of {len(choice['proposals'])}"
    return record.origin or policy


def decisions(comparison_id: str, policies: list[str] | None = None) -> list[tuple[str, int, list[dict]]]:
    """(policy, seed, rows) per exploration of the comparison, in run order."""
    tracker = Tracker()
    experiment_id = tracker.run(comparison_id).info.experiment_id
    explorations = tracker.search_runs(experiment_id, f"tags.`lamdagent.comparison` = '{comparison_id}'")
    out = []
    for run in sorted(explorations, key=lambda r: r.info.start_time):
        policy = run.data.tags.get("lamdagent.baseline", "").removeprefix("compare:")
        if policies and policy not in policies:
            continue
        records = tracker.children(run.info.run_id, experiment_id)
        score_of = {r.run_id: r.score for r in records}
        rows = []
        for record in sorted((r for r in records if r.kind == "action"), key=lambda r: r.iteration):
            best_input = max((score_of.get(i) for i in record.inputs if score_of.get(i) is not None), default=None)
            verdict = _step(tracker, record.run_id, "verdict") if record.origin in ("override", "refused") else {}
            choice = _step(tracker, record.run_id, "choice") if policy == "guided" else {}
            changed = choice.get("proposals", [""])[0] if choice.get("chosen", 1) != 1 else ""
            rows.append({"iteration": record.iteration, "origin": _origin(record, policy, choice), "pipeline": record.pipeline, "status": record.status,
                         "score": record.score, "gain": None if record.score is None or best_input is None else record.score - best_input,
                         "proposal": verdict.get("proposal", changed), "override": verdict.get("override", ""),
                         "reason": verdict.get("reason", ""), "refusal": verdict.get("problem", "")})
        out.append((policy, int(run.data.tags.get("lamdagent.policy_seed", 0)), rows))
    return out


def markdown(explorations: list[tuple[str, int, list[dict]]]) -> str:
    lines, origins = [], Counter()
    for policy, seed, rows in explorations:
        lines += [f"### {policy}, seed {seed}", "", "| it | origin | model | val.score | gain over best input | proposal (if changed) | reason / refusal |",
                  "|---|---|---|---|---|---|---|"]
        for row in rows:
            origins[(policy, row["origin"])] += 1
            score = row["status"] if row["score"] is None else f"{row['score']:.3f}"
            gain = "" if row["gain"] is None else f"{row['gain']:+.3f}"
            note = (row["refusal"] and f"refused: {row['refusal']} (override was {row['override']})") or row["reason"]
            lines.append(f"| {row['iteration']} | {row['origin']} | `{row['pipeline']}` | {score} | {gain} | {row['proposal']} | {note} |")
        lines.append("")
    lines += ["| policy | origin | decisions |", "|---|---|---|"] + [f"| {p} | {o} | {n} |" for (p, o), n in sorted(origins.items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("comparison", help="the run id of a compare-policies run")
    parser.add_argument("--policies", default="", help="comma-separated; default: every policy of the comparison")
    parser.add_argument("--out", default="", help="also write the Markdown here")
    args = parser.parse_args()
    try:
        text = markdown(decisions(args.comparison, [p for p in args.policies.split(",") if p]))
    except UserError as err:  # e.g. no such run in the store: one line
        raise SystemExit(f"error: {err}") from None
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
