"""Scoring generations without a model: a file of generations, or the predictions a run logged,
scored with today's task definition (what a user does after fixing a metric; how conformance with a
reference scorer is checked from outside)."""

from __future__ import annotations

import math
from typing import Iterable, Iterator

from lamdagent.errors import UserError
from lamdagent.evaluation.tasks import SPLITS, Task

ID_SEARCH = 10_000  # rows of each split searched for a row id


def _rows_by_id(task: Task, seed: int) -> dict[str, dict]:
    rows = {}
    for split in SPLITS:
        try:
            found = task.rows(split, ID_SEARCH, seed)
        except UserError:
            continue
        rows.update({str(row["id"]): row for row in found if "id" in row})
    return rows


def score_rows(task: Task, rows: Iterable[dict], seed: int = 0) -> Iterator[dict]:
    """Each input row scored: `{"doc": <task row>, "generation"}`, `{"id", "generation"}` (tasks whose
    rows have ids) or `{"gold", "generation"}` (a run's logged predictions). Yields the row's
    `answer` and `reward` (with its id or position); a bad row is a one-line UserError."""
    by_id: dict[str, dict] | None = None
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("generation"), str):
            raise UserError(f"row {number}: expected an object with a string 'generation', got {str(row)[:80]!r}")
        if "doc" in row:
            gold = task.example(row["doc"]).gold
        elif "id" in row:
            by_id = _rows_by_id(task, seed) if by_id is None else by_id
            if str(row["id"]) not in by_id:
                raise UserError(f"row {number}: task {task.name!r} has no row with id {row['id']!r}")
            gold = task.example(by_id[str(row["id"])]).gold
        elif "gold" in row:
            gold = row["gold"] if isinstance(row["gold"], str) else tuple(row["gold"])
        else:
            raise UserError(f"row {number}: expected 'doc', 'id' or 'gold' beside 'generation'")
        answer, reward = task.score(row["generation"], gold)
        yield {**({"id": row["id"]} if "id" in row else {"row": number}), "answer": answer, "reward": reward}


def aggregate(task: Task, scored: list[dict]) -> dict:
    """The mean reward over the scored rows (rewards that could not be given, NaN, left out and counted)."""
    rewards = [r["reward"] for r in scored if not math.isnan(r["reward"])]
    return {"task": task.name, "definition": task.definition_key(), "rows": len(scored),
            "mean_reward": sum(rewards) / len(rewards) if rewards else float("nan"), "unscored": len(scored) - len(rewards)}
