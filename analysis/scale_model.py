"""Model-size scaling (the paper's Table 3): replay the pipelines at the given ranks (the paper used
Top-50/80/90/100-style ranks) with the base model swapped for a bigger one, then print the table
and write a CSV. Offline, `builtin:tiny-llama-large` is a ~6x larger sibling of the demo's base.

    python analysis/scale_model.py --study demo --ranks 1,2 --base-model builtin:tiny-llama-large
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
    parser.add_argument("--base-model", default="builtin:tiny-llama-large")
    parser.add_argument("--out", default="", help="output folder (default: reports/<study>/scaling)")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    console = Console()
    ranks = [int(x) for x in args.ranks.split(",") if x.strip()]
    tracker = Tracker(args.tracking_uri)
    with Display(console) as display:
        rows = scaling.scale(tracker, args.study, ranks, [Substitution(base_model=args.base_model)], display)
    paths = scaling.write(rows, Path(args.out or f"reports/{args.study}/scaling"), "model")
    console.print(scaling.table(rows, f"Model-size transfer of study {args.study}: base model -> {args.base_model} (validation score)"))
    console.print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
