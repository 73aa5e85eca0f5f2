"""The LaMDAgent loop: enumerate actions, select one with the policy, run and evaluate it,
update the memory. Every step is read from and written to the tracking server."""

from __future__ import annotations

import json
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lamdagent import config as config_mod
from lamdagent import tracking as tr
from lamdagent.actions import ACTION_TYPES, ActionContext, ActionOutput
from lamdagent.agent.policies import Decision, Policy, make_policy
from lamdagent.agent.prompts import AgentContext
from lamdagent.cost import CostMeter
from lamdagent.errors import ActionFailed, UserError
from lamdagent.evaluation.evaluator import evaluate, task_weights, weighted_score
from lamdagent.models import architecture, load_model, resolve_base_model
from lamdagent.paths import cache_dir
from lamdagent.progress import Display
from lamdagent.space import Action, ModelObject, fingerprint
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
        all_tags = {"fingerprint": fp, "pipeline": pipeline, "inputs": json.dumps([m.run_id for m in inputs]), **(tags or {})}
        run_id = self.tracker.start_child(self.parent, kind, iteration, name, all_tags)
        self.tracker.log(run_id, params=params)
        cached = self.tracker.find_by_fingerprint(self.experiment_id, fp)
        if cached and cached.run_id != run_id and cached.model_id:
            adapter_tag = {"adapter_of": cached.adapter_of} if cached.adapter_of else {}
            self.tracker.log(
                run_id,
                metrics={f"val.{t}": v for t, v in cached.scores.items()},
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
        return _models_from_records([self.tracker.record(run_id)], fetch=self.model_of_run)[0]

    def _evaluate(self, run_id: str, model_dir: Path, adapter_base: Path | None) -> dict[str, float]:
        cfg = self.study.cfg
        model, tokenizer = load_model(model_dir, adapter_base)
        total = len(self.study.tasks) * cfg.data.val_size
        self.display.step("evaluating on validation", total)
        result = evaluate(model, tokenizer, self.study.tasks, "val", cfg.data.val_size, seed=cfg.seed,
                          batch_size=cfg.evaluation.batch_size, on_progress=self.display.advance_step)
        self.tracker.log(run_id, metrics={f"val.{t}": v for t, v in result.scores.items()})
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


def _sft_build(study: Study, model: ModelObject, dataset, learning_rate: float):
    sft = ACTION_TYPES["sft"](study.cfg.sft)
    return Action(sft, {"model": model, "dataset": dataset, "learning_rate": learning_rate}, study.cfg.seed)


def ensure_seeds(study: Study, runner: Runner) -> list[ModelObject]:
    """The initial objects as `seed` runs: the base model and, if configured, one specialist per
    task fine-tuned from the base (paper 3.1). Reused by fingerprint across explorations."""
    cfg, tracker = study.cfg, runner.tracker
    base_dir = resolve_base_model(cfg.base_model, cfg.seed)
    runner.base_dir = base_dir
    base_fp = fingerprint("base", cfg.base_model, architecture(base_dir), cfg.seed)

    def copy_base(ctx: ActionContext) -> ActionOutput:
        shutil.copytree(base_dir, ctx.out_dir / "model")
        return ActionOutput(ctx.out_dir / "model")

    seeds: list[ModelObject] = []
    produced = runner.produce(kind="seed", iteration=0, name="base", fp=base_fp, pipeline="base", inputs=[], build=copy_base,
                              tags={"source": cfg.base_model})
    _finish_seed(tracker, produced)
    base = produced.model
    base.path = base_dir
    seeds.append(base)
    if cfg.specialists and "sft" in ACTION_TYPES:
        for task in study.tasks:
            action = _sft_build(study, base, study.specialist_dataset(task), cfg.sft.learning_rate[0])
            produced = runner.produce(kind="seed", iteration=0, name=f"spec_{task.name}", fp=action.fingerprint,
                                      pipeline=action.pipeline(), inputs=[base], build=lambda ctx, a=action: a.type.run(a.bindings, ctx),
                                      tags={"action_type": "sft", "action": json.dumps(action.names())}, params=action.hparams)
            _finish_seed(tracker, produced)
            seeds.append(produced.model)
    runner.weights = task_weights([s.scores for s in seeds], study.task_names, cfg.task_weights)
    for seed in seeds:
        runner._with_score(seed.run_id, seed)
    return seeds


def _finish_seed(tracker: Tracker, produced: Produced) -> None:
    tracker.finish_child(produced.run_id, produced.status, produced.error)
    if produced.model is None:
        raise UserError(f"could not build the initial models: {produced.error}")


def _models_from_records(records: list[Record], known: list[ModelObject] = (), fetch=None) -> list[ModelObject]:
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


def _trailing_failures(records: list[Record]) -> int:
    count = 0
    for record in reversed(records):
        if record.status != tr.FAILED:
            break
        count += 1
    return count


def _result_text(produced: Produced) -> str:
    if produced.model is None:
        return f"FAILED ({produced.error})"
    model = produced.model
    per_task = ", ".join(f"{t} {v:.2f}" for t, v in model.scores.items())
    repeated = " (a repeat of an earlier action: its model was reused, nothing new was learned)" if produced.status == tr.CACHED else ""
    return f"{model.name} scored {model.score:.3f} ({per_task}){repeated}"


def _best_text(models: list[ModelObject]) -> str:
    scored = [m for m in models if m.score is not None]
    if not scored:
        return "none yet"
    best = max(scored, key=lambda m: m.score)
    return f"{best.name} = {best.pipeline} with score {best.score:.3f}"


class Exploration:
    """One exploration (a parent run): start it or resume it, then iterate up to the budget."""

    def __init__(self, cfg, tracker: Tracker, run_id: str, experiment_id: str, policy: Policy, display: Display):
        self.cfg, self.tracker, self.run_id, self.experiment_id, self.policy, self.display = cfg, tracker, run_id, experiment_id, policy, display
        self.study = Study(cfg)
        self.runner = Runner(self.study, tracker, run_id, experiment_id, display)

    def run(self) -> list[Record]:
        cfg, tracker = self.cfg, self.tracker
        killed = tracker.mark_interrupted(self.run_id, self.experiment_id)
        if killed:
            self.display.log(f"[yellow]marked {len(killed)} interrupted run(s) as KILLED; their iterations are redone")
        seeds = self._seeds()
        records = tracker.children(self.run_id, self.experiment_id)
        finished = [r for r in records if r.kind == "action" and r.status in (tr.OK, tr.FAILED, tr.CACHED)]
        produced = _models_from_records(finished, seeds, self.runner.model_of_run)
        memory = tracker.memory(finished[-1].run_id) if finished else ""
        tried = {r.action_type for r in finished}
        start = max((r.iteration for r in finished), default=0) + 1
        done = set() if cfg.repeat_actions else {r.fingerprint for r in finished} | {s.fingerprint for s in seeds}
        failures = _trailing_failures(finished)
        self.display.overall(f"exploration {cfg.name}", total=cfg.iterations, completed=start - 1)
        for iteration in range(start, cfg.iterations + 1):
            if failures >= cfg.max_consecutive_failures:
                self.display.log(f"[red]stopping: the last {failures} actions failed (max_consecutive_failures={cfg.max_consecutive_failures})")
                break
            space = self.study.space(seeds + produced, done)
            if not space.available_types():
                self.display.log("[yellow]stopping: every action of the space has been computed")
                break
            ctx = AgentContext(self.study.task_names, iteration, cfg.iterations, memory, tried)
            self.display.step(f"iteration {iteration}: agent deciding")
            decision = self.policy.select(space, ctx)
            result = self._run_action(iteration, decision)
            self.display.step(f"iteration {iteration}: agent updating its memory")
            if result.model is not None:
                produced.append(result.model)
            memory, transcript = self.policy.remember(ctx, f"{decision.action} = {decision.action.pipeline()}", _result_text(result), _best_text(seeds + produced))
            tracker.log_text(result.run_id, memory, tr.MEMORY_ARTIFACT)
            tracker.log_json(result.run_id, transcript, "agent/memory_transcript.json")
            tracker.finish_child(result.run_id, result.status, result.error)
            self.display.done_step()
            tried.add(decision.action.type.name)
            done.add(decision.action.fingerprint)
            failures = failures + 1 if result.status == tr.FAILED else 0
            best = max((m.score for m in seeds + produced if m.score is not None), default=0.0)
            tracker.log(self.run_id, metrics={"best.val.score": best, **({"val.score": result.model.score} if result.model else {})}, step=iteration)
            self.display.log(f"[bold]#{iteration}[/] {decision.action.pipeline()}  ->  {_result_text(result)}")
            self.display.advance_overall()
        return tracker.children(self.run_id, self.experiment_id)

    def _seeds(self) -> list[ModelObject]:
        existing = [r for r in self.tracker.children(self.run_id, self.experiment_id) if r.kind == "seed"]
        if existing:  # resuming: the seeds are already runs of this exploration
            seeds = _models_from_records(existing, fetch=self.runner.model_of_run)
            self.runner.base_dir = resolve_base_model(self.cfg.base_model, self.cfg.seed)
            self.runner.weights = task_weights([s.scores for s in seeds], self.study.task_names, self.cfg.task_weights)
            return seeds
        return ensure_seeds(self.study, self.runner)

    def _run_action(self, iteration: int, decision: Decision):
        action = decision.action
        name = f"m{iteration}"
        self.display.step(f"iteration {iteration}: {action}")
        result = self.runner.produce(
            kind="action", iteration=iteration, name=name, fp=action.fingerprint, pipeline=action.pipeline(), inputs=action.models,
            build=lambda ctx: action.type.run(action.bindings, ctx),
            tags={"action_type": action.type.name, "action": json.dumps(action.names()), "policy": self.policy.name},
            params=action.hparams,
        )
        self.tracker.log_json(result.run_id, decision.transcript, "agent/decision.json")
        self.tracker.log(result.run_id, metrics={"agent.fallbacks": len(decision.fallbacks)},
                         tags={"fallback": " | ".join(decision.fallbacks)} if decision.fallbacks else None)
        return result


def start_or_resume(study: str | None, overrides: list[str], resume: str | None, tracker: Tracker, display: Display,
                    launcher_run: str | None = None) -> tuple[str, list[Record], object]:
    """Validate everything, then run the exploration. Returns (exploration run id, records, cfg)."""
    if resume:
        try:
            parent = tracker.exploration(resume)
        except Exception:
            raise UserError(f"no exploration run {resume!r} in the tracking store {tracker.tracking_uri}") from None
        if parent.data.tags.get(tr.tag("kind")) != "exploration":
            raise UserError(f"run {resume!r} is not an exploration (lamdagent.kind={parent.data.tags.get(tr.tag('kind'))!r})")
        cfg = config_mod.load_config("", overrides, base=tracker.exploration_config(resume))
        experiment_id = parent.info.experiment_id
    else:
        cfg = config_mod.load_config(study or "demo", overrides)
        experiment_id = None
    Study(cfg)  # task and dataset definitions load before any compute
    policy = make_policy(cfg.agent, cfg.seed)
    if resume:
        run_id = resume
        tracker.reopen(run_id)
    else:
        experiment_id = tracker.experiment(cfg.name)
        plain = config_mod.to_dict(cfg)
        params = config_mod.flat_params(config_mod.redacted(plain))
        run_id = tracker.start_exploration(experiment_id, cfg.name, config_mod.redacted(plain), params)
    if launcher_run:
        tracker.client.set_tag(launcher_run, tr.tag("exploration_run_id"), run_id)
        tracker.client.set_tag(launcher_run, tr.tag("kind"), "launcher")
    display.log(f"exploration [bold]{run_id}[/] of study [bold]{cfg.name}[/] in {tracker.tracking_uri}")
    try:
        records = Exploration(cfg, tracker, run_id, experiment_id, policy, display).run()
    except BaseException:
        tracker.close(run_id, "KILLED")
        raise
    tracker.close(run_id)
    return run_id, records, cfg
