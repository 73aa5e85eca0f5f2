"""The search benchmark: several policies, several seeds each, the same budget, in the same world.

Every exploration is an ordinary exploration of the study (tagged `lamdagent.baseline=compare:<policy>`
and `lamdagent.comparison=<group run>`), so the same action in two explorations is computed once
(the fingerprint cache) and everything stays in the study's experiment. A benchmark seed varies the
policy's own randomness (`agent.seed`) and the search's training randomness (`train_seed`: data
sampling and order, new modules' initialisation), never the world (the evaluation splits, the base,
the specialists and w_t). Full fine-tuning runs on the same seeds: its grid is tuned at the first,
its chosen setting trained again at the others, so it has an interval too. The budget is iterations,
or compute (`budget.seconds`, `budget.flops`; `equal_compute`: the full fine-tuning grid's own
operations, which other work on the machine does not inflate as it does seconds). The
validation split drives the searches; the test split is read only here, for each exploration's
top-1 model and the baselines."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from lamdagent import config as config_mod
from lamdagent.agent.policies import POLICIES
from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.experiments.baselines import chosen_trial, full_trials, run_baselines
from lamdagent.experiments.intervals import mean_ci
from lamdagent.experiments.replay import reference_weights
from lamdagent.experiments.verdict import verdicts
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

FULL_FT = "fully fine-tuned (tuned grid)"  # the bar: full fine-tuning's label in the table
BASE = "base"


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
    overhead: list[Record] = field(default_factory=list)  # the data screenings (their compute counts)

    @property
    def compute_seconds(self) -> float:
        """What the exploration's compute was: its initial models, screenings and actions (cache hits at their making cost)."""
        return sum(r.compute_seconds or 0.0 for r in self.seeds + self.overhead + self.actions)

    @property
    def compute_flops(self) -> float | None:
        """The same in floating-point operations (None: a step was not counted)."""
        return total_flops(self.seeds + self.overhead + self.actions)

    @property
    def decisions(self) -> tuple[str, ...]:
        return tuple(r.fingerprint for r in sorted(self.actions, key=lambda r: r.iteration))

    def best_so_far(self) -> list[tuple[int, float]]:
        """(iteration, best validation score so far), from the initial models (iteration 0) on."""
        best = max((r.score for r in self.seeds if r.score is not None), default=0.0)
        points = [(0, best)]
        for record in sorted(self.actions, key=lambda r: r.iteration):
            if record.score is not None:
                best = max(best, record.score)
            points.append((record.iteration, best))
        return points

    def best_by_compute(self, unit: str = "seconds") -> list[tuple[float, float]]:
        """(compute spent on actions so far, best validation score so far): in the seconds of their
        models' making, or (`unit="flops"`) in the operations the actions counted."""
        best = max((r.score for r in self.seeds if r.score is not None), default=0.0)
        spent, points = 0.0, [(0.0, best)]
        for record in sorted(self.actions, key=lambda r: r.iteration):
            spent += (record.compute_flops if unit == "flops" else record.cost_seconds) or 0.0
            if record.score is not None:
                best = max(best, record.score)
            points.append((spent, best))
        return points


@dataclass
class Baseline:
    """A baseline of the benchmark: its model per seed (one when it has no seeds) and its compute."""

    label: str
    records: list[Record]
    compute_seconds: float  # what producing it took in all (a tuned grid: every trial)
    compute_flops: float | None = None  # the same in floating-point operations (None: not counted)
    test_scores: list[float] = field(default_factory=list)


@dataclass
class Comparison:
    searches: list[Search]
    baselines: list[Baseline] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    budget_seconds: float | None = None
    budget_flops: float | None = None


def total_flops(records: list[Record]) -> float | None:
    """The runs' floating-point operations together; None when one of them measured seconds only (Record.flops_missing)."""
    return None if any(r.flops_missing for r in records) else sum(r.compute_flops or 0.0 for r in records)


def _step_value(points: list[tuple[float, float]], x: float) -> float:
    value = points[0][1]
    for at, v in points:
        if at <= x:
            value = v
    return value


def bands(searches: list[Search], by: str | None = None) -> list[figures.Band]:
    """Per policy, the mean and 95% CI over seeds of the best-so-far curve, on a common x grid: by
    iteration, or `by` compute ("seconds", "flops")."""
    out = []
    for policy in dict.fromkeys(s.policy for s in searches):
        curves = [s.best_by_compute(by) if by else s.best_so_far() for s in searches if s.policy == policy]
        xs = sorted({x for curve in curves for x, _ in curve}) if not by else \
            [i * max(x for curve in curves for x, _ in curve) / 50 for i in range(51)]
        stats = [mean_ci([_step_value(curve, x) for curve in curves]) for x in xs]
        out.append(figures.Band(policy, list(xs), [m for m, _, _ in stats], [lo for _, lo, _ in stats], [hi for _, _, hi in stats]))
    return out


