"""The LaMDAgent loop: enumerate actions, select one with the policy, run and evaluate it,
update the memory. Every step is read from and written to the tracking server."""

from __future__ import annotations

import json

from lamdagent import config as config_mod
from lamdagent import tracking as tr
from lamdagent.agent.policies import Decision, Policy, make_policy
from lamdagent.agent.prompts import AgentContext
from lamdagent.errors import UserError
from lamdagent.faults import checkpoint
from lamdagent.lease import Lease, LeaseLost
from lamdagent.progress import Display
from lamdagent.runner import Produced, Runner, models_from_records
from lamdagent.seeds import ensure_seeds
from lamdagent.space import ModelObject
from lamdagent.study import Study
from lamdagent.tracking import Record, Tracker


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

    def __init__(self, study: Study, tracker: Tracker, run_id: str, experiment_id: str, policy: Policy, display: Display, lease: Lease | None = None):
        self.cfg, self.study, self.lease = study.cfg, study, lease
        self.tracker, self.run_id, self.experiment_id, self.policy, self.display = tracker, run_id, experiment_id, policy, display
        self.runner = Runner(self.study, tracker, run_id, experiment_id, display)

    def run(self) -> list[Record]:
        cfg, tracker = self.cfg, self.tracker
        killed = tracker.mark_interrupted(self.run_id, self.experiment_id)
        if killed:
            self.display.log(f"[yellow]marked {len(killed)} interrupted run(s) as KILLED; their iterations are redone")
        seeds = self._seeds()
        records = tracker.children(self.run_id, self.experiment_id)
        finished = [r for r in records if r.kind == "action" and r.status in (tr.OK, tr.FAILED, tr.CACHED)]
        produced = models_from_records(finished, seeds, self.runner.model_of_run)
        memory = tracker.memory(finished[-1].run_id) if finished else ""
        tried = {r.action_type for r in finished}
        start = max((r.iteration for r in finished), default=0) + 1
        done = set() if cfg.repeat_actions else {r.fingerprint for r in finished} | {s.fingerprint for s in seeds}
        failures = _trailing_failures(finished)
        if finished and start - 1 not in {m.step for m in tracker.client.get_metric_history(self.run_id, "best.val.score")}:
            best = max((m.score for m in seeds + produced if m.score is not None), default=0.0)  # killed before it was logged
            tracker.log(self.run_id, metrics={"best.val.score": best}, step=start - 1)
        self.display.overall(f"exploration {cfg.name}", total=cfg.iterations, completed=start - 1)
        for iteration in range(start, cfg.iterations + 1):
            if self.lease:
                self.lease.check()
            if failures >= cfg.max_consecutive_failures:
                self.display.log(f"[red]stopping: the last {failures} actions failed (max_consecutive_failures={cfg.max_consecutive_failures})")
                break
            space = self.study.space(seeds + produced, done)
            if not space.available_types():
                self.display.log("[yellow]stopping: every action of the space has been computed")
                break
            ctx = AgentContext(self.study.task_names, iteration, cfg.iterations, memory, tried)
            self.display.step(f"iteration {iteration}: agent deciding")
            endpoint_retries = getattr(getattr(self.policy, "chat", None), "retries", 0)
            decision = self.policy.select(space, ctx)
            result = self._run_action(iteration, decision)
            self.display.step(f"iteration {iteration}: agent updating its memory")
            if result.model is not None:
                produced.append(result.model)
            action_text = f"{decision.action} = {decision.action.pipeline()}"
            memory, transcript = self.policy.remember(ctx, action_text, _result_text(result), _best_text(seeds + produced))
            checkpoint("memory_update")
            tracker.log_text(result.run_id, memory, tr.MEMORY_ARTIFACT)
            tracker.log_json(result.run_id, transcript, "agent/memory_transcript.json")
            checkpoint("before_finish")
            tracker.finish_child(result.run_id, result.status, result.error)
            checkpoint("after_finish")
            self.display.done_step()
            tried.add(decision.action.type.name)
            done.add(decision.action.fingerprint)
            failures = failures + 1 if result.status == tr.FAILED else 0
            best = max((m.score for m in seeds + produced if m.score is not None), default=0.0)
            agent = {"agent.fallbacks": len(decision.fallbacks), "agent.retries": decision.retries,
                     "agent.endpoint_retries": getattr(getattr(self.policy, "chat", None), "retries", 0) - endpoint_retries,
                     "agent.memory_fallbacks": int(bool(transcript and transcript[0].get("problem")))}
            tracker.log(self.run_id, metrics={"best.val.score": best, **agent, **({"val.score": result.model.score} if result.model else {})}, step=iteration)
            self.display.log(f"[bold]#{iteration}[/] {decision.action.pipeline()}  ->  {_result_text(result)}")
            self.display.advance_overall()
        return tracker.children(self.run_id, self.experiment_id)

    def _seeds(self) -> list[ModelObject]:
        existing = [r for r in self.tracker.children(self.run_id, self.experiment_id) if r.kind == "seed"]
        finished = models_from_records(existing, fetch=self.runner.model_of_run)  # resuming: kept, the missing ones built
        return ensure_seeds(self.study, self.runner, {m.name: m for m in finished})

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
        self.tracker.log(result.run_id, metrics={"agent.fallbacks": len(decision.fallbacks), "agent.retries": decision.retries},
                         tags={"fallback": " | ".join(decision.fallbacks)} if decision.fallbacks else None)
        return result


