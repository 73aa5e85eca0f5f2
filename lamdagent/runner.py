"""Runs one model-producing step as a nested MLflow run: reuse by fingerprint, or build, measure,
evaluate on the validation split, and register the model."""

from __future__ import annotations

import json
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lamdagent import tracking as tr
from lamdagent.actions import ActionContext, ActionOutput
from lamdagent.cost import CostMeter
from lamdagent.errors import ActionFailed
from lamdagent.evaluation.evaluator import evaluate, weighted_score
from lamdagent.models import architecture, load_model
from lamdagent.paths import cache_dir
from lamdagent.progress import Display
from lamdagent.space import ModelObject
from lamdagent.study import Study
from lamdagent.tracking import Record, Tracker


@dataclass
class Produced:
    run_id: str
    model: ModelObject | None  # None when the step failed
    status: str
    error: str = ""


class Runner:
    """Runs one model-producing step as a nested run: reuse by fingerprint, or build, evaluate on
    the validation split, and register the model. The run is left open for the caller to finish."""

    def __init__(self, study: Study, tracker: Tracker, parent: str, experiment_id: str, display: Display):
        self.study, self.tracker, self.parent, self.experiment_id, self.display = study, tracker, parent, experiment_id, display
        self.base_dir: Path | None = None
        self.weights: dict[str, float] | None = None

    def resolve(self, model: ModelObject) -> Path:
        if model.path is None:
            model.path = self.tracker.model_dir(model.model_id)
        return model.path

    def produce(
        self,
        *,
        kind: str,
        iteration: int,
        name: str,
        fp: str,
        pipeline: str,
        inputs: list[ModelObject],
        build: Callable[[ActionContext], ActionOutput],
        tags: dict[str, str] | None = None,
        params: dict | None = None,
    ) -> Produced:
        started = time.perf_counter()
        all_tags = {"fingerprint": fp, "pipeline": pipeline, "inputs": json.dumps([m.run_id for m in inputs]), **(tags or {})}
        run_id = self.tracker.start_child(self.parent, kind, iteration, name, all_tags)
        self.tracker.log(run_id, params=params)
        cached = self.tracker.find_by_fingerprint(self.experiment_id, fp)
        if cached and cached.run_id != run_id and cached.model_id:
            adapter_tag = {"adapter_of": cached.adapter_of} if cached.adapter_of else {}
            self.tracker.log(
                run_id,
                metrics={**{f"val.{t}": v for t, v in cached.scores.items()}, "cost.seconds": time.perf_counter() - started},
                tags={"model_id": cached.model_id, "arch": cached.arch, "source_run": cached.run_id, **adapter_tag},
            )
            model = ModelObject(name, run_id, cached.model_id, fp, pipeline, cached.arch, dict(cached.scores), iteration=iteration,
                                parents=list(inputs), adapter_base=self.model_of_run(cached.adapter_of) if cached.adapter_of else None)
            return Produced(run_id, self._with_score(run_id, model), tr.CACHED)
        work = cache_dir() / "work" / run_id
        try:
            self.display.step(f"{name}: {pipeline}")
            ctx = ActionContext(work, self.study.cfg.seed, self.base_dir, on_step=lambda s, t: self.display.update_step(s, t),
                                resolve=self.resolve)
            with CostMeter() as cost:
                output = build(ctx)
            adapter_base = output.adapter_base
            base_dir = ctx.model_path(adapter_base) if adapter_base else None
            arch = architecture(base_dir or output.model_dir)
            tags = {"arch": arch, **({"adapter_of": adapter_base.run_id} if adapter_base else {})}
            self.tracker.log(run_id, metrics={**output.metrics, **cost.metrics, "model.bytes": _folder_bytes(output.model_dir)}, tags=tags)
            self.tracker.log_series(run_id, output.step_metrics)
            scores = self._evaluate(run_id, output.model_dir, base_dir)
            model_id, _ = self.tracker.log_model(
                run_id, self.experiment_id, output.model_dir, self.study.registered_model, name,
                tags={tag: value for tag, value in (("lamdagent.pipeline", pipeline), ("lamdagent.run_id", run_id))},
            )
            model = ModelObject(name, run_id, model_id, fp, pipeline, arch, scores, iteration=iteration, parents=list(inputs),
                                cost_seconds=cost.metrics["cost.seconds"], adapter_base=adapter_base)
            return Produced(run_id, self._with_score(run_id, model), tr.OK)
        except Exception as err:  # a failed action is data: recorded, and the exploration goes on
            message = str(err).splitlines()[0] if str(err) else ""
            error = message if isinstance(err, ActionFailed) else f"{type(err).__name__}: {message}"
            self.tracker.log_text(run_id, traceback.format_exc(), "error.txt")
            self.tracker.log(run_id, tags={"error": error[:4000]})
            return Produced(run_id, None, tr.FAILED, error)
        finally:
            self.display.done_step()
            shutil.rmtree(work, ignore_errors=True)

    def model_of_run(self, run_id: str) -> ModelObject:
        """The model object of any successful run of the store (e.g. the base of a reused adapter)."""
        return models_from_records([self.tracker.record(run_id)], fetch=self.model_of_run)[0]

    def _evaluate(self, run_id: str, model_dir: Path, adapter_base: Path | None) -> dict[str, float]:
        cfg = self.study.cfg
        model, tokenizer = load_model(model_dir, adapter_base)
        total = len(self.study.tasks) * cfg.data.val_size
        self.display.step("evaluating on validation", total)
        result = evaluate(model, tokenizer, self.study.tasks, "val", cfg.data.val_size, seed=cfg.seed,
                          batch_size=cfg.evaluation.batch_size, on_progress=self.display.advance_step)
        unscored = {f"unscored.val.{t}": float(n) for t, n in result.unscored.items() if n}
        self.tracker.log(run_id, metrics={**{f"val.{t}": v for t, v in result.scores.items()}, **unscored})
        for task, rows in result.predictions.items():
            self.tracker.log_json(run_id, rows, f"predictions/val/{task}.json")
        return result.scores

    def _with_score(self, run_id: str, model: ModelObject) -> ModelObject:
        if self.weights is not None:
            model.score = weighted_score(model.scores, self.weights)
            self.tracker.log(run_id, metrics={"val.score": model.score})
        return model


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def models_from_records(records: list[Record], known: list[ModelObject] = (), fetch=None) -> list[ModelObject]:
    """Model objects of successful runs, in order, with their parents linked by run id; `fetch`
    builds an adapter's base model when it is not among them."""
    by_run = {m.run_id: m for m in known}
    models = []
    for r in records:
        if r.status not in (tr.OK, tr.CACHED):
            continue
        model = ModelObject(r.name, r.run_id, r.model_id, r.fingerprint, r.pipeline, r.arch, dict(r.scores), r.score,
                            r.iteration, parents=[by_run[i] for i in r.inputs if i in by_run], cost_seconds=r.cost_seconds,
                            adapter_base=by_run.get(r.adapter_of) or (fetch(r.adapter_of) if r.adapter_of and fetch else None))
        by_run[r.run_id] = model
        models.append(model)
    return models
