"""The LaMDAgent loop: enumerate actions, select one with the policy, run and evaluate it,
update the memory. Every step is read from and written to the tracking server."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import nullcontext

from lamdagent import config as config_mod
from lamdagent import tracking as tr
from lamdagent.agent.policies import Decision, Policy, make_policy
from lamdagent.agent.prompts import AgentContext
from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.exploration.executors import EXECUTORS, ActionJob, Executor, check_placement, make_executor
from lamdagent.exploration.overlap import describe as describe_overlaps
from lamdagent.exploration.overlap import overlaps
from lamdagent.exploration.presenting import exploration_note, study_note, view_columns
from lamdagent.exploration.runner import Produced, Runner, Step, models_from_records
from lamdagent.exploration.seeds import ensure_seeds, prepare_base
from lamdagent.exploration.study import Study
from lamdagent.faults import checkpoint
from lamdagent.space import ModelObject
from lamdagent.tracking import Kind, Record, Status, Tracker, traces
from lamdagent.tracking.lease import Lease, LeaseLost
from lamdagent.tracking.outage import TrackingOutage


def _trailing_failures(records: list[Record]) -> int:
    count = 0
    for record in reversed(records):
        if record.status != Status.FAILED:
            break
        count += 1
    return count


def _result_text(produced: Produced) -> str:
    if produced.model is None:
        return f"FAILED ({produced.error})"
    model = produced.model
    per_task = ", ".join(f"{t} {v:.2f}" for t, v in model.scores.items())
    repeated = " (a repeat of an earlier action: its model was reused, nothing new was learned)" if produced.status == Status.CACHED else ""
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
        self.fallback_reasons: Counter[str] = Counter()
        self.decisions = 0
        self.structured_form: str | None = None  # the endpoint's accepted structured-output form, once known
        self.negotiated = 0  # step-downs of the form already announced
        self.best_run = ""  # the run of the best model the exploration run's tags name

    def run(self) -> list[Record]:
        executor = make_executor(self.cfg.execution)  # a Ray cluster is joined before any compute
        try:
            return self._run(executor)
        finally:
            executor.close()
            traces.flush()  # the agent's traces are written in the background

    def _run(self, executor: Executor) -> list[Record]:
        cfg, tracker = self.cfg, self.tracker
        killed = tracker.mark_interrupted(self.run_id, self.experiment_id)
        if killed:
            self.display.log(f"[yellow]marked {len(killed)} interrupted run(s) as KILLED; their iterations are redone")
        records = tracker.children(self.run_id, self.experiment_id)
        self.runner = Runner(self.study, tracker, self.run_id, self.experiment_id, self.display, base=prepare_base(cfg))
        existing = models_from_records([r for r in records if r.kind == Kind.SEED], fetch=self.runner.model_of_run)
        seeds, weights = ensure_seeds(self.study, self.runner, {m.name: m for m in existing})  # resuming: kept, the missing ones built
        self.runner = self.runner.with_weights(weights)
        finished = [r for r in records if r.kind == Kind.ACTION and r.status in (Status.OK, Status.FAILED, Status.CACHED)]
        self.seeds, self.produced = seeds, models_from_records(finished, seeds, self.runner.model_of_run)
        last = max(finished, key=lambda r: (r.memory_seq, r.iteration), default=None)
        self.memory = tracker.memory(last.run_id) if last else ""
        self.memory_seq = last.memory_seq if last else 0
        self.tried = {r.action_type for r in finished}
        self.done = set() if cfg.repeat_actions else {r.fingerprint for r in finished} | {s.fingerprint for s in seeds}
        self.failures = _trailing_failures(finished)
        todo = sorted(set(range(1, cfg.iterations + 1)) - {r.iteration for r in finished})  # a killed round may leave gaps
        if finished and max(r.iteration for r in finished) not in tracker.metric_steps(self.run_id, "best.val.score"):
            tracker.log(self.run_id, metrics={"best.val.score": self._best_score()}, step=max(r.iteration for r in finished))  # killed before it was logged
        self._mark_best()
        self.display.overall(f"exploration {cfg.name}", total=cfg.iterations, completed=cfg.iterations - len(todo))
        k = cfg.execution.parallel
        while todo:
            if self.lease:
                self.lease.check()
            if self.failures >= cfg.max_consecutive_failures:
                self.display.log(f"[red]stopping: the last {self.failures} actions failed (max_consecutive_failures={cfg.max_consecutive_failures})")
                break
            chosen = self._select_round(todo[:k])
            if not chosen:
                self.display.log("[yellow]stopping: every action of the space has been computed")
                break
            todo = todo[len(chosen):]
            for job, _, _ in chosen.values():
                executor.submit(job, self.runner)
            for result in executor.finished():
                self._finish(result, *chosen[result.run_id][1:])
        summary = self.fallback_summary()
        if summary:
            self.display.log(f"[yellow]{summary}")
        for failure in self.runner.presenter.wait():  # the last pipeline drawings are logged
            self.display.log(f"[yellow]no pipeline drawing: {failure}")
        return tracker.children(self.run_id, self.experiment_id)

    def _announce(self, iteration: int, decision: Decision) -> None:
        """Every fallback as one console line; the endpoint's structured-output form on the
        exploration run; a decision whose every step failed at the endpoint stops the exploration
        (unless agent.on_endpoint_failure=random): it would otherwise turn into a random search."""
        for reason in decision.fallbacks:
            self.display.log(f"[yellow]#{iteration} agent fallback: {reason}")
            self.fallback_reasons[reason.split(";")[0].split(" (")[0]] += 1
        self.decisions += 1
        chat = getattr(self.policy, "chat", None)
        form = getattr(chat, "structured_form", None)
        for step_down in getattr(chat, "negotiation", [])[self.negotiated:]:
            self.display.log(f"[yellow]agent endpoint: structured output {step_down}")
            self.negotiated += 1
        if form is not None and form != self.structured_form:
            self.structured_form = form
            self.tracker.log(self.run_id, tags={"agent.structured_output": form})
        if decision.steps and decision.endpoint_failures == decision.steps and self.cfg.agent.on_endpoint_failure == "stop":
            cause = next(r for r in decision.fallbacks if "endpoint error" in r)
            raise UserError(f"agent endpoint {self.cfg.agent.base_url or 'api.openai.com'}: every request of iteration {iteration} failed "
                            f"({cause.split('endpoint error (', 1)[-1].rsplit(')', 1)[0]}); the exploration stopped rather than turn into a "
                            "random search. Fix the endpoint (agent.base_url, agent.model, agent.request_timeout), set "
                            "agent.structured_output=false, or agent.on_endpoint_failure=random to go on with random choices")

    def fallback_summary(self) -> str:
        """How many decisions fell back to random choices, and why (for the end of the run)."""
        if not self.fallback_reasons:
            return ""
        reasons = ", ".join(f"{n} x {reason}" for reason, n in self.fallback_reasons.most_common())
        return f"agent fallbacks: {sum(self.fallback_reasons.values())} random choices over {self.decisions} decisions ({reasons})"

    def _trace(self, name: str, iteration: int, run_id: str | None = None, model_id: str | None = None, inputs: dict | None = None):
        """A trace of the LLM agent's calls (`agent.trace`) in the study's experiment, linked to
        `run_id` (else to the exploration until `link`); policies without an LLM trace nothing."""
        if not (self.cfg.agent.trace and getattr(self.policy, "chat", None) is not None):
            return nullcontext(traces.NO_SPAN)
        return traces.trace(name, experiment_id=self.experiment_id, run_id=run_id or self.run_id, model_id=model_id, inputs=inputs,
                            tags={tr.tag("iteration"): str(iteration), tr.tag("trace"): name, tr.tag("exploration"): self.run_id,
                                  tr.tag("policy"): self.policy.name, tr.tag("agent_model"): getattr(self.policy.chat, "name", "")})

    def _best_score(self) -> float:
        return max((m.score for m in self.seeds + self.produced if m.score is not None), default=0.0)

    def _mark_best(self) -> None:
        """The exploration run names its best model (tags `best_model`, `best_run`; its description links it)."""
        scored = [m for m in self.seeds + self.produced if m.score is not None]
        best = max(scored, key=lambda m: m.score, default=None)
        if best is None or best.run_id == self.best_run:
            return
        self.best_run = best.run_id
        self.tracker.log(self.run_id, tags={"best_model": best.name, "best_run": best.run_id})
        self.tracker.models.note(self.run_id, exploration_note(self.experiment_id, self.cfg.name, best, self.study.registered_model))

    def _endpoint_retries(self) -> int:
        """Retried requests of the agent's endpoint so far (the client counts them)."""
        return getattr(getattr(self.policy, "chat", None), "retries", 0)

    def _context(self, iteration: int, in_flight: list[str] = ()) -> AgentContext:
        return AgentContext(self.study.task_names, iteration, self.cfg.iterations, self.memory, set(self.tried), list(in_flight))

    def _select_round(self, iterations: list[int]) -> dict[str, tuple[ActionJob, Decision, int]]:
        """Up to k decisions, one per iteration number, each made with the round's earlier choices
        shown as in flight and excluded (so a round's actions differ); their runs are started."""
        chosen: dict[str, tuple[ActionJob, Decision, int]] = {}
        in_flight: list[str] = []
        pending: set[str] = set()
        for iteration in iterations:
            space = self.study.space(self.seeds + self.produced, self.done | pending)
            if not space.available_types():
                break
            self.display.step(f"iteration {iteration}: agent deciding")
            ctx = self._context(iteration, in_flight)
            with self._trace("decide", iteration, inputs={"iteration": iteration, "memory": ctx.memory, "tried": sorted(ctx.tried),
                                                          "in_flight": list(in_flight), "action_types": space.available_types()}) as trace:
                before = self._endpoint_retries()
                decision = self.policy.select(space, ctx)
                decision.endpoint_retries = self._endpoint_retries() - before
                action = decision.action
                trace.outputs({"action": str(action), "pipeline": action.pipeline(), "fallbacks": decision.fallbacks,
                               "retries": decision.retries, "endpoint_retries": decision.endpoint_retries})
                self._announce(iteration, decision)
                pending.add(action.fingerprint)
                in_flight.append(f"{action} = {action.pipeline()}")
                job = self._start(iteration, decision)
                trace.link(job.run_id)  # the decision belongs to the action's run (its Traces tab)
            chosen[job.run_id] = (job, decision, iteration)
            self.display.done_step()
        if len(chosen) > 1:
            self.display.log(f"round of {len(chosen)}: " + "; ".join(f"#{it} {d.action.pipeline()}" for _, d, it in chosen.values()))
        return chosen

    def _start(self, iteration: int, decision: Decision) -> ActionJob:
        """The action's nested run (with the agent's transcript) and the job that fills it."""
        action, name = decision.action, f"m{iteration}"
        tags = {"policy": self.policy.name, **({"round_size": str(self.cfg.execution.parallel)} if self.cfg.execution.parallel > 1 else {})}
        run_id = self.runner.start(Step.of_action(action, Kind.ACTION, iteration, name, tags))
        self.tracker.log_json(run_id, decision.transcript, "agent/decision.json")
        self.tracker.log(run_id, metrics={"agent.fallbacks": len(decision.fallbacks), "agent.retries": decision.retries},
                         tags={"fallback": " | ".join(decision.fallbacks)} if decision.fallbacks else None)
        return ActionJob.of(action, run_id, iteration, name, self.runner, config_mod.to_dict(self.cfg))

    def _finish(self, result: Produced, decision: Decision, iteration: int) -> None:
        """A finished action: the memory rewritten from its result, the run closed, the exploration's metrics."""
        tracker = self.tracker
        if result.model is not None:
            self.produced.append(result.model)
        self.display.step(f"iteration {iteration}: agent updating its memory")
        ctx, before = self._context(iteration), self._endpoint_retries()
        action_text = f"{decision.action} = {decision.action.pipeline()}"
        result_text, best_text = _result_text(result), _best_text(self.seeds + self.produced)
        model_id = result.model.model_id if result.model is not None and result.status == Status.OK else None
        with self._trace("remember", iteration, run_id=result.run_id, model_id=model_id,
                         inputs={"memory": ctx.memory, "action": action_text, "result": result_text, "best": best_text}) as trace:
            self.memory, transcript = self.policy.remember(ctx, action_text, result_text, best_text)
            problem = transcript[0].get("problem") if transcript else None
            trace.outputs({"memory": self.memory, "rewrite_rejected": problem or None})
        checkpoint("memory_update")
        self.memory_seq += 1
        tracker.log_text(result.run_id, self.memory, tr.MEMORY_ARTIFACT)
        tracker.log_json(result.run_id, transcript, "agent/memory_transcript.json")
        checkpoint("before_finish")
        tracker.finish_child(result.run_id, result.status, result.error, tags={"memory_seq": str(self.memory_seq)})
        checkpoint("after_finish")
        self.display.done_step()
        self.tried.add(decision.action.type.name)
        self.done.add(decision.action.fingerprint)
        self.failures = self.failures + 1 if result.status == Status.FAILED else 0
        agent = {"agent.fallbacks": len(decision.fallbacks), "agent.retries": decision.retries,
                 "agent.endpoint_retries": decision.endpoint_retries + self._endpoint_retries() - before,
                 "agent.memory_fallbacks": int(bool(transcript and transcript[0].get("problem")))}
        tracker.log(self.run_id, metrics={"best.val.score": self._best_score(), **agent,
                                          **({"iteration.val.score": result.model.score} if result.model else {})}, step=iteration)
        self._mark_best()
        self.display.log(f"[bold]#{iteration}[/] {decision.action.pipeline()}  ->  {_result_text(result)}")
        self.display.advance_overall()


