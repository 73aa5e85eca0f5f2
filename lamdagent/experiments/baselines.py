"""The paper's baselines as runs of the study's experiment (`lamdagent.kind=baseline`).

`base` and `specialists` (the initial models), `full` (SFT of the base on all candidate training data, its learning rate and epochs tuned on validation), and
`ties_grid` (TIES merges of all specialists over a grid of their weights, searched with optuna's
GridSampler: one nested run per trial, the best one tagged) nest under one baselines run.
`random_policy` and `merges_only` are explorations with the agent's budget (`iterations`), tagged
`lamdagent.baseline`: the random policy, and the study's policy restricted to merge actions.
"""

from __future__ import annotations

import itertools
import json

from lamdagent import config as config_mod
from lamdagent.actions import ACTION_TYPES, ActionContext
from lamdagent.actions.merge import run_mergekit
from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.exploration.runner import Produced, Runner, Step
from lamdagent.exploration.seeds import ensure_seeds, prepare_base, specialist_action
from lamdagent.exploration.study import Study
from lamdagent.space import Action, ModelObject, fingerprint
from lamdagent.tracking import Kind, Record, Status, Tracker

BASELINES = ("base", "specialists", "full", "ties_grid", "random_policy", "merges_only")
FULL_EPOCH_FACTORS = (0.5, 1.0, 2.0)  # full fine-tuning's epochs grid, times the study's sft.epochs
FULL_MAX_WIDENINGS = 2  # times the grid doubles its longest epochs while its best trial sits there
MERGE_TYPES = ("ties", "dare_ties", "task_arithmetic", "linear", "slerp")


