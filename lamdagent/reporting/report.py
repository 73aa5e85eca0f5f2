"""`lamdagent report`: the agent's top-k models by validation score, scored on the held-out test
split and the out-of-distribution tasks next to the baselines (the paper's Table 1), the policy and
action-space ablations (Table 2), and figures, written to a folder and logged on a report run."""

from __future__ import annotations

import json
from pathlib import Path

from lamdagent import config as config_mod
from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.experiments.replay import pipeline_runs, reference_weights
from lamdagent.exploration.presenting import step_label
from lamdagent.exploration.runner import Runner
from lamdagent.exploration.seeds import prepare_base
from lamdagent.exploration.study import Study
from lamdagent.reporting.collect import AGENT, StudyRuns, collect
from lamdagent.reporting.held_out import ensure_held_out
from lamdagent.reporting.tables import Table, mean
from lamdagent.reporting.top import top_records
from lamdagent.tracking import Kind, Record, Status, Tracker

BASELINE_ORDER = {"base": 0, "specialist": 1, "full": 2, "ties_grid": 3}


def _source_config(tracker: Tracker, runs: StudyRuns) -> tuple[dict, str]:
    """The resolved config (and its run) of the study's latest agent exploration, else any exploration."""
    ordered = [e for e in runs.explorations if e.label == AGENT] or runs.explorations
    if not ordered:
        raise UserError("the study has no exploration yet: run `lamdagent explore` first")
    return tracker.exploration_config(ordered[-1].run_id), ordered[-1].run_id


def _baseline_label(name: str) -> str:
    return {"base": "Base", "full": "Fully fine-tuned", "ties_grid": "TIES grid search (best)"}.get(
        name, f"Specialist ({name.split(':', 1)[-1]})" if name.startswith("specialist:") else name)


def build_report(study_name: str, tracker: Tracker, display: Display, out_dir: Path, top_k: int = 3, overrides: list[str] = ()) -> Path:
    """Write report.md, table1.csv, table2.csv and figures/ into `out_dir`; returns the markdown path."""
    if top_k < 1:
        raise UserError(f"top-k must be >= 1, got {top_k}")
    runs = collect(tracker, study_name)
    raw, source_run = _source_config(tracker, runs)
    cfg = config_mod.load_config("", list(overrides), base=raw)
    study = Study(cfg)
    study.connect_judge()
    plain = config_mod.redacted(config_mod.to_dict(cfg))
    report_run = tracker.start_exploration(runs.experiment_id, cfg.name, plain, {"top_k": str(top_k)}, run_name="report", kind=Kind.REPORT)
    try:
        path = _build(study, runs, tracker, display, out_dir, top_k, report_run, source_run)
    except BaseException:
        tracker.close(report_run, Status.KILLED.mlflow)
        raise
    tracker.log_files(report_run, out_dir)
    tracker.close(report_run)
    display.log(f"report run [bold]{report_run}[/]; written to {path}")
    return path


def _build(study: Study, runs: StudyRuns, tracker: Tracker, display: Display, out_dir: Path, top_k: int, report_run: str,
           source_run: str) -> Path:
    cfg = study.cfg
    weights = reference_weights(tracker, source_run, runs.experiment_id, cfg)
    runner = Runner(study, tracker, report_run, runs.experiment_id, display, base=prepare_base(cfg), weights=weights)
    top = top_records(runs.agent_models(), top_k)
    baselines = sorted(runs.baselines, key=lambda r: (BASELINE_ORDER.get(runs.baseline_names[r.run_id].split(":")[0], 9), r.name))
    if not any(runs.baseline_names[r.run_id] == "base" for r in baselines):  # no baselines run: the seeds stand in
        baselines = [r for r in _unique(runs.seeds) if r.name == "base" or r.name.startswith("spec_")] + baselines
        runs.baseline_names.update({r.run_id: "base" if r.name == "base" else f"specialist:{r.name[5:]}" for r in runs.seeds})
    bests = {e.run_id: top_records(e.models, 1) for e in runs.explorations}
    scored = _unique(baselines + top + [r for best in bests.values() for r in best])
    held = ensure_held_out(study, tracker, runner, scored, weights, display)

    out_dir.mkdir(parents=True, exist_ok=True)
    table1 = _table1(study, baselines, top, held, runs)
    table2 = _table2(runs, bests, held)
    figures = _figures(tracker, runs, top, out_dir / "figures")
    (out_dir / "table1.csv").write_text(table1.csv())
    (out_dir / "table2.csv").write_text(table2.csv())
    summary = {"top": [r.run_id for r in top], "weights": weights, "table1": table1.rows, "table2": table2.rows}
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2, default=str))
    markdown = _markdown(study, weights, table1, table2, figures, out_dir)
    path = out_dir / "report.md"
    path.write_text(markdown)
    return path


def _unique(records: list[Record]) -> list[Record]:
    seen, unique = set(), []
    for record in records:
        if record.run_id not in seen:
            seen.add(record.run_id)
            unique.append(record)
    return unique


