"""The LaMDAgent loop: enumerate actions, select one with the policy, run and evaluate it,
update the memory. Every step is read from and written to the tracking server."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import nullcontext

from lamdagent import config as config_mod
from lamdagent import tracking as tr
from lamdagent.agent import prompts
from lamdagent.agent.facts import memory_text
from lamdagent.agent.policies import Decision, Policy, make_policy
from lamdagent.config.schema import BudgetConfig
from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.exploration.executors import EXECUTORS, ActionJob, Executor, check_placement, make_executor
from lamdagent.exploration.overlap import describe as describe_overlaps
from lamdagent.exploration.overlap import overlaps
from lamdagent.exploration.presenting import exploration_note, study_note, view_columns
from lamdagent.exploration.recorded import exploration_journal
from lamdagent.exploration.runner import Produced, Runner, Step
from lamdagent.exploration.seeds import ensure_seeds, prepare_base
from lamdagent.exploration.study import Study
from lamdagent.faults import checkpoint
from lamdagent.journal import Cause, Entry, Evidence, Journal, models_from_records
from lamdagent.screening import screen
from lamdagent.tracking import Kind, Record, Status, Tracker, traces
from lamdagent.tracking.lease import Lease, LeaseLost
from lamdagent.tracking.machine import differences, machine
from lamdagent.tracking.outage import TrackingOutage


class Exploration:
    """One exploration (a parent run): start it or resume it, then iterate up to the budget. Its
    history is the journal, read back from the tracking server and extended as the loop goes."""

    def __init__(self, study: Study, tracker: Tracker, run_id: str, experiment_id: str, policy: Policy, display: Display, lease: Lease | None = None):
        self.cfg, self.study, self.lease = study.cfg, study, lease
        self.tracker, self.run_id, self.experiment_id, self.policy, self.display = tracker, run_id, experiment_id, policy, display
        self.fallback_reasons: Counter[str] = Counter()
        self.decisions = 0
        self.structured_form: str | None = None  # the endpoint's accepted structured-output form, once known
        self.negotiated = 0  # step-downs of the form already announced
        self.notice = ""  # the policy's degraded mode last announced
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
        evidence = screen(self.runner, seeds[0], self.display) if cfg.screening.enabled else Evidence()
        records = tracker.children(self.run_id, self.experiment_id)  # with the initial models and screenings just made
        self.journal = exploration_journal(self.study, records, seeds, weights, evidence, self.runner.model_of_run, tracker.memory)
        journal = self.journal
        finished = journal.finished()
        last = max((e.iteration for e in finished), default=0)
        if finished and last not in tracker.metric_steps(self.run_id, "best.val.score"):
            tracker.log(self.run_id, metrics={"best.val.score": journal.best_score()}, step=last)  # killed before it was logged
        self._mark_best()
        todo = journal.remaining()
        self.display.overall(f"exploration {cfg.name}", total=cfg.iterations, completed=cfg.iterations - len(todo))
        k = cfg.execution.parallel
        while todo:
            if self.lease:
                self.lease.check()
            if cfg.budget.flops is not None and journal.uncounted():
                self.display.log_once("uncounted", "[yellow]some steps of this exploration were made before their floating-point operations "
                                      "were counted (reused from older runs): budget.flops counts them as none")
            if journal.out_of_compute():
                self.display.log(f"[yellow]stopping: the compute budget is spent: {compute_spent(journal, cfg.budget)}")
                break
            failures = journal.trailing_failures()
            if failures >= cfg.max_consecutive_failures:
                self.display.log(f"[red]stopping: the last {failures} actions failed (max_consecutive_failures={cfg.max_consecutive_failures})")
                break
            chosen = self._select_round(todo[:k])
            if not chosen:
                self.display.log("[yellow]stopping: every action of the space has been computed")
                break
            todo = todo[len(chosen):]
            for job, _ in chosen.values():
                executor.submit(job, self.runner)
            for result in executor.finished():
                self._finish(result, chosen[result.run_id][1])
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
        for fallback in decision.fallbacks:
            self.display.log(f"[yellow]#{iteration} agent fallback: {fallback}")
            self.fallback_reasons[fallback.reason] += 1
        if decision.notice and decision.notice != self.notice:
            self.display.log(f"[yellow]#{iteration} {self.policy.name}: {decision.notice}")
        self.notice = decision.notice
        self.decisions += 1
        for step_down in self.policy.negotiation[self.negotiated:]:
            self.display.log(f"[yellow]agent endpoint: structured output {step_down}")
            self.negotiated += 1
        form = self.policy.structured_form
        if form is not None and form != self.structured_form:
            self.structured_form = form
            self.tracker.log(self.run_id, tags={"agent.structured_output": form})
        if decision.steps and decision.endpoint_failures == decision.steps and self.cfg.agent.on_endpoint_failure == "stop":
            cause = next(f for f in decision.fallbacks if f.cause == Cause.ENDPOINT)
            raise UserError(f"agent endpoint {self.cfg.agent.base_url or 'api.openai.com'}: every request of iteration {iteration} failed "
                            f"({cause.detail}); the exploration stopped rather than turn into a random search. Fix the endpoint "
                            "(agent.base_url, agent.model, agent.request_timeout), set agent.structured_output=false, or "
                            "agent.on_endpoint_failure=random to go on with random choices")

    def fallback_summary(self) -> str:
        """How many decisions fell back to random choices, and why (for the end of the run)."""
        if not self.fallback_reasons:
            return ""
        reasons = ", ".join(f"{n} x {reason}" for reason, n in self.fallback_reasons.most_common())
        return f"agent fallbacks: {sum(self.fallback_reasons.values())} random choices over {self.decisions} decisions ({reasons})"

    def _trace(self, name: str, iteration: int, run_id: str | None = None, model_id: str | None = None, inputs: dict | None = None):
        """A trace of the LLM agent's calls (`agent.trace`) in the study's experiment, linked to
        `run_id` (else to the exploration until `link`); policies without an LLM trace nothing."""
        if not (self.cfg.agent.trace and self.policy.chat is not None):
            return nullcontext(traces.NO_SPAN)
        return traces.trace(name, experiment_id=self.experiment_id, run_id=run_id or self.run_id, model_id=model_id, inputs=inputs,
                            tags={tr.tag("iteration"): str(iteration), tr.tag("trace"): name, tr.tag("exploration"): self.run_id,
                                  tr.tag("policy"): self.policy.name, tr.tag("agent_model"): self.policy.chat.name})

    def _mark_best(self) -> None:
        """The exploration run names its best model (tags `best_model`, `best_run`; its description links it)."""
        best = self.journal.best()
        if best is None or best.run_id == self.best_run:
            return
        self.best_run = best.run_id
        self.tracker.log(self.run_id, tags={"best_model": best.name, "best_run": best.run_id})
        self.tracker.models.note(self.run_id, exploration_note(self.experiment_id, self.cfg.name, best, self.study.registered_model))

    def _select_round(self, iterations: list[int]) -> dict[str, tuple[ActionJob, Decision]]:
        """Up to k decisions, one per iteration number, each made with the round's earlier choices
        in the journal as running (so a round's actions differ); their runs are started."""
        chosen: dict[str, tuple[ActionJob, Decision]] = {}
        journal = self.journal
        for iteration in iterations:
            space = self.study.decision_space(journal)  # a round's earlier choices are pending: never chosen twice in one round
            if not space.available_types():
                break
            self.display.step(f"iteration {iteration}: agent deciding")
            with self._trace("decide", iteration, inputs={"iteration": iteration, "memory": journal.memory(), "tried": sorted(journal.tried_types()),
                                                          "in_flight": [f"{e.label} = {e.pipeline}" for e in journal.pending()],
                                                          "action_types": space.available_types()}) as trace:
                before = self.policy.endpoint_retries
                decision = self.policy.select(space, journal, iteration)
                decision.endpoint_retries = self.policy.endpoint_retries - before
                action = decision.action
                trace.outputs({"action": str(action), "pipeline": action.pipeline(), "fallbacks": [str(f) for f in decision.fallbacks],
                               "retries": decision.retries, "endpoint_retries": decision.endpoint_retries})
                self._announce(iteration, decision)
                job = self._start(iteration, decision, [m.name for m in space.models])
                trace.link(job.run_id)  # the decision belongs to the action's run (its Traces tab)
            chosen[job.run_id] = (job, decision)
            self.display.done_step()
        if len(chosen) > 1:
            self.display.log(f"round of {len(chosen)}: " + "; ".join(f"#{job.iteration} {d.action.pipeline()}" for job, d in chosen.values()))
        return chosen

    def _start(self, iteration: int, decision: Decision, pool: list[str]) -> ActionJob:
        """The action's nested run (with the agent's transcript), its entry in the journal, and the job that fills it."""
        action, name = decision.action, f"m{iteration}"
        tags = {"policy": self.policy.name, "pool": json.dumps(pool), **({"origin": decision.origin} if decision.origin else {}),
                **({"round_size": str(self.cfg.execution.parallel)} if self.cfg.execution.parallel > 1 else {}),
                **({"fallback": " | ".join(map(str, decision.fallbacks)),
                    "fallbacks": json.dumps([f.to_dict() for f in decision.fallbacks])} if decision.fallbacks else {})}
        run_id = self.runner.start(Step.of_action(action, Kind.ACTION, iteration, name, tags))
        self.tracker.log_json(run_id, decision.transcript, "agent/decision.json")
        self.tracker.log(run_id, metrics={"agent.fallbacks": len(decision.fallbacks), "agent.retries": decision.retries})
        self.journal.decide(Entry(iteration, run_id, action.type.name, action.names(), action.fingerprint, action.pipeline(),
                                  list(action.models), pool, list(decision.fallbacks), decision.origin))
        return ActionJob.of(action, run_id, iteration, name, self.runner, config_mod.to_dict(self.cfg))

    def _finish(self, result: Produced, decision: Decision) -> None:
        """A finished action: its outcome in the journal, the memory rewritten from it, the run
        closed, the exploration's metrics."""
        tracker, journal = self.tracker, self.journal
        entry = journal.finish(result.run_id, result.status, result.model, result.error, result.compute_seconds, result.compute_flops)
        iteration = entry.iteration
        self.display.step(f"iteration {iteration}: agent updating its memory")
        before = self.policy.endpoint_retries
        model_id = result.model.model_id if result.model is not None and result.status == Status.OK else None
        with self._trace("remember", iteration, run_id=result.run_id, model_id=model_id,
                         inputs={"memory": journal.memory(), "action": prompts.action_text(entry), "result": prompts.result_text(journal, entry),
                                 "best": prompts.best_text(journal)}) as trace:
            lessons, transcript = self.policy.remember(journal, entry)
            memory = memory_text(journal, lessons)  # the tool's facts stay whatever the rewrite said
            problem = transcript[0].get("problem") if transcript else None
            trace.outputs({"memory": memory, "rewrite_rejected": problem or None})
        checkpoint("memory_update")
        entry.memory = memory
        tracker.log_text(result.run_id, memory, tr.MEMORY_ARTIFACT)
        tracker.log_json(result.run_id, transcript, "agent/memory_transcript.json")
        checkpoint("before_finish")
        tracker.finish_child(result.run_id, result.status, result.error, tags={"memory_seq": str(entry.memory_seq)})
        checkpoint("after_finish")
        self.display.done_step()
        agent = {"agent.fallbacks": len(decision.fallbacks), "agent.retries": decision.retries,
                 "agent.endpoint_retries": decision.endpoint_retries + self.policy.endpoint_retries - before,
                 "agent.memory_fallbacks": int(bool(problem))}
        tracker.log(self.run_id, metrics={"best.val.score": journal.best_score(), **agent,
                                          **({"iteration.val.score": result.model.score} if result.model else {})}, step=iteration)
        self._mark_best()
        self.display.log(f"[bold]#{iteration}[/] {entry.pipeline}  ->  {prompts.result_text(journal, entry)}")
        self.display.advance_overall()


def start_or_resume(study: str | None, overrides: list[str], resume: str | None, tracker: Tracker, display: Display,
                    launcher_run: str | None = None, tags: dict[str, str] | None = None) -> tuple[str, list[Record], object]:
    """Validate everything, then run the exploration. Returns (exploration run id, records, cfg).
    `tags` (under `lamdagent.`) mark a new exploration, e.g. as a baseline."""
    latest = resume == "latest"
    if latest:
        resume = tracker.latest_exploration(study or config_mod.DEFAULT_STUDY)
    if resume:
        parent = tracker.run(resume)  # RunNotFound: a one-line error
        if parent.data.tags.get(tr.tag("kind")) != Kind.EXPLORATION:
            raise UserError(f"run {resume!r} is not an exploration (lamdagent.kind={parent.data.tags.get(tr.tag('kind'))!r})")
        cfg = config_mod.load_config("", overrides, base=tracker.exploration_config(resume))
        if latest and parent.info.status == "FINISHED":
            done = max((r.iteration for r in tracker.children(resume, parent.info.experiment_id) if r.kind == Kind.ACTION), default=0)
            if cfg.iterations <= done:
                raise UserError(f"the latest exploration of study {cfg.name!r}, {resume}, finished its {done} iterations; "
                                f"continue it with a larger budget, e.g. --resume latest iterations={done + 5}")
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
            _announce_another_machine(tracker, parent, display)
        else:
            experiment_id = tracker.experiment(cfg.name)
            tracker.models.describe_study(experiment_id, study_note(experiment_id, cfg.name, study.registered_model))
            plain = config_mod.to_dict(cfg)
            params = config_mod.flat_params(config_mod.redacted(plain))
            run_name = f"baseline: {tags['baseline']}" if tags and "baseline" in tags else None  # else MLflow names it
            found = overlaps(study)  # before any compute: training data holding evaluation prompts
            run_id = tracker.start_exploration(experiment_id, cfg.name, config_mod.redacted(plain), params, run_name=run_name,
                                               tags={**(tags or {}), "machine": json.dumps(machine()),
                                                     **({"overlap": json.dumps(found)} if found else {})})
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


def _announce_another_machine(tracker: Tracker, parent, display: Display) -> None:
    """A resume on another kind of machine than the one the exploration started on is said on the
    console and tagged (`lamdagent.resumed_on`): from here its numbers are that machine's."""
    recorded = parent.data.tags.get(tr.tag("machine"))
    current = machine()
    changed = differences(json.loads(recorded), current) if recorded else []
    if changed:
        display.log(f"[yellow]exploration {parent.info.run_id} started on another kind of machine ({'; '.join(changed)}): the models it "
                    "makes from here may differ from those it would have made there (a seed's numbers reproduce per kind of machine)")
        tracker.log(parent.info.run_id, tags={"resumed_on": json.dumps(current)})


def compute_spent(journal: Journal, budget: BudgetConfig) -> str:
    """What the exploration spent, against each compute budget it has: `12 s (budget.seconds=10)`."""
    spent = []
    if budget.seconds is not None:
        spent.append(f"{journal.spent_seconds():.0f} s (budget.seconds={budget.seconds:g})")
    if budget.flops is not None:
        spent.append(f"{journal.spent_flops():.3g} floating-point operations (budget.flops={budget.flops:g})")
    return " and ".join(spent)
