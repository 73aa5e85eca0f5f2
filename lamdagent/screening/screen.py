"""The data screening (multi-fidelity): for each candidate training dataset, a short fine-tune of the
base on a sample of it (`screening.fraction` of its examples, `screening.epochs`, at the study's
smallest learning rate) and the change of the teacher-forced loss on each target task's validation
answers. About one pass over half of each dataset tells which data helps which target, and which
hurts them all. (A few steps at the largest learning rate tell nothing: on `mixed` they raised every
target's loss, the dataset's own target's too.)

Each dataset's screening is a nested run of the exploration (kind `screening`: metrics `screen.<task>`,
`loss.before.<task>`, `loss.after.<task>`, `compute.seconds`), reused by fingerprint across
explorations of the study; the table is logged on the exploration run (`screening/evidence.json`,
an MLflow table) and held by the journal, which the policies read.

With `screening.repeats` = k each dataset is screened k times, repeat r on the data drawn at
train_seed + r (another sample, another order; run `screen_<dataset>_<r>`): the table holds each
effect's mean over the repeats and its min and max, and an effect whose repeats disagree in sign
bears no verdict (journal/evidence.py)."""

from __future__ import annotations

import dataclasses
import shutil
import time

from lamdagent.actions import ACTION_TYPES
from lamdagent.console import Display
from lamdagent.evaluation.likelihood import target_losses
from lamdagent.files import cache_dir
from lamdagent.journal import Evidence
from lamdagent.models import flops
from lamdagent.space import Action, ModelObject, fingerprint
from lamdagent.space.objects import head, reseeded
from lamdagent.tracking import Kind, Status
from lamdagent.tracking.outage import TrackingOutage

TABLE = "screening/evidence.json"


def screen(runner, model: ModelObject, display: Display) -> Evidence:
    """The evidence about every candidate dataset of the runner's study, screened from `model` (the
    base) `screening.repeats` times; each short fine-tune's run is this exploration's own, another
    exploration's reused, or made now."""
    study, settings = runner.study, runner.study.cfg.screening
    n = min(settings.val_size, study.cfg.data.val_size)
    rate = min(study.cfg.sft.learning_rate)  # the gentlest: a few steps at the largest overshoot (every target's loss rose, its own data's too)
    identity = [model.fingerprint, rate, settings.fraction, settings.epochs, n, study.evaluation_keys(), study.cfg.sft.lora.enabled]
    own = {r.fingerprint: r for r in runner.tracker.children(runner.parent, runner.experiment_id) if r.kind == Kind.SCREENING and r.done}
    samples: dict[str, dict[str, list[float]]] = {}
    seconds, losses = 0.0, _Losses(runner, model, n)
    for data in study.datasets:
        for repeat in range(settings.repeats):
            seed = study.train_seed + repeat  # repeat 0 is the screening of one repeat: the search's own sample and order
            sample = reseeded(data, seed)
            measured = _screened(runner, own, losses, sample, seed, rate, fingerprint("screen", *identity, sample.fingerprint),
                                 _run_name(data.name, repeat), display)
            if measured is None:  # a dataset that cannot be screened is tried blind, as without screening
                samples.pop(data.name, None)
                break
            effects, spent = measured
            seconds += spent
            for task, value in effects.items():
                samples.setdefault(data.name, {}).setdefault(task, []).append(value)
    evidence = Evidence.of_repeats(samples, seconds, model.name)
    if evidence:
        columns = {t: [e[t] for e in evidence.effects.values()] for t in study.task_names}
        if settings.repeats > 1:
            for t in study.task_names:
                columns[f"{t}.min"] = [min(samples[d][t]) for d in evidence.effects]
                columns[f"{t}.max"] = [max(samples[d][t]) for d in evidence.effects]
        runner.tracker.log_table(runner.parent, {"dataset": list(evidence.effects), **columns}, TABLE)
        repeated = f", {settings.repeats} repeats each" if settings.repeats > 1 else ""
        display.log(f"data screening ({evidence.seconds:.0f} s{repeated}; loss drop on each target's validation answers, > 0 helps):\n"
                    f"{evidence.table()}")
    return evidence


