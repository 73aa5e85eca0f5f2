"""How stable the data screening's verdicts are across the training randomness, with one repeat and
with `screening.repeats` = R.

Screens a study's candidate datasets at train seeds 0..K-1 (one repeat each: another sample of each
dataset, another order), then reads the screenings two ways: each seed alone (what an exploration
with `screening.repeats=1` at that seed is told), and K/R disjoint groups of R consecutive seeds
(what an exploration with `screening.repeats=R` at the group's first seed is told: repeat r of
train seed t is the screening of train seed t + r, the same run). For every dataset it counts how
often it was called harmful to every target, and for every dataset x target how often its effect was
called positive, negative or unclear. Every screening is an ordinary run of the study's store,
reused by fingerprint:

    PYTHONPATH=. python analysis/screening_stability.py --study uneven --seeds 12 --repeats 3 [--tracking-uri URI] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys

from screening_accuracy import run  # this folder, the script's own


def screen_at(study_name: str, seed: int, tracker, display, overrides: list[str] = ()) -> dict:
    """dataset -> task -> effect of the study's one-repeat screening at train seed `seed`, and its seconds."""
    from lamdagent.config import load_config
    from lamdagent.exploration.runner import Runner
    from lamdagent.exploration.seeds import ensure_seeds, prepare_base
    from lamdagent.exploration.study import Study
    from lamdagent.screening import screen
    from lamdagent.tracking import Kind

    cfg = load_config(study_name, [*overrides, f"train_seed={seed}", "screening.repeats=1", "seed_models=[]", "specialists=false"])
    study = Study(cfg)
    experiment = tracker.experiment(cfg.name)
    group = tracker.start_exploration(experiment, cfg.name, {}, {}, run_name=f"screening stability, seed {seed}", kind=Kind.BASELINES)
    runner = Runner(study, tracker, group, experiment, display, base=prepare_base(cfg))
    seeds, _ = ensure_seeds(study, runner)
    evidence = screen(runner, seeds[0], display)
    tracker.close(group)
    return {"effects": evidence.effects, "seconds": evidence.seconds}


def verdicts(evidence) -> dict:
    """The verdicts an exploration is told: harmful datasets, and each effect's sign (+, - or ? when unclear)."""
    return {"harmful": sorted(d for d in evidence.effects if evidence.harmful(d)),
            "signs": {d: {t: "?" if not evidence.clear(d, t) else "+" if v > 0 else "-" for t, v in tasks.items()}
                      for d, tasks in evidence.effects.items()}}


def measure(study_name: str, seeds: int, repeats: int, tracker, display, overrides: list[str] = ()) -> dict:
    screenings = [screen_at(study_name, seed, tracker, display, overrides) for seed in range(seeds)]
    singles, groups = read(screenings, repeats)
    return {"study": study_name, "seeds": seeds, "repeats": repeats, "screenings": screenings, "singles": singles, "groups": groups,
            "seconds_per_screening": sum(s["seconds"] for s in screenings) / seeds}


def read(screenings: list[dict], repeats: int) -> tuple[list[dict], list[dict]]:
    """The verdicts of each screening alone, and of each disjoint group of `repeats` consecutive ones
    read as the repeats of one screening (a leftover shorter than a group is not read)."""
    from lamdagent.journal import Evidence

    singles = [verdicts(Evidence.of_repeats({d: {t: [v] for t, v in e.items()} for d, e in s["effects"].items()})) for s in screenings]
    groups = []
    for first in range(0, len(screenings) - repeats + 1, repeats):
        group = screenings[first:first + repeats]
        names = [d for d in group[0]["effects"] if all(d in s["effects"] for s in group)]
        samples = {d: {t: [s["effects"][d][t] for s in group] for t in group[0]["effects"][d]} for d in names}
        groups.append(verdicts(Evidence.of_repeats(samples)))
    return singles, groups


def markdown(result: dict) -> str:
    datasets = list(result["screenings"][0]["effects"])
    tasks = list(result["screenings"][0]["effects"][datasets[0]])
    k, r = result["seeds"], result["repeats"]
    n = len(result["groups"])

    def count(readings: list[dict], dataset: str, task: str) -> str:
        signs = [v["signs"].get(dataset, {}).get(task) for v in readings]
        return "/".join(str(signs.count(s)) for s in "+-?")

    lines = [f"Study `{result['study']}`: the screening's verdicts at {k} train seeds (one repeat) and in {n} groups of {r} seeds "
             f"({r} repeats); counts of + / - / unclear per target, and how often called harmful to every target", "",
             "| dataset | " + " | ".join(f"{t}: 1 repeat | {t}: {r} repeats" for t in tasks) + " | harmful: 1 repeat | harmful: "
             f"{r} repeats |", "|---|" + "---|---|" * len(tasks) + "---|---|"]
    for d in datasets:
        cells = " | ".join(f"{count(result['singles'], d, t)} | {count(result['groups'], d, t)}" for t in tasks)
        harmful = (sum(d in v["harmful"] for v in result["singles"]), sum(d in v["harmful"] for v in result["groups"]))
        lines.append(f"| {d} | {cells} | {harmful[0]} of {k} | {harmful[1]} of {n} |")
    lines += ["", f"One screening (all datasets, one repeat): {result['seconds_per_screening']:.0f} s of compute on average; "
              f"{r} repeats cost {r} times that."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", required=True)
    parser.add_argument("--seeds", type=int, default=12, help="train seeds 0..SEEDS-1 screened once each")
    parser.add_argument("--repeats", type=int, default=3, help="the group size read as screening.repeats")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--json", default="")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    if not 1 <= args.repeats <= args.seeds:
        parser.error(f"--repeats must be between 1 and --seeds ({args.seeds}), got {args.repeats}")
    return run(lambda tracker, display: measure(args.study, args.seeds, args.repeats, tracker, display, args.overrides), markdown,
               args.tracking_uri, args.json)


if __name__ == "__main__":
    sys.exit(main())
