"""The search benchmark: several policies, several seeds each, the same budget, in the same world.

Every exploration is an ordinary exploration of the study (tagged `lamdagent.baseline=compare:<policy>`
and `lamdagent.comparison=<group run>`), so the same action in two explorations is computed once
(the fingerprint cache) and everything stays in the study's experiment. Seeds vary the policy's
own randomness (`agent.seed`), never the world. The validation split drives the searches; the
test split is read only here, for each exploration's top-1 model and the baselines."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from lamdagent import config as config_mod
from lamdagent.agent.policies import POLICIES
from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.experiments.baselines import run_baselines
from lamdagent.experiments.replay import reference_weights
from lamdagent.exploration.loop import start_or_resume
from lamdagent.exploration.runner import Runner
from lamdagent.exploration.seeds import prepare_base
from lamdagent.exploration.study import Study
from lamdagent.reporting import figures
from lamdagent.reporting.collect import collect
from lamdagent.reporting.held_out import ensure_held_out
from lamdagent.reporting.tables import Table
from lamdagent.reporting.top import top_records
from lamdagent.tracking import Kind, Record, Status, Tracker

def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95% confidence interval, mean +- t * sd / sqrt(n) with t the
    exact two-sided 95% quantile of Student's t at n - 1 degrees of freedom (scipy; 2.201 at df=11).
    Missing values are left out; one value has no interval."""
    from scipy.stats import t as student_t

    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan"), float("nan")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = float(student_t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


@dataclass
class Search:
    """One exploration of the benchmark."""

    policy: str
    seed: int
    run_id: str
    seeds: list[Record]
    actions: list[Record]
    top: Record | None = None
    test_score: float | None = None

    def best_so_far(self) -> list[tuple[int, float]]:
        """(iteration, best validation score so far), from the initial models (iteration 0) on."""
        best = max((r.score for r in self.seeds if r.score is not None), default=0.0)
        points = [(0, best)]
        for record in sorted(self.actions, key=lambda r: r.iteration):
            if record.score is not None:
                best = max(best, record.score)
            points.append((record.iteration, best))
        return points

    def best_by_seconds(self) -> list[tuple[float, float]]:
        """(compute seconds spent on actions so far, best validation score so far)."""
        best = max((r.score for r in self.seeds if r.score is not None), default=0.0)
        spent, points = 0.0, [(0.0, best)]
        for record in sorted(self.actions, key=lambda r: r.iteration):
            spent += record.cost_seconds or 0.0
            if record.score is not None:
                best = max(best, record.score)
            points.append((spent, best))
        return points


@dataclass
class Comparison:
    searches: list[Search]
    baselines: dict[str, tuple[Record, float]] = field(default_factory=dict)  # label -> (record, test.score)
    files: dict[str, Path] = field(default_factory=dict)


def _step_value(points: list[tuple[float, float]], x: float) -> float:
    value = points[0][1]
    for at, v in points:
        if at <= x:
            value = v
    return value


def bands(searches: list[Search], by_seconds: bool = False) -> list[figures.Band]:
    """Per policy, the mean and 95% CI over seeds of the best-so-far curve, on a common x grid."""
    out = []
    for policy in dict.fromkeys(s.policy for s in searches):
        curves = [s.best_by_seconds() if by_seconds else s.best_so_far() for s in searches if s.policy == policy]
        xs = sorted({x for curve in curves for x, _ in curve}) if not by_seconds else \
            [i * max(x for curve in curves for x, _ in curve) / 50 for i in range(51)]
        stats = [mean_ci([_step_value(curve, x) for curve in curves]) for x in xs]
        out.append(figures.Band(policy, list(xs), [m for m, _, _ in stats], [lo for _, lo, _ in stats], [hi for _, _, hi in stats]))
    return out


def iterations_to_reach(search: Search, target: float) -> int | None:
    """The first iteration at which the search's best-so-far reached `target` (None: never)."""
    return next((it for it, best in search.best_so_far() if best >= target - 1e-12), None)


