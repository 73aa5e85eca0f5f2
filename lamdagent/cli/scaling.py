"""The command line of the scaling replays: analysis/scale_data.py and analysis/scale_model.py."""

from __future__ import annotations

from pathlib import Path

from lamdagent.config.loading import DEFAULT_STUDY
from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.experiments.replay import Substitution
from lamdagent.experiments.scaling import ScalingRow, scale, write
from lamdagent.tracking import Tracker


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
    from lamdagent.cli.main import add_common_options, apply_common_options
    from lamdagent.console import quiet_libraries

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default=DEFAULT_STUDY)
    parser.add_argument("--ranks", default="1,2", help="ranks by validation score of the agent's models to replay")
    if kind == "data":
        parser.add_argument("--factors", default="2,4,6", help="data scale factors")
    else:
        parser.add_argument("--base-model", default="builtin:tiny-llama-large-warm")
    parser.add_argument("--out", default="", help="output folder (default: reports/<study>/scaling)")
    add_common_options(parser)
    args = parser.parse_args(argv)
    quiet_libraries()
    console = Console()
    try:
        apply_common_options(args)
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

