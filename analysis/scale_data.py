"""Data-size scaling (the paper's Figure 7): replay the study's top pipelines with every training set
scaled (x2, x4, x6 in the paper), then print the table and write a CSV and the curves.

    python analysis/scale_data.py --study demo --ranks 1,2 --factors 2,4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from lamdagent import scaling
from lamdagent.progress import Display, quiet_libraries
from lamdagent.replay import Substitution
from lamdagent.tracking import Tracker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default="demo")
    parser.add_argument("--ranks", default="1,2", help="ranks by validation score of the agent's models to replay")
    parser.add_argument("--factors", default="2,4,6", help="data scale factors")
    parser.add_argument("--out", default="", help="output folder (default: reports/<study>/scaling)")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    console = Console()
    ranks = [int(x) for x in args.ranks.split(",") if x.strip()]
    substitutions = [Substitution(float(x)) for x in args.factors.split(",") if x.strip()]
    tracker = Tracker(args.tracking_uri)
    with Display(console) as display:
        rows = scaling.scale(tracker, args.study, ranks, substitutions, display)
    paths = scaling.write(rows, Path(args.out or f"reports/{args.study}/scaling"), "data")
    console.print(scaling.table(rows, f"Data-size scaling of study {args.study} (validation score)"))
    console.print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