def compare(study_name: str, overrides: list[str], policies: list[str], seeds: int, budget: int, tracker: Tracker, display: Display,
            out_dir: Path, with_baselines: bool = True) -> Comparison:
    """Run `seeds` explorations of `budget` iterations per policy, then score every top-1 model and
    the baselines on the test split; write the figures and the table into `out_dir`."""
    for policy in policies:
        POLICIES.check(policy, "--policies")
    if seeds < 1 or budget < 1:
        raise UserError(f"--seeds and --budget must be >= 1, got {seeds} and {budget}")
    cfg = config_mod.load_config(study_name, overrides)  # bad input is one line, before any compute
    experiment_id = tracker.experiment(cfg.name)
    plain = config_mod.redacted(config_mod.to_dict(cfg))
    group = tracker.start_exploration(experiment_id, cfg.name, plain, {"policies": ",".join(policies), "seeds": str(seeds), "budget": str(budget)},
                                      run_name="compare-policies", kind=Kind.COMPARISON)
    try:
        searches = []
        for policy in policies:
            for seed in range(seeds):
                display.log(f"[bold]{policy}[/], seed {seed}: an exploration of {budget} iterations")
                extra = [f"iterations={budget}", f"agent.policy={policy}", f"agent.seed={seed}"]
                run_id, records, _ = start_or_resume(study_name, [*overrides, *extra], None, tracker, display,
                                                     tags={"baseline": f"compare:{policy}", "comparison": group, "policy_seed": str(seed)})
                searches.append(Search(policy, seed, run_id, [r for r in records if r.kind == Kind.SEED and r.done],
                                       [r for r in records if r.kind == Kind.ACTION]))
        if with_baselines:
            run_baselines(study_name, overrides, tracker, display, ["base", "specialists", "full", "ties_grid"])
        result = _score_on_test(study_name, overrides, searches, tracker, display, experiment_id, group)
        result.files = _write(result, policies, budget, out_dir)
        tracker.log_files(group, out_dir)
    except BaseException:
        tracker.close(group, Status.KILLED.mlflow)
        raise
    tracker.close(group)
    return result


def _score_on_test(study_name: str, overrides: list[str], searches: list[Search], tracker: Tracker, display: Display, experiment_id: str,
                   group: str) -> Comparison:
    cfg = config_mod.load_config(study_name, overrides)
    study = Study(cfg)
    study.connect_judge()
    weights = reference_weights(tracker, searches[0].run_id, experiment_id, cfg)
    runner = Runner(study, tracker, group, experiment_id, display, base=prepare_base(cfg), weights=weights)
    for search in searches:
        top = top_records([r for r in search.actions if r.done], 1)
        search.top = top[0] if top else None
    runs = collect(tracker, cfg.name)
    labels = {"full": "fully fine-tuned", "ties_grid": "TIES grid (best)"}
    chosen: dict[str, Record] = {}
    for record in runs.baselines:
        name = runs.baseline_names.get(record.run_id, "")
        if name in labels:
            chosen.setdefault(labels[name], record)
    specialists = [r for r in runs.baselines if runs.baseline_names.get(r.run_id, "").startswith("specialist:")]
    if specialists:
        chosen["best specialist"] = max(specialists, key=lambda r: r.score or 0.0)
    held = ensure_held_out(study, tracker, runner, [s.top for s in searches if s.top] + list(chosen.values()), weights, display)
    for search in searches:
        search.test_score = held[search.top.run_id]["test.score"] if search.top else None
    return Comparison(searches, {label: (record, held[record.run_id]["test.score"]) for label, record in chosen.items()})


def _write(result: Comparison, policies: list[str], budget: int, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "by_iteration": figures.best_so_far(bands(result.searches), out_dir / "best_so_far_by_iteration.png", "iteration"),
        "by_seconds": figures.best_so_far(bands(result.searches, by_seconds=True), out_dir / "best_so_far_by_seconds.png",
                                          "compute seconds of the actions"),
    }
    random_final = [s.best_so_far()[-1][1] for s in result.searches if s.policy == "random"]
    target = statistics.fmean(random_final) if random_final else None
    rows = []
    for policy in policies:
        runs = [s for s in result.searches if s.policy == policy]
        test, low, high = mean_ci([s.test_score for s in runs])
        val, _, _ = mean_ci([s.best_so_far()[-1][1] for s in runs])
        reach = [iterations_to_reach(s, target) for s in runs] if target is not None else []
        rows.append({"method": f"{policy} ({len(runs)} seeds, budget {budget})", "val.score (best)": val, "test.score of top-1": test,
                     "95% CI": f"[{low:.3f}, {high:.3f}]",
                     "iterations to random's final best": ", ".join("-" if r is None else str(r) for r in reach) if reach else "",
                     "top-1 pipelines": "; ".join(s.top.pipeline for s in runs if s.top)})
    for label, (record, test) in result.baselines.items():
        rows.append({"method": label, "val.score (best)": float(record.score or 0.0), "test.score of top-1": float(test), "95% CI": "",
                     "iterations to random's final best": "", "top-1 pipelines": record.pipeline})
    table = Table("Search benchmark: top-1 by validation, scored on the held-out test split", list(rows[0]), rows,
                  best=("val.score (best)", "test.score of top-1"))
    files["csv"] = out_dir / "comparison.csv"
    files["csv"].write_text(table.csv())
    files["markdown"] = out_dir / "comparison.md"
    files["markdown"].write_text("\n".join([table.markdown(), "![best so far by iteration](best_so_far_by_iteration.png)", "",
                                            "![best so far by compute seconds](best_so_far_by_seconds.png)", ""]))
    files["json"] = out_dir / "comparison.json"
    files["json"].write_text(json.dumps({
        "rows": rows, "random_final_best": target,
        "searches": [{"policy": s.policy, "seed": s.seed, "run_id": s.run_id, "best_so_far": s.best_so_far(), "test_score": s.test_score,
                      "top": s.top.pipeline if s.top else None} for s in result.searches]}, indent=2, default=str))
    return files
