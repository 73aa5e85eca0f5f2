"""Plot an exploration's validation score by iteration (each action and the running best), read
from the tracking server, and log the PNG to the exploration run.

    python analysis/score_by_iteration.py <exploration run id> [--out score.png] [--no-log]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lamdagent.tracking import Tracker  # noqa: E402


def plot(exploration_id: str, out: str, log: bool = True) -> str:
    tracker = Tracker()
    parent = tracker.exploration(exploration_id)
    records = [r for r in tracker.children(exploration_id, parent.info.experiment_id) if r.kind == "action"]
    finished = [r for r in records if r.score is not None]
    best, running = [], float("-inf")
    for record in finished:
        running = max(running, record.score)
        best.append(running)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([r.iteration for r in finished], [r.score for r in finished], "o", label="action's model")
    ax.step([r.iteration for r in finished], best, where="post", label="best so far")
    for record in records:
        if record.status == "failed":
            ax.axvline(record.iteration, color="red", alpha=0.3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation score  (sum_t w_t r_t)")
    ax.set_title(f"exploration {exploration_id[:8]} ({parent.data.tags.get('lamdagent.study', '')})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    if log:
        tracker.client.log_artifact(exploration_id, out, "figures")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exploration")
    parser.add_argument("--out", default="score_by_iteration.png")
    parser.add_argument("--no-log", action="store_true", help="do not log the figure to the run")
    args = parser.parse_args()
    print(plot(args.exploration, args.out, log=not args.no_log))


if __name__ == "__main__":
    main()
