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
from lamdagent.tracking.tracker import Record, Tracker


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


def table(rows: list[ScalingRow], title: str):
    from rich.table import Table

    view = Table(title=title, header_style="bold")
    for column in ("rank", "model", "pipeline", "source", "setting", "replay", "change"):
        view.add_column(column)
    for r in rows:
        change = "failed" if r.score is None else f"{r.score - r.source_score:+.3f}"
        view.add_row(str(r.rank), r.name, r.pipeline, f"{r.source_score:.3f}", r.setting, "-" if r.score is None else f"{r.score:.3f}", change)
    return view


def main(kind: str, argv: list[str] | None = None, doc: str = "") -> int:
    """The command line of analysis/scale_data.py (kind `data`) and analysis/scale_model.py (`model`)."""
    import argparse

    from rich.console import Console

    from lamdagent.cli.commands import numbers
    from lamdagent.console import quiet_libraries

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default="demo")
    parser.add_argument("--ranks", default="1,2", help="ranks by validation score of the agent's models to replay")
    if kind == "data":
        parser.add_argument("--factors", default="2,4,6", help="data scale factors")
    else:
        parser.add_argument("--base-model", default="builtin:tiny-llama-large")
    parser.add_argument("--out", default="", help="output folder (default: reports/<study>/scaling)")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    console = Console()
    try:
        ranks = [int(x) for x in numbers(args.ranks, "--ranks", whole=True)]
        if kind == "data":
            substitutions = [Substitution(x) for x in numbers(args.factors, "--factors")]
            title = f"Data-size scaling of study {args.study} (validation score)"
        else:
            substitutions = [Substitution(base_model=args.base_model)]
            title = f"Model-size transfer of study {args.study}: base model -> {args.base_model} (validation score)"
        tracker = Tracker(args.tracking_uri)
        with Display(console) as display:
            rows = scale(tracker, args.study, ranks, substitutions, display)
    except UserError as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        return 2
    paths = write(rows, Path(args.out or f"reports/{args.study}/scaling"), kind)
    console.print(table(rows, title))
    console.print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0

