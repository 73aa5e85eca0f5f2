"""The paper's two transfers of the top pipelines: more training data (its x2, x4, x6) and a bigger
base model, as replays; results as a table, a CSV and scaling curves."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.experiments.replay import Substitution, replay
from lamdagent.reporting.collect import collect
from lamdagent.reporting.top import top_records
from lamdagent.tracking import Record, Tracker


@dataclass
class ScalingRow:
    rank: int
    name: str
    pipeline: str
    source_score: float
    setting: str  # "data x2" or the base model
    x: float
    score: float | None  # None: the replay failed
    run_id: str


def ranked_models(tracker: Tracker, study: str, ranks: list[int]) -> list[tuple[int, Record]]:
    """The agent's models at these ranks by validation score (1 = best)."""
    ordered = top_records(collect(tracker, study).agent_models(), max(ranks))
    missing = [r for r in ranks if r > len(ordered) or r < 1]
    if missing:
        raise UserError(f"rank {missing[0]} does not exist: study {study!r} has {len(ordered)} scored models")
    return [(rank, ordered[rank - 1]) for rank in ranks]


def scale(tracker: Tracker, study: str, ranks: list[int], substitutions: list[Substitution], display: Display) -> list[ScalingRow]:
    rows = []
    for rank, record in ranked_models(tracker, study, ranks):
        for substitution in substitutions:
            display.log(f"replaying top-{rank} {record.name} = {record.pipeline} with {substitution.label()}")
            produced = replay(tracker, record.run_id, substitution, display)
            score = produced.model.score if produced.model else None
            x = substitution.data_scale
            rows.append(ScalingRow(rank, record.name, record.pipeline, float(record.score), substitution.label(), x, score, produced.run_id))
    return rows


def write(rows: list[ScalingRow], out_dir: Path, kind: str) -> dict[str, Path]:
    """CSV of the rows and, for data scaling, the curves (score by data scale, x1 = the source)."""
    from lamdagent.reporting import figures

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / f"{kind}_scaling.csv"}
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", "model", "pipeline", "source val.score", "setting", "x", "replay val.score", "replay run"])
        for r in rows:
            writer.writerow([r.rank, r.name, r.pipeline, f"{r.source_score:.6g}", r.setting, f"{r.x:g}", "" if r.score is None else f"{r.score:.6g}", r.run_id])
    if kind == "data":
        points = [figures.ScalingPoint(f"top-{r.rank} {r.name}", 1.0, r.source_score) for r in {r.rank: r for r in rows}.values()]
        points += [figures.ScalingPoint(f"top-{r.rank} {r.name}", r.x, r.score) for r in rows if r.score is not None]
        paths["figure"] = figures.scaling_curves(points, out_dir / "data_scaling.png", xlabel="training data scale (x the study's size)",
                                                 title="Data-size scaling of the top pipelines")
    return paths