def iterations_to_reach(search: Search, target: float) -> int | None:
    """The first iteration at which the search's best-so-far reached `target` (None: never)."""
    return next((it for it, best in search.best_so_far() if best >= target - 1e-12), None)


def compare(study_name: str, overrides: list[str], policies: list[str], seeds: int, budget: int | None, tracker: Tracker, display: Display,
            out_dir: Path, with_baselines: bool = True, budget_seconds: float | None = None, equal_compute: bool = False,
            first_seed: int = 0, budget_flops: float | None = None) -> Comparison:
    """Run `seeds` explorations per policy (seeds `first_seed` on) at one budget (`budget` iterations,
    or `budget_seconds` / `budget_flops` of compute, or with `equal_compute` the full fine-tuning grid's operations), then
    score every top-1 model and the baselines on the test split; write the figures and the table into `out_dir`."""
    for policy in policies:
        POLICIES.check(policy, "--policies")
    if seeds < 1 or first_seed < 0 or (budget is not None and budget < 1) or any(b is not None and b <= 0 for b in (budget_seconds, budget_flops)):
        raise UserError(f"--seeds and --budget must be >= 1, --first-seed >= 0, --budget-seconds and --budget-flops > 0, got {seeds}, {budget}, "
                        f"{first_seed}, {budget_seconds} and {budget_flops}")
    seed_range = range(first_seed, first_seed + seeds)
    if equal_compute and not with_baselines:
        raise UserError("--equal-compute takes the full fine-tuning grid's compute as the budget: it needs the baselines (drop --no-baselines)")
    cfg = config_mod.load_config(study_name, overrides)  # bad input is one line, before any compute
    experiment_id = tracker.experiment(cfg.name)
    plain = config_mod.redacted(config_mod.to_dict(cfg))
    params = {"policies": ",".join(policies), "seeds": str(seeds), "first_seed": str(first_seed), "budget": str(budget),
              "budget_seconds": str(budget_seconds), "budget_flops": str(budget_flops), "equal_compute": str(equal_compute)}
    group = tracker.start_exploration(experiment_id, cfg.name, plain, params, run_name="compare-policies", kind=Kind.COMPARISON)
    try:
        baselines = _baselines(study_name, overrides, seed_range, tracker, display, experiment_id) if with_baselines else []
        if equal_compute:
            budget_seconds, budget_flops = _equal_compute(baselines[0], display)
        limits = [f"budget.{unit}={value}" for unit, value in (("seconds", budget_seconds), ("flops", budget_flops)) if value is not None]
        iterations = budget if budget is not None else (10_000 if limits else 10)
        searches = []
        for policy in policies:
            for seed in seed_range:
                display.log(f"[bold]{policy}[/], seed {seed}: an exploration of " + (" and ".join(limits) if limits else f"{iterations} iterations"))
                extra = [f"iterations={iterations}", f"agent.policy={policy}", f"agent.seed={seed}", f"train_seed={seed}", *limits]
                run_id, records, _ = start_or_resume(study_name, [*overrides, *extra], None, tracker, display,
                                                     tags={"baseline": f"compare:{policy}", "comparison": group, "policy_seed": str(seed)})
                searches.append(Search(policy, seed, run_id, [r for r in records if r.kind == Kind.SEED and r.done],
                                       [r for r in records if r.kind == Kind.ACTION], overhead=[r for r in records if r.kind == Kind.SCREENING]))
        for policy in policies:
            runs = [s for s in searches if s.policy == policy]
            if len(runs) > 1 and len({s.decisions for s in runs}) == 1:
                display.log(f"[yellow]{policy}: its {len(runs)} seeds made exactly the same decisions (its interval is the training noise only)")
        result = _score_on_test(study_name, overrides, searches, baselines, tracker, display, experiment_id, group)
        result.budget_seconds, result.budget_flops = budget_seconds, budget_flops
        result.files = _write(result, policies, iterations if not limits else None, out_dir)
        tracker.log_files(group, out_dir)
    except BaseException:
        tracker.close(group, Status.KILLED.mlflow)
        raise
    tracker.close(group)
    return result


