"""Run LaMDAgent's performance benchmarks: each prints its table, writes `<out>/<name>.json`, and the
run exits non-zero if any target fails.

    python -m benchmarks                       # all of them, at demo scale (~10 min on 2 CPU cores)
    python -m benchmarks --only cache,history  # a subset
    python -m benchmarks --quick               # tiny sizes: checks that they run; figures mean nothing
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks._common import Options, Result, quiet
from lamdagent.errors import UserError

BENCHMARKS = ("overhead", "cache", "batched_eval", "history", "action_space", "storage", "merge_memory", "parallel", "throughput", "eval_peer",
              "flop_count", "greedy_decision")


def table(result: Result) -> Table:
    verdict = "[green]pass" if result.passed else "[red]FAIL"
    out = Table(title=f"{result.name}: {result.title} ({result.seconds:.0f} s) {verdict}", title_justify="left")
    for column in ("figure", "value", "target", ""):
        out.add_column(column, justify="right" if column == "value" else "left")
    for c in result.checks:
        mark = "" if c.passed is None else ("[green]ok" if c.passed else "[red]FAIL")
        out.add_row(c.metric, f"{c.value:.4g} {c.unit}".strip(), c.target, mark)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (a smoke test of the runner)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; medians are reported (default 3)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for the JSON results")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; expected some of {list(BENCHMARKS)}")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet()
    console = Console()
    opts = Options(quick=args.quick, repeats=max(1, args.repeats), out=args.out)
    results = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        started = time.perf_counter()
        try:
            result = module.run(opts)
        except UserError as err:  # e.g. a model or package the benchmark needs is missing
            console.print(f"[red]{name}: {err}")
            return 2
        result.seconds = time.perf_counter() - started
        result.details["quick"] = opts.quick
        result.write(opts.out)
        console.print(table(result))
        results.append(result)
    summary = {"passed": all(r.passed for r in results), "quick": opts.quick, "benchmarks": {r.name: r.passed for r in results},
               "platform": _platform()}
    (opts.out / "summary.json").write_text(json.dumps(summary, indent=2))
    failed = [r.name for r in results if not r.passed]
    console.print(f"[red]targets failed: {', '.join(failed)}" if failed else "[green]all targets met")
    if opts.quick:
        console.print("[yellow]--quick: tiny sizes, so the figures say nothing and the exit status ignores the targets")
        return 0
    return 1 if failed else 0


def _platform() -> dict:
    import platform

    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


if __name__ == "__main__":
    sys.exit(main())
