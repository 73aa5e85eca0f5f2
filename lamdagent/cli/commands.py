"""The `baselines`, `report`, `replay`, `export`, `compare-policies` and `score` subcommands (argument handling and console output;
`report` and `compare-policies` end with the study's links in the MLflow UI, cli/ui.py)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from lamdagent.cli.ui import print_study_links
from lamdagent.errors import UserError


def numbers(text: str, option: str, whole: bool = False) -> list[float]:
    """A comma-separated list of numbers given to `option`, or a one-line UserError."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or (whole and any(v != int(v) for v in values)):
        raise UserError(f"{option} must be a comma-separated list of {'whole ' if whole else ''}numbers, got {text!r}")
    return values


def baselines(args, console: Console, overrides: list[str]) -> int:
    from lamdagent.console import Display
    from lamdagent.experiments.baselines import run_baselines
    from lamdagent.tracking import Tracker

    only = [name.strip() for name in args.only.split(",") if name.strip()]
    grid = tuple(numbers(args.grid, "--grid"))
    with Display(console) as display:
        group = run_baselines(args.study, overrides, Tracker(args.tracking_uri), display, only, grid)
    console.print(f"baselines run id: [bold]{group}[/]   (then: lamdagent report --study {args.study})")
    return 0


def report(args, console: Console, overrides: list[str]) -> int:
    from lamdagent.console import Display
    from lamdagent.reporting.report import build_report
    from lamdagent.tracking import Tracker

    out = Path(args.out or f"reports/{args.study}")
    tracker = Tracker(args.tracking_uri)
    with Display(console) as display:
        path = build_report(args.study, tracker, display, out, args.top_k, overrides)
    console.print(path.read_text(), markup=False, highlight=False)
    console.print(f"report: [bold]{path}[/]")
    print_study_links(console, tracker, args.study)
    return 0


def replay(args, console: Console, overrides: list[str]) -> int:
    from lamdagent.console import Display
    from lamdagent.experiments.replay import Substitution
    from lamdagent.experiments.replay import replay as run_replay
    from lamdagent.tracking import Tracker

    substitution = Substitution(args.data_scale, args.base_model)
    tracker = Tracker(args.tracking_uri)
    with Display(console) as display:
        produced = run_replay(tracker, args.run_id, substitution, display, reuse=not args.recompute)
    source = tracker.record(args.run_id)
    table = Table(title=f"replay of {source.name} ({substitution.label()})", header_style="bold")
    for column in ("", "pipeline", "val.score", *source.scores):
        table.add_column(column)
    table.add_row("source", source.pipeline, f"{source.score:.3f}", *(f"{v:.2f}" for v in source.scores.values()))
    if produced.model:
        model = produced.model
        table.add_row("replay", model.pipeline, f"{model.score:.3f}", *(f"{model.scores.get(t, 0.0):.2f}" for t in source.scores))
        console.print(table)
        console.print(f"replayed model run id: [bold]{produced.run_id}[/]")
        return 0
    console.print(table)
    console.print(f"[red]the replay failed: {produced.error}")
    return 1


def export(args, console: Console, overrides: list[str]) -> int:
    from lamdagent.experiments.export import check_target, export_pipeline
    from lamdagent.tracking import Tracker

    out = Path(args.dir).expanduser()
    check_target(out)  # before the store is opened
    pipeline = export_pipeline(Tracker(args.tracking_uri), args.run_id, out)
    steps = [s for s in pipeline["steps"] if s["kind"] != "base"]
    console.print(f"exported {pipeline['pipeline']} ({len(steps)} steps: {', '.join(s['kind'] for s in steps) or 'none'}) to {out}", highlight=False)
    console.print(f"run it without LaMDAgent: python {out / 'run_pipeline.py'}   (the model lands in {out / pipeline['final']})", highlight=False)
    return 0


def compare_policies(args, console: Console, overrides: list[str]) -> int:
    from lamdagent.agent.policies import benchmark_policies
    from lamdagent.config import load_config
    from lamdagent.console import Display
    from lamdagent.experiments.comparison import compare
    from lamdagent.tracking import Tracker

    policies = [p.strip() for p in args.policies.split(",") if p.strip() and p.strip() != "all"] if args.policies else []
    policies = policies or benchmark_policies()  # --policies all, or none given: every registered policy
    out = Path(args.out or f"reports/{args.study}/compare")
    tracker = Tracker(args.tracking_uri)
    with Display(console) as display:
        result = compare(args.study, overrides, policies, args.seeds, args.budget, tracker, display, out, not args.no_baselines,
                         args.budget_seconds, args.equal_compute, args.first_seed, args.budget_flops)
    console.print(result.files["markdown"].read_text(), markup=False, highlight=False)
    console.print("written: " + ", ".join(str(p) for p in result.files.values()))
    print_study_links(console, tracker, load_config(args.study, overrides).name)  # (--study may be a YAML file)
    return 0


def score(args, console: Console, overrides: list[str]) -> int:
    """Each row's extracted answer and reward, then the aggregate, as JSON lines."""
    import json
    import sys

    from lamdagent.evaluation.scoring import aggregate, score_rows
    from lamdagent.evaluation.tasks import load_task

    task = load_task(args.task)
    if args.input:
        path = Path(args.input).expanduser()
        if not path.is_file():
            raise UserError(f"--input {args.input!r} is not a file")
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise UserError(f"{args.input}:{number} is not JSON: {err.msg}") from None
    else:
        from lamdagent.tracking import Tracker

        rows = Tracker(args.tracking_uri).load_json(args.run, f"predictions/{args.split}/{task.name}.json")
        if rows is None:
            raise UserError(f"run {args.run!r} has no logged predictions/{args.split}/{task.name}.json")
    scored = list(score_rows(task, rows, args.seed))
    summary = aggregate(task, scored)
    lines = [json.dumps(row) for row in scored] + [json.dumps({"aggregate": summary})]
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n")
    else:
        sys.stdout.write("\n".join(lines) + "\n")
    Console(stderr=True).print(f"{task.name} ({summary['definition']}): mean reward {summary['mean_reward']:.4f} over {summary['rows']} rows"
                               + (f", {summary['unscored']} unscored" if summary["unscored"] else ""), highlight=False)
    return 0