def _equal_compute(full: Baseline, display: Display) -> tuple[float | None, float | None]:
    """(budget.seconds, budget.flops) of an equal-compute comparison: the full fine-tuning grid's
    operations; its seconds where its operations were not counted (runs made before they were)."""
    if full.compute_flops is not None:
        display.log(f"equal compute: every exploration gets the full fine-tuning grid's {full.compute_flops:.3g} floating-point operations "
                    f"(budget.flops; it took {full.compute_seconds:.0f} s)")
        return None, full.compute_flops
    display.log(f"[yellow]equal compute: the full fine-tuning grid's operations were not counted (runs made before they were); every exploration "
                f"gets its {full.compute_seconds:.0f} s (budget.seconds), which other work on the machine inflates")
    return full.compute_seconds, None


def _baselines(study_name: str, overrides: list[str], seeds: range, tracker: Tracker, display: Display, experiment_id: str) -> list[Baseline]:
    """Full fine-tuning on the benchmark's seeds (its grid tuned at seed 0, the chosen setting trained
    again at the others), the TIES grid and the best specialist (models of the world: no seeds)."""
    group = run_baselines(study_name, overrides, tracker, display, ["base", "specialists", "full", "ties_grid"])
    trials = full_trials(tracker, group, experiment_id)
    chosen = chosen_trial(trials)
    found = []
    if chosen is not None:
        rate, epochs = chosen.action["learning_rate"], chosen.settings.get("epochs")
        full = Baseline(FULL_FT, [chosen] if 0 in seeds else [], sum(t.compute_seconds or 0.0 for t in trials),
                        total_flops(trials))
        for seed in (s for s in seeds if s != 0):
            display.log(f"full fine-tuning's chosen setting (learning rate {rate}, {epochs:g} epochs) at train_seed {seed}")
            again = run_baselines(study_name, [*overrides, f"train_seed={seed}", "seed_models=[]"], tracker, display, ["full"],
                                  full_setting=(rate, epochs))
            retrained = chosen_trial(full_trials(tracker, again, experiment_id))
            if retrained is not None:
                full.records.append(retrained)
        found.append(full)
    runs = collect(tracker, config_mod.load_config(study_name, overrides).name)
    grids = [r for r in runs.baselines if runs.baseline_names.get(r.run_id) == "ties_grid"]
    if grids:
        found.append(Baseline("TIES grid (best)", grids[:1], sum(r.compute_seconds or 0.0 for r in grids), total_flops(grids)))
    specialists = [r for r in runs.baselines if runs.baseline_names.get(r.run_id, "").startswith("specialist:")]
    if specialists:
        found.append(Baseline("best specialist", [max(specialists, key=lambda r: r.score or 0.0)], sum(r.compute_seconds or 0.0 for r in specialists),
                              total_flops(specialists)))
    return found


def _score_on_test(study_name: str, overrides: list[str], searches: list[Search], baselines: list[Baseline], tracker: Tracker, display: Display,
                   experiment_id: str, group: str) -> Comparison:
    cfg = config_mod.load_config(study_name, overrides)
    study = Study(cfg)
    study.connect_judge()
    weights = reference_weights(tracker, searches[0].run_id, experiment_id, cfg)
    runner = Runner(study, tracker, group, experiment_id, display, base=prepare_base(cfg), weights=weights)
    for search in searches:
        top = top_records([r for r in search.actions if r.done], 1) or top_records(search.seeds, 1)  # none made: its best initial model
        search.top = top[0] if top else None
    base = next((r for s in searches for r in s.seeds if r.name == BASE), None)  # the bar "never below the base"
    if base is not None:
        baselines = [*baselines, Baseline(BASE, [base], base.compute_seconds or 0.0, total_flops([base]))]
    models = [s.top for s in searches if s.top] + [r for b in baselines for r in b.records]
    held = ensure_held_out(study, tracker, runner, models, weights, display)
    for search in searches:
        search.test_score = held[search.top.run_id]["test.score"] if search.top else None
    for baseline in baselines:
        baseline.test_scores = [held[r.run_id]["test.score"] for r in baseline.records]
    return Comparison(searches, baselines)


def _mean_flops(values: list[float | None]) -> str:
    """The mean, written `1.23e+12`; `not counted` when a run's operations were not."""
    return "not counted" if any(v is None for v in values) else f"{statistics.fmean(values):.3g}"