def start_or_resume(study: str | None, overrides: list[str], resume: str | None, tracker: Tracker, display: Display,
                    launcher_run: str | None = None, tags: dict[str, str] | None = None) -> tuple[str, list[Record], object]:
    """Validate everything, then run the exploration. Returns (exploration run id, records, cfg).
    `tags` (under `lamdagent.`) mark a new exploration, e.g. as a baseline."""
    if resume == "latest":
        resume = tracker.latest_unfinished(study or "demo")
    if resume:
        try:
            parent = tracker.exploration(resume)
        except Exception:
            raise UserError(f"no exploration run {resume!r} in the tracking store {tracker.tracking_uri}") from None
        if parent.data.tags.get(tr.tag("kind")) != "exploration":
            raise UserError(f"run {resume!r} is not an exploration (lamdagent.kind={parent.data.tags.get(tr.tag('kind'))!r})")
        cfg = config_mod.load_config("", overrides, base=tracker.exploration_config(resume))
        experiment_id = parent.info.experiment_id
        lease = Lease(tracker.client, resume, cfg.lease.timeout_seconds, cfg.lease.heartbeat_seconds).acquire()  # before any work
    else:
        cfg = config_mod.load_config(study or "demo", overrides)
        experiment_id = lease = None
    try:
        study = Study(cfg)  # task and dataset definitions load before any compute
        study.connect_judge()
        policy = make_policy(cfg.agent, cfg.seed)
        if resume:
            run_id = resume
            tracker.reopen(run_id)
        else:
            experiment_id = tracker.experiment(cfg.name)
            plain = config_mod.to_dict(cfg)
            params = config_mod.flat_params(config_mod.redacted(plain))
            run_id = tracker.start_exploration(experiment_id, cfg.name, config_mod.redacted(plain), params, tags=tags)
            lease = Lease(tracker.client, run_id, cfg.lease.timeout_seconds, cfg.lease.heartbeat_seconds).acquire()
        if launcher_run:
            tracker.client.set_tag(launcher_run, tr.tag("exploration_run_id"), run_id)
            tracker.client.set_tag(launcher_run, tr.tag("kind"), "launcher")
        display.log(f"exploration [bold]{run_id}[/] of study [bold]{cfg.name}[/] in {tracker.tracking_uri}")
        try:
            records = Exploration(study, tracker, run_id, experiment_id, policy, display, lease).run()
        except LeaseLost:
            raise UserError(f"another process took over exploration {run_id} (this one's lease went stale); stopped") from None
        except BaseException:
            tracker.close(run_id, "KILLED")
            raise
        if cfg.retention.keep_top_k:
            from lamdagent.retention import collect

            freed = collect(tracker, experiment_id, cfg.retention.keep_top_k)
            display.log(f"retention: kept the weights of the top {cfg.retention.keep_top_k} models and their lineage; freed {len(freed)} model(s)")
        tracker.close(run_id)
    finally:
        if lease:
            lease.release()
    return run_id, records, cfg
