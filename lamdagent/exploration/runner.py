"""Runs one model-producing step as a nested MLflow run: reuse by fingerprint, or build, measure,
evaluate on the validation split, and register the model."""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lamdagent.actions import ActionContext, ActionOutput
from lamdagent.console import Display
from lamdagent.errors import ActionFailed
from lamdagent.evaluation.evaluator import evaluate, weighted_score
from lamdagent.exploration import heap
from lamdagent.exploration.cost import CostMeter, load_notice
from lamdagent.exploration.presenting import Presenter, step_label, training_data, validation_data
from lamdagent.exploration.study import Study
from lamdagent.faults import checkpoint
from lamdagent.files import cache_dir
from lamdagent.journal import models_from_records
from lamdagent.models.flops import FlopCount, counting
from lamdagent.models.folders import architecture, load_model
from lamdagent.space import TRAINING_DATA, Action, ModelObject
from lamdagent.tracking import Kind, Record, Status, Tracker, WeightsFreed, traces
from lamdagent.tracking.models import Measured
from lamdagent.tracking.outage import TrackingOutage


@dataclass
class Produced:
    run_id: str
    model: ModelObject | None  # None when the step failed
    status: Status
    error: str = ""
    seconds: float | None = None  # what producing it took here: building or reusing, evaluating, logging
    compute_seconds: float | None = None  # what producing it costs without the cache (a reused model: its source's)
    compute_flops: float | None = None  # the same in floating-point operations (models/flops.py): what load does not inflate


@dataclass(frozen=True)
class BaseModel:
    """The study's base model: its folder and fingerprint (the root of every lineage)."""

    path: Path
    fingerprint: str
    source: str  # the study's `base_model` reference
    digest: str  # the sha256 of its model files (models/digest.py), part of the fingerprint

    def build(self, ctx: ActionContext) -> ActionOutput:
        """The base model copied into a run's working folder."""
        shutil.copytree(self.path, ctx.out_dir / "model")
        return ActionOutput(ctx.out_dir / "model")


@dataclass
class Step:
    """One model-producing step: what its nested run records, and how its model is built."""

    kind: Kind
    iteration: int
    name: str
    fingerprint: str
    pipeline: str
    inputs: list[ModelObject]
    build: Callable[[ActionContext], ActionOutput]
    params: dict = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    datasets: list = field(default_factory=list)  # the training data it binds (recorded as MLflow dataset inputs)
    seed: int | None = None  # its training randomness (the action's seed); None: the study's

    @property
    def label(self) -> str:
        """Its node's label in a pipeline drawing, e.g. `sft(all, lr=0.003)`."""
        return step_label(self.tags.get("action_type", ""), json.loads(self.tags.get("action", "{}")))

    @classmethod
    def of_action(cls, action: Action, kind: Kind, iteration: int, name: str, tags: dict[str, str] | None = None) -> Step:
        """The step that runs an action of the space (the one place a step is made from an Action)."""
        return cls(kind, iteration, name, action.fingerprint, action.pipeline(), list(action.models),
                   lambda ctx: action.type.run(action.bindings, ctx), dict(action.hparams),
                   {"action_type": action.type.name, "action": json.dumps(action.names()), **(tags or {})},
                   [v for v in action.bindings.values() if isinstance(v, TRAINING_DATA)], action.seed)

    @classmethod
    def of_base(cls, base: BaseModel, kind: Kind, tags: dict[str, str] | None = None, iteration: int = 0, name: str = "base") -> Step:
        """The step that copies the base model into a run."""
        return cls(kind, iteration, name, base.fingerprint, "base", [], base.build, {},
                   {"source": base.source, "base_digest": base.digest, **(tags or {})})