def _screened(runner, own: dict, losses: _Losses, data, seed: int, rate: float, key: str, name: str,
              display: Display) -> tuple[dict[str, float], float] | None:
    """(effect per task, compute seconds) of one short fine-tune on `data` at `seed`: this exploration's
    run, another exploration's (recorded here too), or measured now; None when it failed."""
    tracker, settings = runner.tracker, runner.study.cfg.screening
    tags = {"fingerprint": key, "dataset": data.name, "screened_from": losses.model.name, "seed": str(seed)}
    record = own.get(key) or tracker.find_screening(runner.experiment_id, key)
    if record is not None:
        if record.run_id not in {r.run_id for r in own.values()}:  # another exploration's: this one records it too
            tracker.start_and_finish(runner.parent, runner.experiment_id, Kind.SCREENING, name, {**tags, "source_run": record.run_id},
                                     {**{f"screen.{t}": v for t, v in record.screen.items()}, "compute.seconds": record.compute_seconds or 0.0,
                                      **({"compute.flops": record.compute_flops} if record.compute_flops is not None else {})},
                                     Status.CACHED)
        return dict(record.screen), record.compute_seconds or 0.0
    started = time.perf_counter()
    run_id = tracker.start_child(runner.parent, Kind.SCREENING, 0, name, tags, experiment_id=runner.experiment_id)
    display.step(f"screening {data.name} ({settings.fraction:g} of it, {settings.epochs:g} epoch, seed {seed})")
    try:
        with flops.counting() as counted:
            before = losses.before()
            after = _losses(runner, _fine_tuned(runner, losses.model, head(data, settings.fraction), rate, seed, run_id), losses.n)
    except TrackingOutage:
        raise
    except Exception as err:
        tracker.log(run_id, metrics={"compute.seconds": time.perf_counter() - started, "compute.flops": counted.total},
                    tags={"error": f"{type(err).__name__}: {err}"[:4000]}, finish=Status.FAILED)
        display.log(f"[yellow]screening {data.name} failed ({type(err).__name__}: {err}); it is tried without evidence")
        return None
    finally:
        display.done_step()
    effects = {t: before[t] - after[t] for t in before}
    seconds = time.perf_counter() - started
    tracker.log(run_id, metrics={**{f"screen.{t}": v for t, v in effects.items()}, **{f"loss.before.{t}": v for t, v in before.items()},
                                 **{f"loss.after.{t}": v for t, v in after.items()}, "compute.seconds": seconds,
                                 "compute.flops": counted.total}, finish=Status.OK)
    return effects, seconds


def _run_name(dataset: str, repeat: int) -> str:
    return f"screen_{dataset}" + (f"_{repeat}" if repeat else "")


def recorded_evidence(records: list, datasets: list[str], repeats: int) -> Evidence:
    """The evidence an exploration read, from its screening runs alone (no compute, nothing logged):
    each dataset's effects over its `repeats`, found by the run names `screen` gives them. As in
    `screen`, a dataset counts only when every repeat was measured (one failed: tried blind)."""
    names = {_run_name(d, r): d for d in datasets for r in range(repeats)}
    measured = {r.name: r.screen for r in records if r.kind == Kind.SCREENING and r.done and r.screen and r.name in names}
    samples: dict[str, dict[str, list[float]]] = {}
    for dataset in datasets:
        runs = [measured.get(_run_name(dataset, r)) for r in range(repeats)]
        if all(runs):
            for effects in runs:
                for task, value in effects.items():
                    samples.setdefault(dataset, {}).setdefault(task, []).append(value)
    return Evidence.of_repeats(samples)


class _Losses:
    """The screened-from model's losses on the targets' validation answers, measured once when first needed."""

    def __init__(self, runner, model: ModelObject, n: int):
        self.runner, self.model, self.n, self._before = runner, model, n, None

    def before(self) -> dict[str, float]:
        if self._before is None:
            self._before = _losses(self.runner, _loaded(self.runner, self.model), self.n)
        return self._before


def _loaded(runner, model: ModelObject):
    from lamdagent.models.folders import load_model

    base = runner.resolve(model.adapter_base) if model.adapter_base is not None else None
    return load_model(runner.resolve(model), base, for_evaluation=True)


def _fine_tuned(runner, model: ModelObject, data, rate: float, seed: int, run_id: str):
    """(model, tokenizer) after the short fine-tune of `model` on `data` at `seed` (its folder is discarded)."""
    study = runner.study
    sft = ACTION_TYPES["sft"](dataclasses.replace(study.cfg.sft, epochs=study.cfg.screening.epochs))
    action = Action(sft, {"model": model, "dataset": data, "learning_rate": rate}, seed)
    work = cache_dir() / "work" / run_id
    try:
        output = action.type.run(action.bindings, runner.context(work, seed=action.seed))
        if output.loaded is not None:
            return output.loaded
        from lamdagent.models.folders import load_model

        base = runner.resolve(output.adapter_base) if output.adapter_base is not None else None
        return load_model(output.model_dir, base, for_evaluation=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _losses(runner, loaded: tuple, n: int) -> dict[str, float]:
    model, tokenizer = loaded
    cfg = runner.study.cfg
    return target_losses(model, tokenizer, runner.study.tasks, "val", n, cfg.seed, cfg.chat_template)
