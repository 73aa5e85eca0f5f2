"""A world's properties measured a priori (docs/worlds.md), before any search runs in it: on the
validation split, with the tool's own trainer, merges and evaluator, one step at a time,

  (a) the base and the specialists (the initial models, which fix w_t = 1 / max r_t);
  (b) one SFT of the base per candidate dataset at each of the study's learning rates
      (which data helps which target);
  (c) the SFT of the base on `all` at each learning rate, at the study's epochs;
  (d) each merge type the study offers, over each pair of specialists at each offered
      hyperparameter value (whether merges compose in this world);

with what each model cost to make (`cost.seconds`: building it), to produce in all (building,
evaluating and logging: wall seconds) and the CPU seconds of this process meanwhile (all its threads:
a measure that a busy machine inflates less than the wall clock). Runs go to $MLFLOW_TRACKING_URI (use a temporary store); the rows are
printed as Markdown tables and written as JSON.

    MLFLOW_TRACKING_URI=sqlite:////tmp/w/mlflow.db python analysis/world_table.py --study redundant --out /tmp/w/redundant.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

from rich.console import Console

from lamdagent.actions import ACTION_TYPES
from lamdagent.actions.merge import MergeAction
from lamdagent.config import load_config
from lamdagent.console import Display, quiet_libraries
from lamdagent.exploration.overlap import describe, overlaps
from lamdagent.exploration.runner import Runner, Step
from lamdagent.exploration.seeds import ensure_seeds, prepare_base
from lamdagent.exploration.study import Study
from lamdagent.space import Action
from lamdagent.tracking import Kind, Tracker

PARTS = ("data", "all", "merges")


def action(study: Study, type_name: str, **bindings) -> Action:
    """An action of the study's `type_name` with `bindings` in the type's slot order (as the space builds them)."""
    kind = ACTION_TYPES[type_name](getattr(study.cfg, type_name))
    return Action(kind, {slot.name: bindings[slot.name] for slot in kind.slots}, study.cfg.seed)


def hparam_grid(study: Study, type_name: str) -> list[dict]:
    """Every combination of the hyperparameter values the study offers for `type_name`."""
    kind = ACTION_TYPES[type_name](getattr(study.cfg, type_name))
    names = [s.name for s in kind.slots if s.kind == "hparam"]
    return [dict(zip(names, values)) for values in itertools.product(*(list(getattr(getattr(study.cfg, type_name), n)) for n in names))]


def measure(study: Study, parts: tuple[str, ...], display: Display) -> list[dict]:
    cfg = study.cfg
    tracker = Tracker()
    experiment = tracker.experiment(cfg.name)
    group = tracker.start_exploration(experiment, cfg.name, {}, {}, run_name="world-table", kind=Kind.BASELINES)
    runner = Runner(study, tracker, group, experiment, display, base=prepare_base(cfg))
    started, cpu = time.perf_counter(), time.process_time()
    seeds, weights = ensure_seeds(study, runner)
    rows = [{"part": "a", "label": s.name, "pipeline": s.pipeline, "scores": s.scores, "score": s.score, "cost_seconds": s.cost_seconds,
             "seconds": None, "cpu_seconds": None} for s in seeds]
    # the base's row holds the initial models' times, all together (building a built-in base included)
    rows[0].update(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu)
    runner = runner.with_weights(weights)
    base, specialists = seeds[0], seeds[1:]

    def produce(part: str, label: str, act: Action) -> None:
        cpu = time.process_time()
        name = f"{part}{sum(r['part'] == part for r in rows) + 1}"  # a model's name holds no '.' or ':' (MLflow's rule)
        made = runner.produce(Step.of_action(act, Kind.BASELINE, 0, name), finish=True)
        model = made.model
        rows.append({"part": part, "label": label, "pipeline": model.pipeline if model else act.pipeline(), "status": str(made.status),
                     "scores": model.scores if model else {}, "score": model.score if model else None,
                     "cost_seconds": model.cost_seconds if model else None, "seconds": made.seconds, "cpu_seconds": time.process_time() - cpu,
                     "error": made.error})
        display.log(f"{label}: {rows[-1]['scores']} score {rows[-1]['score']} ({made.seconds:.0f} s)")

    learning_rates = list(cfg.sft.learning_rate)
    if "data" in parts:
        for dataset in study.candidates:
            for lr in learning_rates:
                produce("b", f"{dataset.name} @ {lr:g}", action(study, "sft", model=base, dataset=dataset, learning_rate=lr))
    if "all" in parts:
        for lr in learning_rates:
            produce("c", f"all @ {lr:g}", action(study, "sft", model=base, dataset=study.all_data, learning_rate=lr))
    if "merges" in parts:
        for type_name in [t for t in cfg.actions if issubclass(ACTION_TYPES[t], MergeAction)]:
            for (a, b), hp in itertools.product(itertools.combinations(specialists, 2), hparam_grid(study, type_name)):
                values = ", ".join(f"{k}={v:g}" for k, v in hp.items())
                produce("d", f"{type_name}({a.name}, {b.name}; {values})", action(study, type_name, model_a=a, model_b=b, **hp))
    tracker.close(group)
    return rows


def markdown(rows: list[dict], tasks: list[str]) -> str:
    head = (f"| part | model | {' | '.join(tasks)} | val.score | cost.seconds | seconds | CPU seconds |\n"
            f"|---|---|{'---|' * len(tasks)}---|---|---|---|")
    lines = [head]
    for row in rows:
        scores = " | ".join(f"{row['scores'][t]:.2f}" if t in row["scores"] else "-" for t in tasks)
        score = f"{row['score']:.3f}" if row["score"] is not None else "-"
        cost = f"{row['cost_seconds']:.0f}" if row.get("cost_seconds") is not None else "-"
        seconds, cpu = (f"{row[key]:.0f}" if row.get(key) is not None else "-" for key in ("seconds", "cpu_seconds"))
        lines.append(f"| {row['part']} | `{row['label']}` | {scores} | {score} | {cost} | {seconds} | {cpu} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True)
    parser.add_argument("--out", required=True, help="JSON file for the rows")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {list(PARTS)} (the initial models always)")
    parser.add_argument("overrides", nargs="*", help="omegaconf dotlist, applied to the study")
    args = parser.parse_args()
    quiet_libraries()
    study = Study(load_config(args.study, args.overrides))
    parts = tuple(p for p in args.parts.split(",") if p)
    started, load = time.perf_counter(), os.getloadavg()[0]
    with Display(Console(stderr=True)) as display:
        for line in describe(overlaps(study), study):
            display.log(f"overlap: {line}")
        rows = measure(study, parts, display)
    total, load = time.perf_counter() - started, (load + os.getloadavg()[0]) / 2
    Path(args.out).write_text(json.dumps({"study": args.study, "overrides": args.overrides, "seconds": total, "load": load, "rows": rows,
                                          "overlaps": overlaps(study)}, indent=1))
    print(markdown(rows, study.task_names))
    print(f"\n{len(rows)} models in {total:.0f} s (load average {load:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