def _table1(study: Study, baselines: list[Record], top: list[Record], held: dict, runs: StudyRuns) -> Table:
    tasks, ood = study.task_names, [t.name for t in study.ood_tasks]
    columns = ["method", "model", "pipeline", "val.score", *tasks, "avg", "test.score", *ood, *(["ood avg"] if ood else [])]
    rows = []
    entries = [(_baseline_label(runs.baseline_names.get(r.run_id, r.name)), r) for r in baselines]
    entries += [(f"LaMDAgent top-{rank}", r) for rank, r in enumerate(top, 1)]
    for method, record in entries:
        scores = held[record.run_id]
        row = {"method": method, "model": record.name, "pipeline": record.pipeline, "val.score": float(record.score or 0.0),
               **{t: float(scores[f"test.{t}"]) for t in tasks}, "avg": mean([scores[f"test.{t}"] for t in tasks]),
               "test.score": float(scores["test.score"]), **{t: float(scores[f"ood.{t}"]) for t in ood}}
        if ood:
            row["ood avg"] = mean([scores[f"ood.{t}"] for t in ood])
        rows.append(row)
    return Table("Table 1: test split (in-distribution tasks) and out-of-distribution tasks", columns, rows,
                 best=("val.score", *tasks, "avg", "test.score", *ood, *(["ood avg"] if ood else [])))


def _table2(runs: StudyRuns, bests: dict[str, list[Record]], held: dict) -> Table:
    columns = ["exploration", "role", "policy", "action types", "iterations", "failed", "mean val.score", "best val.score", "test.score of best",
               "best pipeline"]
    rows = []
    for exploration in runs.explorations:
        best = bests[exploration.run_id]
        finished = exploration.models
        rows.append({
            "exploration": exploration.run_id[:8], "role": "LaMDAgent" if exploration.label == AGENT else exploration.label,
            "policy": exploration.policy, "action types": exploration.actions.strip("[]").replace("'", ""),
            "iterations": str(len({r.iteration for r in exploration.records})), "failed": str(sum(r.status == Status.FAILED for r in exploration.records)),
            "mean val.score": mean([r.score for r in finished]), "best val.score": float(best[0].score) if best else float("nan"),
            "test.score of best": float(held[best[0].run_id]["test.score"]) if best else float("nan"),
            "best pipeline": best[0].pipeline if best else "-",
        })
    return Table("Table 2: policy and action-space ablations (same budget)", columns, rows,
                 best=("mean val.score", "best val.score", "test.score of best"))


def _figures(tracker: Tracker, runs: StudyRuns, top: list[Record], folder: Path) -> dict[str, list[Path]]:
    from lamdagent.reporting import figures

    folder.mkdir(parents=True, exist_ok=True)
    label = {AGENT: "LaMDAgent", "random_policy": "random policy", "merges_only": "merges only"}
    series: dict[str, list[tuple[int, float]]] = {}
    for exploration in runs.explorations:
        name = label.get(exploration.label, exploration.label)
        if name in series:
            name = f"{name} ({exploration.run_id[:6]})"
        series[name] = [(r.iteration, float(r.score)) for r in exploration.models]
    out = {"score_by_iteration": [figures.score_by_iteration(series, folder / "score_by_iteration.png", title="Validation score by iteration")]}
    out["pipelines"] = []
    for rank, record in enumerate(top, 1):
        nodes = [figures.PipelineNode(r.run_id, r.name, _step_label(r), r.score, list(r.inputs)) for r in pipeline_runs(tracker, record.run_id)]
        path = figures.pipeline_dag(nodes, folder / f"pipeline_top{rank}.png", title=f"Top-{rank}: {record.name} (val {record.score:.3f})")
        tracker.log_files(record.run_id, path, "figures")  # the model's run carries its pipeline drawing
        out["pipelines"].append(path)
    data_points = [figures.ScalingPoint(_short(tracker, r["source"]), r["scale"], r["score"]) for r in runs.replays if r["scaling"] == "data"]
    if data_points:
        sources = {p.series for p in data_points}
        originals = [figures.ScalingPoint(s, 1.0, score) for s, score in _source_scores(tracker, runs, sources)]
        out["scaling"] = [figures.scaling_curves(originals + data_points, folder / "data_scaling.png", xlabel="training data scale",
                                                 title="Data-size scaling of the top pipelines (validation score)")]
    return out


def _short(tracker: Tracker, run_id: str) -> str:
    record = tracker.record(run_id)
    return f"{record.name}: {record.pipeline}"[:80]


def _source_scores(tracker: Tracker, runs: StudyRuns, sources: set[str]):
    for replay in runs.replays:
        label = _short(tracker, replay["source"])
        if label in sources:
            sources.discard(label)
            yield label, float(tracker.record(replay["source"]).score or 0.0)


def _step_label(record: Record) -> str:
    return step_label(record.action_type, record.action)


def _markdown(study: Study, weights: dict, table1: Table, table2: Table, figures: dict[str, list[Path]], out_dir: Path) -> str:
    cfg = study.cfg
    weight_text = ", ".join(f"{t} {w:.3g}" for t, w in weights.items())
    parts = [
        f"# LaMDAgent report: study `{cfg.name}`", "",
        f"Base model `{cfg.base_model}`; tasks {', '.join(study.task_names)}; out-of-distribution "
        f"{', '.join(t.name for t in study.ood_tasks) or 'none'}. Test split: {cfg.data.test_size} examples per task. "
        f"Scores are mean rewards; `test.score` = sum_t w_t r_t with w_t = 1/max r_t over the initial models ({weight_text}). "
        "Best values are in bold.", "",
        table1.markdown(), table2.markdown(), "## Figures", "",
    ]
    for name, paths in figures.items():
        for path in paths:
            parts.append(f"![{name}]({path.relative_to(out_dir).as_posix()})")
            parts.append("")
    return "\n".join(parts)
