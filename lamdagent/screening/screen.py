"""The data screening (multi-fidelity): for each candidate training dataset, a short fine-tune of the
base on a sample of it (`screening.fraction` of its examples, `screening.epochs`, at the study's
smallest learning rate) and the change of the teacher-forced loss on each target task's validation
answers. About one pass over half of each dataset tells which data helps which target, and which
hurts them all. (A few steps at the largest learning rate tell nothing: on `mixed` they raised every
target's loss, the dataset's own target's too.)

Each dataset's screening is a nested run of the exploration (kind `screening`: metrics `screen.<task>`,
`loss.before.<task>`, `loss.after.<task>`, `compute.seconds`), reused by fingerprint across
explorations of the study; the table is logged on the exploration run (`screening/evidence.json`,
an MLflow table) and held by the journal, which the policies read."""

from __future__ import annotations

import dataclasses
import shutil
import time

from lamdagent.actions import ACTION_TYPES
from lamdagent.console import Display
from lamdagent.evaluation.likelihood import target_losses
from lamdagent.files import cache_dir
from lamdagent.journal import Evidence
from lamdagent.space import Action, ModelObject, fingerprint
from lamdagent.space.objects import head
from lamdagent.tracking import Kind, Status
from lamdagent.tracking.outage import TrackingOutage

TABLE = "screening/evidence.json"


def screen(runner, model: ModelObject, display: Display) -> Evidence:
    """The evidence about every candidate dataset of the runner's study, screened from `model` (the
    base); each dataset's run is this exploration's own, another exploration's reused, or made now."""
    study, tracker = runner.study, runner.tracker
    settings = study.cfg.screening
    n = min(settings.val_size, study.cfg.data.val_size)
    rate = min(study.cfg.sft.learning_rate)  # the gentlest: a few steps at the largest overshoot (every target's loss rose, its own data's too)
    identity = [model.fingerprint, rate, settings.fraction, settings.epochs, n, study.evaluation_keys(), study.cfg.sft.lora.enabled]
    own = {r.fingerprint: r for r in tracker.children(runner.parent, runner.experiment_id) if r.kind == Kind.SCREENING and r.done}
    evidence, before = Evidence(screened_from=model.name), None
    for data in study.datasets:
        key = fingerprint("screen", *identity, data.fingerprint)
        record = own.get(key) or tracker.find_screening(runner.experiment_id, key)
        if record is not None:
            if record.run_id not in {r.run_id for r in own.values()}:  # another exploration's: this one records it too
                tracker.start_and_finish(runner.parent, runner.experiment_id, Kind.SCREENING, f"screen_{data.name}",
                                         {"fingerprint": key, "dataset": data.name, "source_run": record.run_id, "screened_from": model.name},
                                         {**{f"screen.{t}": v for t, v in record.screen.items()}, "compute.seconds": record.compute_seconds or 0.0},
                                         Status.CACHED)
            evidence.effects[data.name] = dict(record.screen)
            evidence.seconds += record.compute_seconds or 0.0
            continue
        started = time.perf_counter()
        run_id = tracker.start_child(runner.parent, Kind.SCREENING, 0, f"screen_{data.name}",
                                     {"fingerprint": key, "dataset": data.name, "screened_from": model.name}, experiment_id=runner.experiment_id)
        display.step(f"screening {data.name} ({settings.fraction:g} of it, {settings.epochs:g} epoch)")
        try:
            if before is None:
                before = _losses(runner, _loaded(runner, model), n)
            after = _losses(runner, _fine_tuned(runner, model, head(data, settings.fraction), rate, run_id), n)
        except TrackingOutage:
            raise
        except Exception as err:  # a dataset that cannot be screened is tried blind, as without screening
            tracker.log(run_id, tags={"error": f"{type(err).__name__}: {err}"[:4000]}, finish=Status.FAILED)
            display.log(f"[yellow]screening {data.name} failed ({type(err).__name__}: {err}); it is tried without evidence")
            continue
        finally:
            display.done_step()
        effects = {t: before[t] - after[t] for t in before}
        seconds = time.perf_counter() - started
        tracker.log(run_id, metrics={**{f"screen.{t}": v for t, v in effects.items()}, **{f"loss.before.{t}": v for t, v in before.items()},
                                     **{f"loss.after.{t}": v for t, v in after.items()}, "compute.seconds": seconds}, finish=Status.OK)
        evidence.effects[data.name], evidence.seconds = effects, evidence.seconds + seconds
    if evidence:
        tracker.log_table(runner.parent, {"dataset": list(evidence.effects),
                                          **{t: [e[t] for e in evidence.effects.values()] for t in study.task_names}}, TABLE)
        display.log(f"data screening ({evidence.seconds:.0f} s; loss drop on each target's validation answers, > 0 helps):\n{evidence.table()}")
    return evidence


def _loaded(runner, model: ModelObject):
    from lamdagent.models.folders import load_model

    base = runner.resolve(model.adapter_base) if model.adapter_base is not None else None
    return load_model(runner.resolve(model), base, for_evaluation=True)


def _fine_tuned(runner, model: ModelObject, data, rate: float, run_id: str):
    """(model, tokenizer) after the short fine-tune of `model` on `data` (its folder is discarded)."""
    study = runner.study
    sft = ACTION_TYPES["sft"](dataclasses.replace(study.cfg.sft, epochs=study.cfg.screening.epochs))
    action = Action(sft, {"model": model, "dataset": data, "learning_rate": rate}, study.train_seed)
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
