"""`lamdagent` command line: explore (start or resume), show the top pipelines of an exploration."""

from __future__ import annotations

import argparse
import os
import re
import sys

from rich.console import Console

from lamdagent.cli import ui
from lamdagent.config.loading import DEFAULT_STUDY
from lamdagent.errors import UserError
from lamdagent.files import add_conf_dir


def split_overrides(values: list[str]) -> list[str]:
    """Dotlist overrides; one argument may hold several separated by spaces (MLproject quoting),
    split only before a `key=` so that values with spaces (`w={a: 1}`) stay whole."""
    return [item for value in values for item in re.split(r"\s+(?=[\w.]+=)", value.strip()) if item]


COMMON_OPTIONS = {  # accepted by every command, before or after its name
    "--conf-dir": dict(action="append", default=[], metavar="DIR",
                       help="a folder of your own studies/ and tasks/ (and prompts/), searched first; also $LAMDAGENT_CONF_PATH and ./conf"),
    "--include": dict(action="append", default=[], metavar="MODULE_OR_PATH",
                      help="import your own metrics, extractors, action types, ... first: a module on sys.path, a .py file or a folder "
                           "of them (repeatable; also $LAMDAGENT_INCLUDE, which the processes started from here inherit)"),
    "--tracking-uri": dict(default=None, metavar="URI", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"),
}
BEFORE = "before_"  # the dest prefix of the common options given before the command


def add_common_options(parser: argparse.ArgumentParser, dest_prefix: str = "") -> None:
    for flag, options in COMMON_OPTIONS.items():
        parser.add_argument(flag, dest=dest_prefix + flag[2:].replace("-", "_"), **options)


def apply_common_options(args) -> None:
    """The user's conf folders and plug-ins (--include, then $LAMDAGENT_INCLUDE), before anything is looked up."""
    from lamdagent.plugins import include, load_included

    for folder in args.conf_dir:
        add_conf_dir(folder)
    for entry in args.include:
        include(entry)
    load_included()


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_common_options(common)
    parser = argparse.ArgumentParser(prog="lamdagent", description=__doc__)
    add_common_options(parser, BEFORE)  # a subcommand's own defaults would overwrite the same dest
    commands = parser.add_subparsers(dest="command", required=True)
    explore = commands.add_parser("explore", parents=[common], help="run (or resume) an exploration of a study")
    explore.add_argument("--study", default=DEFAULT_STUDY, help=f"a study in conf/studies/ or a YAML path (default: {DEFAULT_STUDY})")
    explore.add_argument("--resume", default="", help="exploration run id to continue, or 'latest': the study's latest unfinished one")
    explore.add_argument("--dry-run", action="store_true", help="validate the study offline and list what it would download")
    explore.add_argument("overrides", nargs="*", help="omegaconf dotlist, e.g. iterations=5 agent.temperature=0")
    gc = commands.add_parser("gc", parents=[common], help="free the weights of a study's models but the top k and their lineage")
    gc.add_argument("--study", required=True, help="the study (experiment lamdagent/<study>)")
    gc.add_argument("--keep-top-k", type=int, required=True)
    baselines = commands.add_parser("baselines", parents=[common],
                                    help="run the paper's baselines of a study (base, specialists, full FT, TIES grid, random, merges only)")
    baselines.add_argument("--study", default=DEFAULT_STUDY)
    baselines.add_argument("--only", default="", help="comma-separated subset of base, specialists, full, ties_grid, random_policy, merges_only (default: all)")
    baselines.add_argument("--grid", default="0.2,0.5,0.8", help="TIES grid: the weights each specialist may take")
    baselines.add_argument("overrides", nargs="*", help="omegaconf dotlist, applied to the study (e.g. iterations=5)")
    report = commands.add_parser("report", parents=[common], help="the final report: top-k on test and OOD tasks, tables, figures")
    report.add_argument("--study", default=DEFAULT_STUDY)
    report.add_argument("--top-k", type=int, default=3)
    report.add_argument("--out", default="", help="output folder (default: reports/<study>)")
    report.add_argument("overrides", nargs="*", help="omegaconf dotlist over the exploration's config (e.g. data.test_size=200)")
    replay = commands.add_parser("replay", parents=[common], help="re-execute a model's pipeline with more data or another base model")
    replay.add_argument("run_id", help="the run of the model to replay")
    replay.add_argument("--data-scale", type=float, default=1.0, help="multiply every training set's size")
    replay.add_argument("--base-model", default=None, help="swap the base model (builtin:..., a folder or a hub id)")
    replay.add_argument("--recompute", action="store_true", help="compute every step even when an identical run exists")
    export = commands.add_parser("export", parents=[common],
                                 help="write a model's pipeline as files that run without LaMDAgent: data, TRL configs, mergekit YAML, a runner")
    export.add_argument("run_id", help="the run of the model to export")
    export.add_argument("dir", help="a new or empty folder")
    compare = commands.add_parser("compare-policies", parents=[common],
                                  help="the search benchmark: policies x seeds at one budget, best-so-far curves and held-out test scores")
    compare.add_argument("--study", default=DEFAULT_STUDY)
    compare.add_argument("--policies", default="all", help="comma-separated registered policies (default: all of them)")
    compare.add_argument("--seeds", type=int, default=3,
                         help="explorations per policy: seed s sets agent.seed=s and train_seed=s (the policy's and the training's randomness)")
    compare.add_argument("--first-seed", type=int, default=0,
                         help="the first seed (default 0): seeds N..N+SEEDS-1, e.g. to add seeds to an earlier comparison (its actions are reused)")
    compare.add_argument("--budget", type=int, default=None, help="iterations of each exploration (default 10, unbounded under a compute budget)")
    compare.add_argument("--budget-seconds", type=float, default=None, help="compute budget of each exploration, in wall seconds (budget.seconds)")
    compare.add_argument("--budget-flops", type=float, default=None,
                         help="compute budget of each exploration, in floating-point operations (budget.flops: load does not change them)")
    compare.add_argument("--equal-compute", action="store_true",
                         help="the compute budget is the full fine-tuning grid's own floating-point operations (budget.flops)")
    compare.add_argument("--no-baselines", action="store_true", help="skip full fine-tuning, the specialists and the TIES grid")
    compare.add_argument("--out", default="", help="output folder (default: reports/<study>/compare)")
    compare.add_argument("overrides", nargs="*", help="omegaconf dotlist, applied to every exploration (e.g. agent.backend=openai)")
    score = commands.add_parser("score", parents=[common],
                                help="score generations with a task's current definition, without a model: a JSONL file or a run's logged predictions")
    score.add_argument("--task", required=True, help="a task in conf/tasks/ or a task YAML path")
    source = score.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help='JSON lines: {"doc": <task row>, "generation": ...} or {"id": ..., "generation": ...}')
    source.add_argument("--run", help="a model's run id: re-score its logged predictions of the task")
    score.add_argument("--split", default="val", help="with --run: the predictions of this split (val, test, ood)")
    score.add_argument("--output", default="", help="where the scored JSON lines go (default: standard output)")
    score.add_argument("--seed", type=int, default=0, help="the study seed that draws generated tasks' rows (for --input rows given by id)")
    top = commands.add_parser("top", parents=[common], help="print the top pipelines of an exploration")
    top.add_argument("exploration", help="exploration run id")
    top.add_argument("-k", type=int, default=10)
    ui.add_parser(commands, [common])
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, overrides anywhere on it (`explore a=1 --resume latest b=2`: a=1, then b=2)
    and the common options before or after the command (those before come first)."""
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    if extras and hasattr(args, "overrides") and not any(e.startswith("-") for e in extras):
        args.overrides += extras  # what argparse leaves after the first run of positionals, in order
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    for name in ("conf_dir", "include"):
        setattr(args, name, getattr(args, BEFORE + name) + getattr(args, name))
    args.tracking_uri = args.tracking_uri or getattr(args, BEFORE + "tracking_uri")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # logs (mlflow run, CI): wide enough for pipeline expressions
        console = Console(width=160)
    from lamdagent.console import quiet_libraries

    quiet_libraries()
    try:
        apply_common_options(args)
        if args.command == "explore":
            return _explore(args, console)
        if args.command == "gc":
            return _gc(args, console)
        if args.command == "ui":
            return ui.ui(args, console)
        if args.command in ("baselines", "report", "replay", "export", "score", "compare-policies"):
            from lamdagent.cli import commands

            return getattr(commands, args.command.replace("-", "_"))(args, console, split_overrides(getattr(args, "overrides", [])))
        return _top(args, console)
    except UserError as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: finished iterations are kept; resume with `lamdagent explore --resume <id>`")
        return 130


def _explore(args, console: Console) -> int:
    if args.dry_run:
        from lamdagent.cli.dry_run import dry_run
        from lamdagent.config import load_config
        from lamdagent.exploration.study import Study

        dry_run(Study(load_config(args.study, split_overrides(args.overrides))), console)
        return 0
    from lamdagent.console import Display
    from lamdagent.exploration.loop import start_or_resume
    from lamdagent.reporting.top import top_table
    from lamdagent.tracking import Tracker

    tracker = Tracker(args.tracking_uri)
    launcher = os.environ.get("MLFLOW_RUN_ID")  # set by `mlflow run`
    with Display(console) as display:
        run_id, records, cfg = start_or_resume(args.study, split_overrides(args.overrides), args.resume or None, tracker, display, launcher)
    console.print(top_table(records, list(cfg.tasks)))
    console.print(f"exploration run id: [bold]{run_id}[/]   (resume: lamdagent explore --resume {run_id} iterations=N)")
    ui.print_study_links(console, tracker, cfg.name)
    return 0


def _gc(args, console: Console) -> int:
    from lamdagent.tracking import Tracker
    from lamdagent.tracking.retention import collect

    if args.keep_top_k < 1:
        raise UserError(f"--keep-top-k must be >= 1, got {args.keep_top_k}")
    tracker = Tracker(args.tracking_uri)
    freed = collect(tracker, tracker.find_experiment(args.study), args.keep_top_k)
    console.print(f"freed the weights of {len(freed)} model(s), {sum(freed.values()) / 1e6:.1f} MB; kept the top {args.keep_top_k} and their lineage")
    return 0


def _top(args, console: Console) -> int:
    from lamdagent.reporting.top import top_table
    from lamdagent.tracking import Tracker

    tracker = Tracker(args.tracking_uri)
    parent = tracker.run(args.exploration)  # RunNotFound: a one-line error
    records = tracker.children(args.exploration, parent.info.experiment_id)
    tasks = sorted({t for r in records for t in r.scores})
    console.print(top_table(records, tasks, args.k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
