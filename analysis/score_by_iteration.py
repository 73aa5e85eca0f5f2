"""Plot an exploration's validation score by iteration (window average, running maximum, ±1 std;
the paper's Figure 5), read from the tracking server, and log the PNG to the exploration run.

    python analysis/score_by_iteration.py <exploration run id> [--window 10] [--out score.png] [--no-log]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lamdagent.reporting.figures import score_by_iteration
from lamdagent.tracking import Tracker


def plot(exploration_id: str, out: str, window: int = 10, log: bool = True) -> Path:
    tracker = Tracker()
    parent = tracker.run(exploration_id)
    records = [r for r in tracker.children(exploration_id, parent.info.experiment_id) if r.kind == "action" and r.score is not None]
    study = parent.data.tags.get("lamdagent.study", "")
    path = score_by_iteration({f"exploration {exploration_id[:8]}": [(r.iteration, r.score) for r in records]}, Path(out), window,
                              title=f"Validation score by iteration ({study})")
    if log:
        tracker.log_files(exploration_id, path, "figures")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exploration")
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--out", default="score_by_iteration.png")
    parser.add_argument("--no-log", action="store_true", help="do not log the figure to the run")
    args = parser.parse_args()
    print(plot(args.exploration, args.out, args.window, log=not args.no_log))


if __name__ == "__main__":
    main()