def start_or_resume(study: str | None, overrides: list[str], resume: str | None, tracker: Tracker, display: Display,
                    launcher_run: str | None = None, tags: dict[str, str] | None = None) -> tuple[str, list[Record], object]:
    """Validate everything, then run the exploration. Returns (exploration run id, records, cfg).
    `tags` (under `lamdagent.`) mark a new exploration, e.g. as a baseline."""
    if resume == "latest":
        resume = tracker.latest_unfinished(study or config_mod.DEFAULT_STUDY)
    if resume:
        try:
            parent = tracker.run(resume)
        except TrackingOutage:
            raise
        except Exception:
            raise UserError(f"no exploration run {resume!r} in the tracking store {tracker.tracking_uri}") from None
        if parent.data.tags.get(tr.tag("kind")) != Kind.EXPLORATION:
            raise UserError(f"run {resume!r} is not an exploration (lamdagent.kind={parent.data.tags.get(tr.tag('kind'))!r})")
        cfg = config_mod.load_config("", overrides, base=tracker.exploration_config(resume))
        experiment_id = parent.info.experiment_id
        lease = tracker.lease(resume, cfg.lease.timeout_seconds, cfg.lease.heartbeat_seconds)  # before any work
    else:
        cfg = config_mod.load_config(study or config_mod.DEFAULT_STUDY, overrides)
        experiment_id = lease = None
    tracker.patience.limit, tracker.patience.announce = cfg.tracking.max_outage_seconds, display.log
    try:
        study = Study(cfg)  # task and dataset definitions load before any compute
        EXECUTORS.check(cfg.execution.executor, "execution.executor")
        check_placement(cfg.execution, tracker.tracking_uri)
        traces.configure(cfg.agent.trace)  # the agent's and the judge's calls (tracking/traces.py)
        study.connect_judge()
        policy = make_policy(cfg.agent, cfg.seed if cfg.agent.seed is None else cfg.agent.seed)
        if resume:
            run_id = resume
            tracker.reopen(run_id)
        else:
            experiment_id = tracker.experiment(cfg.name)
            tracker.models.describe_study(experiment_id, study_note(experiment_id, cfg.name, study.registered_model))
            plain = config_mod.to_dict(cfg)
            params = config_mod.flat_params(config_mod.redacted(plain))
            run_name = f"baseline: {tags['baseline']}" if tags and "baseline" in tags else None  # else MLflow names it
            found = overlaps(study)  # before any compute: training data holding evaluation prompts
            run_id = tracker.start_exploration(experiment_id, cfg.name, config_mod.redacted(plain), params, run_name=run_name,
                                               tags={**(tags or {}), **({"overlap": json.dumps(found)} if found else {})})
            tracker.models.share_runs_view(experiment_id, view_columns(study), run_id)  # the study's runs view expands this exploration
            for line in describe_overlaps(found, study):
                display.log(f"[yellow]overlap: {line}: scores on them measure memorisation (lamdagent.overlap)")
            lease = tracker.lease(run_id, cfg.lease.timeout_seconds, cfg.lease.heartbeat_seconds)
        if launcher_run:
            tracker.log(launcher_run, tags={"exploration_run_id": run_id, "kind": Kind.LAUNCHER})
        display.log(f"exploration [bold]{run_id}[/] of study [bold]{cfg.name}[/] in {tracker.tracking_uri}")
        try:
            records = Exploration(study, tracker, run_id, experiment_id, policy, display, lease).run()
        except LeaseLost:
            raise UserError(f"another process took over exploration {run_id} (this one's lease went stale); stopped") from None
        except TrackingOutage:  # the server is away: the run stays open, `--resume` continues it
            raise
        except BaseException:
            tracker.close(run_id, Status.KILLED.mlflow)
            raise
        if cfg.retention.keep_top_k:
            from lamdagent.tracking.retention import collect

            freed = collect(tracker, experiment_id, cfg.retention.keep_top_k)
            display.log(f"retention: kept the weights of the top {cfg.retention.keep_top_k} models and their lineage; freed {len(freed)} model(s)")
        tracker.close(run_id)
    finally:
        if lease:
            lease.release()
    return run_id, records, cfg
