"""How well the data screening predicts what a full fine-tune on each dataset does to each target.

For every candidate dataset of a study: the screening's effect (the loss drop on each target's
validation answers after a short fine-tune of the base on a sample) beside the full action's effect
(one SFT of the base on the whole dataset at the study's default settings: each target's validation
score minus the base's). Reports Spearman's rank correlation per target (over the datasets) and
pooled (over every dataset x target pair), and what the screening cost against the full fine-tunes.
Everything is an ordinary run of the study's store (cached by fingerprint, so a benchmark's store
already holds most of it):

    PYTHONPATH=. python analysis/screening_accuracy.py --study mixed [--tracking-uri URI] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from rich.console import Console


def measure(study_name: str, tracker, display, overrides: list[str] = ()) -> dict:
    from scipy.stats import spearmanr

    from lamdagent.config import load_config
    from lamdagent.exploration.runner import Runner, Step
    from lamdagent.exploration.seeds import ensure_seeds, prepare_base, sft_action
    from lamdagent.exploration.study import Study
    from lamdagent.screening import screen
    from lamdagent.tracking import Kind

    cfg = load_config(study_name, [*overrides, "seed_models=[]"])
    study = Study(cfg)
    experiment = tracker.experiment(cfg.name)
    group = tracker.start_exploration(experiment, cfg.name, {}, {}, run_name="screening accuracy", kind=Kind.BASELINES)
    runner = Runner(study, tracker, group, experiment, display, base=prepare_base(cfg))
    seeds, weights = ensure_seeds(study, runner)
    runner = runner.with_weights(weights)
    base = seeds[0]
    evidence = screen(runner, base, display)
    full, seconds = {}, 0.0
    for data in study.datasets:
        produced = runner.produce(Step.of_action(sft_action(study, base, data, study.train_seed), Kind.BASELINE, 0, f"full_{data.name}"), finish=True)
        seconds += produced.compute_seconds or 0.0
        if produced.model is not None:
            full[data.name] = {t: produced.model.scores[t] - base.scores[t] for t in study.task_names}
    tracker.close(group)
    names = [d for d in evidence.effects if d in full]

    def rho(predicted: list[float], measured: list[float]) -> float | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant column (no dataset moved a task): no correlation, said as n/a
            value = spearmanr(predicted, measured).statistic
        return None if value != value else float(value)

    per_task = {t: rho([evidence.effects[d][t] for d in names], [full[d][t] for d in names]) for t in study.task_names}
    pooled = rho([evidence.effects[d][t] for d in names for t in study.task_names], [full[d][t] for d in names for t in study.task_names])
    return {"study": cfg.name, "datasets": names, "screening": evidence.effects, "full": full, "spearman": per_task,
            "spearman_pooled": pooled, "screening_seconds": evidence.seconds, "full_seconds": seconds,
            "cost_ratio": evidence.seconds / seconds if seconds else None}


def markdown(result: dict) -> str:
    tasks = list(result["spearman"])
    lines = [f"Study `{result['study']}`: screening (loss drop) vs full SFT of the base (score change), per dataset", "",
             "| dataset | " + " | ".join(f"{t}: screen / full" for t in tasks) + " |", "|---|" + "---|" * len(tasks)]
    for d in result["datasets"]:
        lines.append(f"| {d} | " + " | ".join(f"{result['screening'][d][t]:+.3f} / {result['full'][d][t]:+.2f}" for t in tasks) + " |")
    rho = ", ".join(f"{t} {v:+.2f}" if v is not None else f"{t} n/a" for t, v in result["spearman"].items())
    pooled = "n/a" if result["spearman_pooled"] is None else f"{result['spearman_pooled']:+.2f}"
    lines += ["", f"Spearman per target: {rho}; pooled over dataset x target: {pooled}.",
              f"Cost: screening {result['screening_seconds']:.0f} s, the full fine-tunes {result['full_seconds']:.0f} s "
              f"({100 * (result['cost_ratio'] or 0):.1f}%)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", required=True)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--json", default="")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    return run(lambda tracker, display: measure(args.study, tracker, display, args.overrides), markdown, args.tracking_uri, args.json)


def run(measuring, markdown, tracking_uri: str | None, json_path: str) -> int:
    """`measuring(tracker, display)` on the store, its result printed by `markdown` and saved as JSON."""
    from lamdagent.console import Display
    from lamdagent.tracking import Tracker

    console = Console(width=160)
    with Display(console) as display:
        result = measuring(Tracker(tracking_uri), display)
    console.print(markdown(result), markup=False, highlight=False)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