def _write(result: Comparison, policies: list[str], budget: int | None, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "by_iteration": figures.best_so_far(bands(result.searches), out_dir / "best_so_far_by_iteration.png", "iteration"),
        "by_seconds": figures.best_so_far(bands(result.searches, by="seconds"), out_dir / "best_so_far_by_seconds.png",
                                          "compute seconds of the actions"),
    }
    counted = not any(r.flops_missing for s in result.searches for r in s.actions)
    if counted:
        files["by_flops"] = figures.best_so_far(bands(result.searches, by="flops"), out_dir / "best_so_far_by_flops.png",
                                                "floating-point operations of the actions")
    random_final = [s.best_so_far()[-1][1] for s in result.searches if s.policy == "random"]
    target = statistics.fmean(random_final) if random_final else None
    limits = ([f"{result.budget_seconds:.0f} s"] if result.budget_seconds is not None else []) + \
        ([f"{result.budget_flops:.3g} FLOPs"] if result.budget_flops is not None else [])
    budget_text = f"budget {budget}" if budget is not None else " and ".join(limits)
    rows = []
    for policy in policies:
        runs = [s for s in result.searches if s.policy == policy]
        test, low, high = mean_ci([s.test_score for s in runs])
        val, _, _ = mean_ci([s.best_so_far()[-1][1] for s in runs])
        reach = [iterations_to_reach(s, target) for s in runs] if target is not None else []
        same = " (seeds made identical decisions)" if len(runs) > 1 and len({s.decisions for s in runs}) == 1 else ""
        rows.append({"method": f"{policy} ({len(runs)} seeds, {budget_text}){same}", "val.score (best)": val, "test.score of top-1": test,
                     "95% CI": f"[{low:.3f}, {high:.3f}]", "seeds' test": ", ".join(f"{s.test_score:.2f}" for s in runs if s.test_score is not None),
                     "compute (s, mean)": statistics.fmean(s.compute_seconds for s in runs),
                     "compute (FLOPs, mean)": _mean_flops([s.compute_flops for s in runs]),
                     "iterations to random's final best": ", ".join("-" if r is None else str(r) for r in reach) if reach else "",
                     "top-1 pipelines": "; ".join(s.top.pipeline for s in runs if s.top)})
    for baseline in result.baselines:
        test, low, high = mean_ci(baseline.test_scores)
        val, _, _ = mean_ci([r.score or 0.0 for r in baseline.records])
        rows.append({"method": baseline.label + (f" ({len(baseline.records)} seeds)" if len(baseline.records) > 1 else ""),
                     "val.score (best)": val, "test.score of top-1": test,
                     "95% CI": f"[{low:.3f}, {high:.3f}]" if len(baseline.records) > 1 else "",
                     "seeds' test": ", ".join(f"{t:.2f}" for t in baseline.test_scores), "compute (s, mean)": baseline.compute_seconds,
                     "compute (FLOPs, mean)": _mean_flops([baseline.compute_flops]),
                     "iterations to random's final best": "", "top-1 pipelines": baseline.records[0].pipeline})
    table = Table("Search benchmark: top-1 by validation, scored on the held-out test split", list(rows[0]), rows,
                  best=("val.score (best)", "test.score of top-1"))
    judged = verdicts({p: [s.test_score for s in result.searches if s.policy == p and s.test_score is not None] for p in policies},
                      next((b.test_scores for b in result.baselines if b.label == FULL_FT), []),
                      next((b.test_scores[0] for b in result.baselines if b.label == BASE and b.test_scores), None))
    files["csv"] = out_dir / "comparison.csv"
    files["csv"].write_text(table.csv())
    files["markdown"] = out_dir / "comparison.md"
    files["markdown"].write_text("\n".join([table.markdown(), "", *(f"- {v.text}" for v in judged), "",
                                            "![best so far by iteration](best_so_far_by_iteration.png)", "",
                                            "![best so far by compute seconds](best_so_far_by_seconds.png)", "",
                                            *(["![best so far by floating-point operations](best_so_far_by_flops.png)", ""] if counted else [])]))
    files["json"] = out_dir / "comparison.json"
    files["json"].write_text(json.dumps({
        "rows": rows, "verdicts": [v.as_dict() for v in judged],
        "random_final_best": target, "budget_seconds": result.budget_seconds, "budget_flops": result.budget_flops,
        "searches": [{"policy": s.policy, "seed": s.seed, "run_id": s.run_id, "best_so_far": s.best_so_far(), "test_score": s.test_score,
                      "compute_seconds": s.compute_seconds, "compute_flops": s.compute_flops, "top": s.top.pipeline if s.top else None}
                     for s in result.searches],
        "baselines": [{"label": b.label, "runs": [r.run_id for r in b.records], "test_scores": b.test_scores, "compute_seconds": b.compute_seconds,
                       "compute_flops": b.compute_flops}
                      for b in result.baselines]}, indent=2, default=str))
    return files