def check_names(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise UserError(f"unknown baseline {unknown[0]!r}; expected some of {list(BASELINES)}")
    return names or list(BASELINES)


def run_baselines(study_name: str, overrides: list[str], tracker: Tracker, display: Display, only: list[str] | None = None,
                  grid: tuple[float, ...] = (0.2, 0.5, 0.8), full_setting: tuple[float, float] | None = None) -> str:
    """Run the chosen baselines (all by default); returns the baselines run id. `full_setting`
    (learning rate, epochs): full fine-tuning is that one trial instead of the grid (a chosen setting
    trained again); the specialists, and so w_t, stay the study's."""
    names = check_names(list(only or []))
    if not grid or any(not 0 < w <= 1 for w in grid):
        raise UserError(f"the TIES grid weights must be in (0, 1], got {list(grid)}")
    cfg = config_mod.load_config(study_name, overrides)
    study = Study(cfg)
    study.connect_judge()
    experiment_id = tracker.experiment(cfg.name)
    plain = config_mod.redacted(config_mod.to_dict(cfg))
    group = tracker.start_exploration(experiment_id, cfg.name, plain, config_mod.flat_params(plain), run_name="baselines", kind=Kind.BASELINES)
    display.log(f"baselines run [bold]{group}[/] of study [bold]{cfg.name}[/] in {tracker.tracking_uri}")
    try:
        model_baselines = [n for n in names if n in ("base", "specialists", "full", "ties_grid")]
        if model_baselines:
            _model_baselines(study, tracker, group, experiment_id, display, model_baselines, grid, full_setting)
        for name in ("random_policy", "merges_only"):
            if name in names:
                _exploration_baseline(name, study_name, overrides, cfg, tracker, display)
    except BaseException:
        tracker.close(group, Status.KILLED.mlflow)
        raise
    tracker.close(group)
    return group


def _model_baselines(study: Study, tracker: Tracker, group: str, experiment_id: str, display: Display, names: list[str],
                     grid: tuple[float, ...], full_setting: tuple[float, float] | None) -> None:
    cfg = study.cfg
    runner = Runner(study, tracker, group, experiment_id, display, base=prepare_base(cfg))
    seeds, weights = ensure_seeds(study, runner)  # the initial models (reused from the explorations when computed)
    runner = runner.with_weights(weights)
    base, specialists = seeds[0], [s for s in seeds if s.name.startswith("spec_")]  # not the practitioner's defaults (seed_models)

    if "base" in names:  # reused from the seed run by fingerprint; rebuilt only if its weights were freed
        runner.produce(Step.of_base(runner.base, Kind.BASELINE, tags={"baseline": "base"}), finish=True)
    for task, model in zip(study.tasks if "specialists" in names else [], specialists):
        step = Step.of_action(specialist_action(study, base, task), Kind.BASELINE, 0, model.name, tags={"baseline": f"specialist:{task.name}"})
        runner.produce(step, finish=True)
    if "full" in names:
        full_grid(runner, base, study.all_data, full_setting)
    if "ties_grid" in names:
        if len(specialists) < 2:
            display.log("[yellow]ties_grid skipped: it needs at least two specialists (specialists: true)")
        else:
            ties_grid(runner, base, specialists, grid)


def ties_grid(runner: Runner, base: ModelObject, specialists: list[ModelObject], grid: tuple[float, ...]) -> Produced:
    """TIES merges of all specialists, one optuna GridSampler trial (a nested run) per weight vector,
    nested under a `ties_grid` run of the runner's parent."""
    import optuna

    tracker, cfg = runner.tracker, runner.study.cfg
    density = float(cfg.ties.density[0])
    grid_run = tracker.start_child(runner.parent, Kind.BASELINE_GROUP, 0, "ties_grid", {"baseline": "ties_grid"}, experiment_id=runner.experiment_id)
    runner = runner.under(grid_run)
    space = {m.name: list(grid) for m in specialists}
    trials: dict[int, Produced] = {}

    def objective(trial: optuna.Trial) -> float:
        vector = {m.name: trial.suggest_categorical(m.name, space[m.name]) for m in specialists}
        produced = runner.produce(Step(
            Kind.BASELINE, trial.number, f"ties_grid_{trial.number}",
            fingerprint("ties_many", [m.fingerprint for m in specialists], vector, density, cfg.seed),
            f"ties({', '.join(m.name for m in specialists)}; weights={[vector[m.name] for m in specialists]})",
            [base, *specialists], lambda ctx: _merge_all(ctx, base, specialists, vector, density),
            params={f"weight.{k}": v for k, v in vector.items()} | {"density": density},
            tags={"baseline": "ties_grid", "trial": str(trial.number)},
        ), finish=True)
        trials[trial.number] = produced
        return produced.model.score if produced.model and produced.model.score is not None else float("-inf")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = optuna.create_study(direction="maximize", sampler=optuna.samplers.GridSampler(space, seed=cfg.seed))
    search.optimize(objective, n_trials=len(list(itertools.product(*space.values()))))
    best = trials[search.best_trial.number]
    tracker.log(best.run_id, tags={"best_trial": "true"})
    tracker.log(grid_run, metrics={"val.score": search.best_value}, params={f"best.weight.{k}": v for k, v in search.best_params.items()},
                tags={"best_run": best.run_id})
    tracker.finish_child(grid_run, Status.OK)
    runner.display.log(f"ties_grid: best of {len(trials)} trials is {best.model.pipeline if best.model else '?'} with val.score {search.best_value:.3f}")
    return best


def full_grid(runner: Runner, base: ModelObject, data, setting: tuple[float, float] | None = None,
              widenings: int = FULL_MAX_WIDENINGS) -> Produced:
    """Full fine-tuning, fairly tuned: SFT of the base on all candidate data for each of the study's
    learning rates x (epochs x each of FULL_EPOCH_FACTORS), one nested trial run each under a `full`
    run; the best on the validation split is tagged, so a search cannot win by merely training longer.
    Each learning rate whose best trial is at its longest edge is tried again at twice the epochs, at
    its shortest edge at half (at most `widenings` rounds): an under- or over-trained baseline is no
    baseline, also at the rate that lost at the first lengths. `setting` (learning rate, epochs): that
    single trial, not widened."""
    tracker, study = runner.tracker, runner.study
    settings = study.cfg.sft.fixed()  # the grid tunes the epochs itself, from the study's first
    grid_run = tracker.start_child(runner.parent, Kind.BASELINE_GROUP, 0, "full", {"baseline": "full"}, experiment_id=runner.experiment_id)
    runner = runner.under(grid_run)
    grid: list[tuple[Produced, float, float]] = []  # (trial, learning rate, epochs)

    def trial(rate: float, epochs: float) -> None:
        number = len(grid)
        action = full_trial_action(study, base, data, rate, epochs)
        step = Step.of_action(action, Kind.BASELINE, number, f"full_{number}",
                              tags={"baseline": "full", "trial": str(number), "settings": json.dumps({"epochs": epochs})})
        step.params["epochs"] = epochs
        grid.append((runner.produce(step, finish=True), rate, epochs))

    def scores() -> list[tuple[float | None, float, float]]:
        return [(t.model.score if t.model else None, rate, epochs) for t, rate, epochs in grid]

    planned = [setting] if setting else list(itertools.product(settings.learning_rate, [float(settings.epochs) * f for f in FULL_EPOCH_FACTORS]))
    for rate, epochs in planned:
        trial(rate, epochs)
    for _ in range(0 if setting else widenings):
        if not (wider := widening(scores())):
            break
        for rate, epochs in wider:
            longest = max(e for _, r, e in scores() if r == rate)
            edge, at = ("longest", epochs / 2) if epochs > longest else ("shortest", epochs * 2)
            runner.display.log(f"[yellow]full fine-tuning's best trial at learning rate {rate:g} trained {edge} ({at:g} epochs, "
                               f"the edge): widening the grid to {epochs:g} epochs at that rate[/]")
            trial(rate, epochs)
    if (index := best_trial(scores())) is None:
        tracker.finish_child(grid_run, Status.FAILED)
        raise UserError("full fine-tuning failed in every trial of its grid; see the trial runs")
    chosen = grid[index][0]
    tracker.log(chosen.run_id, tags={"best_trial": "true"})
    tracker.log(grid_run, metrics={"val.score": chosen.model.score},
                params={"grid.learning_rate": sorted({rate for _, rate, _ in grid}), "grid.epochs": sorted({epochs for _, _, epochs in grid})},
                tags={"best_run": chosen.run_id})
    tracker.finish_child(grid_run, Status.OK)
    lines = ", ".join(f"{t.model.pipeline if t.model else '?'} epochs={epochs:g}: {t.model.score:.3f}"
                      if t.model and t.model.score is not None else "failed" for t, _, epochs in grid)
    runner.display.log(f"full fine-tuning grid ({len(grid)} trials on {data.describe()}): {lines}; best val.score {chosen.model.score:.3f}")
    if not setting and (warning := unsettled(scores(), index, widenings)):
        runner.display.log(f"[yellow]{warning}[/]")
    if not setting and (hint := longer_training_hint(grid[index][2], study.cfg.sft.epochs)):
        runner.display.log(f"[yellow]{hint}[/]")
    return chosen


def full_trial_action(study: Study, base: ModelObject, data, rate: float, epochs: float) -> Action:
    """One trial of the full fine-tuning grid: SFT of the base on `data` at `rate` for `epochs`, at the
    study's training seed; the epochs are a fixed setting (the fingerprint of a study that fixes them,
    whether or not the study offers the search a choice of them)."""
    action = Action(ACTION_TYPES["sft"](study.cfg.sft.fixed()), {"model": base, "dataset": data, "learning_rate": rate}, study.train_seed)
    return action.with_settings({"epochs": epochs})


def longer_training_hint(chosen_epochs: float, study_epochs) -> str | None:
    """What to tell a user whose tuned full fine-tuning trained at least twice as long as any fine-tune
    the search may make: the search reaches that length only by chaining fine-tunes, which some of its
    seeds do and others do not (docs/actions.md: offering the length as a choice)."""
    choices = [float(e) for e in study_epochs] if isinstance(study_epochs, (list, tuple)) else [float(study_epochs)]
    if chosen_epochs < 2 * max(choices):
        return None
    offered = ",".join(f"{e:g}" for e in [*choices, chosen_epochs])
    return (f"full fine-tuning chose {chosen_epochs:g} epochs, {chosen_epochs / max(choices):g} times the longest fine-tune the search "
            f"may make ({max(choices):g}): the search reaches that length only by chaining fine-tunes; to offer it in one action, "
            f"list it: sft.epochs=[{offered}]")


def full_trials(tracker: Tracker, group: str, experiment_id: str) -> list[Record]:
    """The trials of a baselines run's full fine-tuning grid, in the order they ran."""
    grids = [r for r in tracker.children(group, experiment_id) if r.kind == Kind.BASELINE_GROUP and r.name == "full"]
    return [r for g in grids for r in tracker.children(g.run_id, experiment_id) if r.kind == Kind.BASELINE]


def chosen_trial(trials: list[Record]) -> Record | None:
    """The trial full fine-tuning chose: the best on validation (the first of equals)."""
    index = best_trial([(r.score if r.done else None, 0.0, 0.0) for r in trials])
    return None if index is None else trials[index]


def best_trial(trials: list[tuple[float | None, float, float]]) -> int | None:
    """The index of the best of (val score or None, learning rate, epochs) trials, the first of
    equals; None when none was scored."""
    scored = [i for i, trial in enumerate(trials) if trial[0] is not None]
    return max(scored, key=lambda i: trials[i][0]) if scored else None


def widening(trials: list[tuple[float | None, float, float]]) -> list[tuple[float, float]]:
    """The next trials of a grid, one per learning rate whose best trial sits at an edge of that rate's
    trials: twice the epochs when it trained longest, half when it trained shortest (over-trained is as
    unfair as under-trained: data that contradict a target hurt more with every pass); none when every
    rate's best is inside its trials. A rate that lost to another at the first lengths may win longer
    (a lower rate still rising at the edge)."""
    found = []
    for rate in dict.fromkeys(r for _, r, _ in trials):
        own = [t for t in trials if t[1] == rate]
        if (best := best_trial(own)) is None:
            continue
        epochs, lengths = own[best][2], [e for _, _, e in own]
        if epochs == max(lengths):
            found.append((rate, 2 * epochs))
        elif epochs == min(lengths):
            found.append((rate, epochs / 2))
    return found


def unsettled(trials: list[tuple[float | None, float, float]], chosen: int, widenings: int) -> str | None:
    """What to tell a user whose chosen trial still sits at an edge of its own learning rate's trials
    after the grid's widenings (another rate may have been widened further); None when it is inside."""
    rate = trials[chosen][1]
    if not any(r == rate for r, _ in widening(trials)):
        return None
    lengths = [epochs for _, r, epochs in trials if r == rate]
    if trials[chosen][2] == max(lengths):
        return (f"full fine-tuning's best trial still trained longest ({max(lengths):g} epochs, after {widenings} widenings): it may be "
                f"under-trained, and a search that beats it may only train longer (widen the grid with sft.epochs={max(lengths):g})")
    return (f"full fine-tuning's best trial still trained shortest ({min(lengths):g} epochs, after {widenings} widenings): it may be "
            f"over-trained (narrow the grid with sft.epochs={min(lengths):g})")


def _merge_all(ctx: ActionContext, base: ModelObject, models: list[ModelObject], weights: dict[str, float], density: float):
    config = {
        "merge_method": "ties",
        "base_model": ctx.model_ref(base),
        "models": [{"model": ctx.model_ref(m), "parameters": {"weight": weights[m.name], "density": density}} for m in models],
        "parameters": {"normalize": True},
        "dtype": "float32",
    }
    return run_mergekit(config, ctx)


def _exploration_baseline(name: str, study_name: str, overrides: list[str], cfg, tracker: Tracker, display: Display) -> str:
    """An exploration with the agent's budget: the random policy, or merges only."""
    from lamdagent.exploration.loop import start_or_resume

    if name == "random_policy":
        extra = ["agent.policy=random"]
    else:
        merges = [a for a in cfg.actions if a in MERGE_TYPES]
        if not merges:
            display.log(f"[yellow]merges_only skipped: study {cfg.name!r} has no merge action type")
            return ""
        extra = [f"actions=[{','.join(merges)}]"]
    display.log(f"[bold]{name}[/]: an exploration of {cfg.iterations} iterations with {' '.join(extra)}")
    run_id, _, _ = start_or_resume(study_name, [*overrides, *extra], None, tracker, display, tags={"baseline": name})
    return run_id