class Runner:
    """Runs one model-producing step as a nested run of `parent`: reuse by fingerprint, or build,
    evaluate on the validation split, and register the model. `weights` (w_t) score the models;
    None until the initial models are scored (with_weights gives the runner that scores)."""

    def __init__(self, study: Study, tracker: Tracker, parent: str, experiment_id: str, display: Display, *, base: BaseModel,
                 weights: dict[str, float] | None = None):
        self.study, self.tracker, self.parent, self.experiment_id, self.display = study, tracker, parent, experiment_id, display
        self.base, self.weights = base, weights
        self.presenter = Presenter(tracker, experiment_id)  # drawings and descriptions of the models' runs
        self.registered: dict[str, dict[str, str]] = {}  # run id -> the registry version of a model made here (shared by copies)

    def with_weights(self, weights: dict[str, float]) -> Runner:
        """This runner, scoring models with the task weights `weights`."""
        other = copy.copy(self)
        other.weights = weights
        return other

    def under(self, parent: str) -> Runner:
        """This runner, nesting its runs under another parent run."""
        other = copy.copy(self)
        other.parent = parent
        return other

    def context(self, work: Path, on_step: Callable[[int, int], None] | None = None, seed: int | None = None) -> ActionContext:
        """What an action runs with: its working folder, its seed (default: the study's), the base and settings."""
        cfg = self.study.cfg
        return ActionContext(work, cfg.seed if seed is None else seed, self.base.path, on_step=on_step, resolve=self.resolve, chat_template=cfg.chat_template,
                             launch=cfg.training)

    def resolve(self, model: ModelObject) -> Path:
        if model.path is None:
            try:
                model.path = self.tracker.model_dir(model.model_id)
            except WeightsFreed:
                model.path = self.rebuild(model)
        return model.path

    def rebuild(self, model: ModelObject) -> Path:
        """A model whose weights the retention policy freed, made again by re-running its action
        over its (recursively resolved) inputs into the local cache; seeded, so the same weights."""
        target = cache_dir() / "rebuilt" / model.model_id / "model"
        if (target / "config.json").exists():
            return target
        record = self.tracker.record(model.run_id)
        action = self.study.find_action(model.parents, record.action_type, record.action, model.fingerprint, record.settings) \
            if record.action_type else None
        if action is None:
            raise ActionFailed(f"the weights of {model.name} were freed and its action cannot be replayed in this study")
        self.display.log(f"rebuilding {model.name} = {model.pipeline} (its weights were freed)")
        work = cache_dir() / "work" / f"rebuild-{model.model_id}-{os.getpid()}"
        try:
            output = action.type.run(action.bindings, self.context(work, seed=action.seed))
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            output.model_dir.rename(target)  # whole or not at all
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target

    def produce(self, step: Step, *, reuse: bool = True, run_id: str | None = None, finish: bool = False) -> Produced:
        """The step's model in a nested run. `reuse=False` computes it even when an earlier run
        made the same model; `run_id` is a nested run the caller already started (see `start`),
        else one is started here. `finish`: the run is also ended with its results; else it is
        left open for the caller to finish."""
        started = time.perf_counter()
        run_id = run_id or self.start(step)
        evaluation = self.study.evaluation_keys()
        cached = self.tracker.find_by_fingerprint(self.experiment_id, step.fingerprint, evaluation) if reuse else None
        if cached and cached.run_id != run_id:
            return self._reuse(step, run_id, cached, evaluation, started, finish)
        with counting() as counted:
            return self._build(step, run_id, evaluation, started, finish, counted)

    def _build(self, step: Step, run_id: str, evaluation: dict[str, str], started: float, finish: bool, counted: FlopCount) -> Produced:
        """Build, evaluate and register the step's model in its run; `counted`: the operations of its passes so far."""
        work = cache_dir() / "work" / run_id
        pending: dict[str, float] = {}  # the build's metrics, written with the evaluation's in one batch
        storing = False  # the model is being (or was) stored and registered
        try:
            self.display.step(f"{step.name}: {step.pipeline}")
            ctx = self.context(work, on_step=lambda s, t: self.display.update_step(s, t), seed=step.seed)
            with CostMeter() as cost:
                output = step.build(ctx)
            if notice := load_notice(cost.metrics.get("cost.load_per_core")):
                self.display.log_once("load", f"[yellow]{notice}")
            checkpoint("after_build")
            adapter_base = output.adapter_base
            base_dir = ctx.model_path(adapter_base) if adapter_base else None
            arch = architecture(base_dir or output.model_dir)
            tags = {"arch": arch, **({"adapter_of": adapter_base.run_id} if adapter_base else {})}
            pending = {**output.metrics, **cost.metrics, "model.bytes": _folder_bytes(output.model_dir)}
            scores, val_metrics = self._evaluate(run_id, output.model_dir, base_dir, output.loaded)
            output.loaded = None  # the model's memory is freed before the next action
            score = {"val.score": weighted_score(scores, self.weights)} if self.weights is not None else {}
            checkpoint("before_log_model")
            storing = True
            registered = self.tracker.log_model(
                run_id, self.experiment_id, output.model_dir, self.study.registered_model, step.name,
                tags={"lamdagent.pipeline": step.pipeline, "lamdagent.run_id": run_id},
                move=output.model_dir.is_relative_to(work),
            )
            checkpoint("after_log_model")
            model = ModelObject(step.name, run_id, registered["model_id"], step.fingerprint, step.pipeline, arch, scores, iteration=step.iteration,
                                parents=list(step.inputs), cost_seconds=cost.metrics["cost.seconds"], adapter_base=adapter_base,
                                score=score.get("val.score"))
            measured = self._describe_model(step, model, registered)
            seconds = time.perf_counter() - started
            self.tracker.log(run_id, metrics={**pending, **val_metrics, **score, "step.seconds": seconds, "compute.seconds": seconds,
                                              "compute.flops": counted.total},
                             params=step.params,
                             tags={**tags, **registered, "evaluation": json.dumps(evaluation, sort_keys=True)}, series=output.step_metrics,
                             finish=Status.OK if finish else None, measured=measured)
            return Produced(run_id, model, Status.OK, seconds=seconds, compute_seconds=seconds, compute_flops=counted.total)
        except TrackingOutage:  # not the action's failure: the exploration stops, to resume later
            raise
        except Exception as err:  # a failed action is data: recorded, and the exploration goes on
            message = str(err).splitlines()[0] if str(err) else ""
            error = message if isinstance(err, ActionFailed) else f"{type(err).__name__}: {message}" if message else type(err).__name__
            self.tracker.log_text(run_id, traceback.format_exc(), "error.txt")
            if storing:  # a failed run keeps no (half-)registered model
                self.tracker.discard_models(run_id, self.experiment_id, Status.FAILED)
            seconds = time.perf_counter() - started
            self.tracker.log(run_id, metrics={**pending, "step.seconds": seconds, "compute.seconds": seconds, "compute.flops": counted.total},
                             params=step.params, tags={"error": error[:4000]}, finish=Status.FAILED if finish else None)
            return Produced(run_id, None, Status.FAILED, error, seconds, seconds, counted.total)
        finally:
            self.display.done_step()
            shutil.rmtree(work, ignore_errors=True)
            heap.settle()  # after the first step: the libraries' objects are out of the collector's way

    def _reuse(self, step: Step, run_id: str, cached: Record, evaluation: dict[str, str], started: float, finish: bool) -> Produced:
        """The model of an earlier identical run, in this step's run. Its validation scores are
        reused for the tasks whose definition is unchanged; the others are evaluated again on it."""
        adapter_base = self.model_of_run(cached.adapter_of) if cached.adapter_of else None
        scores = {t: cached.scores[t] for t, key in evaluation.items() if cached.evaluation.get(t) == key and t in cached.scores}
        extra: dict[str, float] = {}
        stale = [task for task in self.study.tasks if task.name not in scores]
        if stale:
            self.display.log(f"{step.name}: re-evaluating the reused model {cached.model_id} on {', '.join(t.name for t in stale)} "
                             "(their definitions changed since it was scored)")
            model_dir = self.tracker.model_dir(cached.model_id)
            fresh, extra = self._evaluate(run_id, model_dir, self.resolve(adapter_base) if adapter_base else None, tasks=stale)
            self.display.done_step()
            scores.update(fresh)
        score = weighted_score(scores, self.weights) if self.weights is not None else None
        model = ModelObject(step.name, run_id, cached.model_id, step.fingerprint, step.pipeline, cached.arch, scores, score,
                            iteration=step.iteration, parents=list(step.inputs), cost_seconds=cached.model_cost_seconds, adapter_base=adapter_base)
        self.presenter.labels[run_id] = step.label
        self.tracker.models.note(run_id, self.presenter.describe(model, source_run=cached.source_run or cached.run_id))
        seconds = time.perf_counter() - started
        self.tracker.log(
            run_id,
            metrics={**extra, **{f"val.{t}": v for t, v in scores.items()}, "cost.seconds": seconds, "step.seconds": seconds,
                     **({"val.score": score} if score is not None else {}),
                     **({"model.cost_seconds": cached.model_cost_seconds} if cached.model_cost_seconds is not None else {}),
                     **({"compute.seconds": cached.compute_seconds} if cached.compute_seconds is not None else {}),
                     **({"compute.flops": cached.compute_flops} if cached.compute_flops is not None else {})},
            tags={"model_id": cached.model_id, "arch": cached.arch, "source_run": cached.source_run or cached.run_id,
                  "evaluation": json.dumps(evaluation, sort_keys=True), **({"adapter_of": cached.adapter_of} if cached.adapter_of else {})},
            params=step.params, finish=Status.CACHED if finish else None,
        )
        return Produced(run_id, model, Status.CACHED, seconds=seconds, compute_seconds=cached.compute_seconds, compute_flops=cached.compute_flops)

    def start(self, step: Step, tags: dict[str, str] | None = None) -> str:
        """The nested run of a step, tagged with its identity and lineage (and `tags`)."""
        all_tags = {"fingerprint": step.fingerprint, "pipeline": step.pipeline, "inputs": json.dumps([m.run_id for m in step.inputs]),
                    **step.tags, **(tags or {})}
        return self.tracker.start_child(self.parent, step.kind, step.iteration, step.name, all_tags, experiment_id=self.experiment_id)

    def log_score(self, model: ModelObject) -> ModelObject:
        """The model's weighted score, computed and logged on its run (and its LoggedModel's, when
        the model was made here: then its drawing, description and registry score follow)."""
        if self.weights is not None:
            model.score = weighted_score(model.scores, self.weights)
            made = model.run_id in self.registered
            measured = Measured(model.model_id, {"val.score": validation_data(self.study)}) if made else None
            self.tracker.log(model.run_id, metrics={"val.score": model.score}, measured=measured)
            if made:
                self._present(model)
        return model

    def _describe_model(self, step: Step, model: ModelObject, registered: dict[str, str]) -> Measured:
        """The new LoggedModel's params and its run's inputs (training data, validation data, input
        models); once scored, its drawing, description and registry score. Which metrics are the model's."""
        self.presenter.labels[model.run_id] = step.label
        self.registered[model.run_id] = registered
        val = validation_data(self.study)
        params = {"action_type": step.tags.get("action_type", "base"), **json.loads(step.tags.get("action", "{}")),
                  **{k: str(v) for k, v in step.params.items()}, **({"source": step.tags["source"]} if "source" in step.tags else {}),
                  "pipeline": step.pipeline}
        training = training_data(step.datasets)
        self.tracker.models.describe(model.run_id, model.model_id, params, training, [val], [m.model_id for m in step.inputs])
        if model.score is not None:
            self._present(model)
        measured_on = {**dict.fromkeys([f"val.{t}" for t in model.scores] + ["val.score"], val), **({"train.loss": training[0]} if training else {})}
        return Measured(model.model_id, measured_on)

    def _present(self, model: ModelObject) -> None:
        """A scored model made here: its pipeline drawing and description on its run; its registry
        version's score, and the study's `best` alias when it is the best."""
        self.presenter.draw_later(model)  # in the background: off the action's path
        registered = self.registered.get(model.run_id)
        self.tracker.models.note(model.run_id, self.presenter.describe(model, registered), model.model_id if registered else "")
        if registered and model.score is not None:
            self.tracker.models.score_version(registered["registered_model"], registered["model_version"], model.score, model.pipeline,
                                              f"run {model.name} ({model.run_id})")

    def model_of_run(self, run_id: str) -> ModelObject:
        """The model object of any successful run of the store (e.g. the base of a reused adapter)."""
        return models_from_records([self.tracker.record(run_id)], fetch=self.model_of_run)[0]

    def _evaluate(self, run_id: str, model_dir: Path, adapter_base: Path | None, loaded: tuple | None = None,
                  tasks: list | None = None) -> tuple[dict, dict]:
        """Scores on the validation split (of the study's tasks, or `tasks`) and their metrics; the
        predictions are logged. `loaded` is the model still in memory after training (no reload)."""
        cfg = self.study.cfg
        tasks = self.study.tasks if tasks is None else tasks
        generate = model = tokenizer = None
        if cfg.evaluation.backend == "vllm":
            from lamdagent.evaluation.generation import vllm_generator

            generate = vllm_generator(_merged(model_dir, adapter_base) if adapter_base else model_dir)
        else:
            model, tokenizer = _on_device(loaded) if loaded else load_model(model_dir, adapter_base, for_evaluation=True)
        self.display.step("evaluating on validation", len(tasks) * cfg.data.val_size)
        with traces.linked(run_id, self.experiment_id) if cfg.agent.trace else nullcontext():  # the judge's calls, if any
            result = evaluate(model, tokenizer, tasks, "val", cfg.data.val_size, seed=cfg.seed,
                              batch_size=cfg.evaluation.batch_size, on_progress=self._eval_progress, generate=generate,
                              chat_template=cfg.chat_template)
        unscored = {f"unscored.val.{t}": float(n) for t, n in result.unscored.items() if n}
        self.tracker.log_jsons(run_id, {f"predictions/val/{task}.json": rows for task, rows in result.predictions.items()})
        return result.scores, {**{f"val.{t}": v for t, v in result.scores.items()}, **unscored}

    def _eval_progress(self, n: int) -> None:
        checkpoint("eval")
        self.display.advance_step(n)


def _on_device(loaded: tuple) -> tuple:
    """A model kept in memory after training, as load_model would give it (bf16 on CUDA)."""
    import torch

    model, tokenizer = loaded
    return (model.to(torch.bfloat16), tokenizer) if torch.cuda.is_available() else (model, tokenizer)


def _merged(model_dir: Path, adapter_base: Path) -> Path:
    """A full-weights folder of an adapter over its base, beside the adapter (for vLLM)."""
    model, tokenizer = load_model(model_dir, adapter_base)
    target = Path(model_dir).parent / "merged-for-eval"
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
