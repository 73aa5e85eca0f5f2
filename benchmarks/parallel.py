"""Rounds of k = 1 vs k = 2 actions: wall time per finished action of the same exploration budget,
(a) k = 1 in the loop's process (the paper's setting), (b) k = 1 as a Ray task holding every core,
(c) k = 2 as two Ray tasks of one core each. Every action is an SFT on one task of the demo (equal
costs), chosen by the random policy; seeds are the base only. Reported, no target."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._common import Options, Result

NAME = "parallel"
STUDY = ["agent.policy=random", "specialists=false", "actions=[sft]", "datasets=[arith,choice,facts]", "sft.learning_rate=[1e-3,3e-3]"]
QUICK = ["data.train_size=16", "data.val_size=4", "sft.epochs=1"]


def explore(root: Path, overrides: list[str], k: int) -> dict:
    """One exploration in a fresh store: wall time of its actions (after the seeds) per action, and
    the same after the first round (workers warm: the steady state of a long search)."""
    import mlflow
    from rich.console import Console

    from lamdagent.console import Display
    from lamdagent.exploration.loop import start_or_resume
    from lamdagent.tracking import Tracker

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    previous = os.getcwd()
    os.chdir(root)  # MLflow's default artifact folder ./mlruns lands in the scratch folder
    try:
        started = time.perf_counter()
        with Display(Console(file=io.StringIO())) as display:
            run_id, records, _ = start_or_resume("demo", overrides, None, Tracker(), display)
        wall = time.perf_counter() - started
    finally:
        os.chdir(previous)
    runs = {r.info.run_id: r for r in mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name("lamdagent/demo").experiment_id])}
    actions = [r for r in records if r.kind == "action"]
    seeds_end = max(runs[r.run_id].info.end_time for r in records if r.kind == "seed")
    ends = sorted(runs[r.run_id].info.end_time for r in actions)
    actions_s = (ends[-1] - seeds_end) / 1000
    steady_s = (ends[-1] - ends[k - 1]) / 1000
    return {"wall_s": wall, "actions_s": actions_s, "finished": len([r for r in actions if r.status in ("ok", "cached")]),
            "failed": len([r for r in actions if r.status == "failed"]), "per_action_s": actions_s / max(1, len(actions)),
            "steady_per_action_s": steady_s / max(1, len(actions) - k)}


def run(opts: Options) -> Result:
    import ray

    result = Result(NAME, "rounds of k = 1 vs k = 2 actions: wall time per finished action")
    iterations = 2 if opts.quick else 6
    cores = os.cpu_count() or 1
    base = [*STUDY, *(QUICK if opts.quick else []), f"iterations={iterations}"]
    settings = {
        "k=1, in-process": ["execution.parallel=1"],
        f"k=1, Ray task of {cores} cores": ["execution.parallel=1", "execution.executor=ray", f"execution.num_cpus={cores}"],
        f"k=2, Ray tasks of {max(1, cores // 2)} core(s)": ["execution.parallel=2", "execution.executor=ray", f"execution.num_cpus={max(1, cores // 2)}"],
    }
    figures = {}
    for label, extra in settings.items():
        root = Path(tempfile.mkdtemp(prefix="lamdagent-bench-parallel-"))
        try:
            figures[label] = explore(root, [*base, *extra], int(extra[0].split("=")[1]))
        finally:
            shutil.rmtree(root, ignore_errors=True)
            if ray.is_initialized():
                ray.shutdown()  # each Ray setting starts its workers cold: their start-up is part of the figure
        result.check(f"{label}: s per finished action", figures[label]["per_action_s"], "s")
        result.check(f"{label}: after the first round", figures[label]["steady_per_action_s"], "s")
    serial, parallel = figures["k=1, in-process"], figures[list(settings)[-1]]
    result.check("k=2 (Ray) vs k=1 (in-process): speed-up per action", serial["per_action_s"] / parallel["per_action_s"], "x")
    result.check("the same after the first round", serial["steady_per_action_s"] / parallel["steady_per_action_s"], "x")
    result.details.update({"runs": figures, "settings": {"overrides": base, "iterations": iterations, "cores": cores}})
    return result
