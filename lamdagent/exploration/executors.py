"""Where the actions of a round run: in this process one after another, or as Ray tasks.

The loop creates each action's nested run itself, then submits an `ActionJob` (plain data: the
study config, the run ids, the action by name over its input models). Whoever runs the job
rebuilds the action from the study and produces the model into that run, logging straight to the
tracking server. A job that dies with its worker leaves a run the loop marks failed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

from lamdagent.errors import UserError
from lamdagent.exploration.runner import Produced, Runner, Step
from lamdagent.registry import Registry
from lamdagent.space import Action, ModelObject
from lamdagent.space.lineage import walk
from lamdagent.tracking import Kind, Status, Tracker


@dataclass
class ActionJob:
    """One selected action, as data a worker process can run."""

    run_id: str  # the nested run, created by the loop before submitting
    iteration: int
    name: str
    action_type: str
    names: dict[str, str]  # slot -> object name, as the agent chose them
    fingerprint: str
    inputs: list[ModelObject]  # the input models (their lineage attached)
    config: dict  # the resolved study config
    tracking_uri: str
    parent: str
    experiment_id: str
    weights: dict[str, float] | None  # the study's task weights (w_t)

    @classmethod
    def of(cls, action: Action, run_id: str, iteration: int, name: str, runner: Runner, config: dict) -> ActionJob:
        return cls(run_id, iteration, name, action.type.name, action.names(), action.fingerprint, list(action.models), config,
                   runner.tracker.tracking_uri, runner.parent, runner.experiment_id, runner.weights)


def execute(job: ActionJob, runner: Runner) -> Produced:
    """Rebuild the job's action over its inputs and produce its model into the job's run."""
    action = runner.study.find_action(job.inputs, job.action_type, job.names, job.fingerprint)
    if action is None:
        return Produced(job.run_id, None, Status.FAILED, f"the action {job.action_type}({job.names}) cannot be rebuilt in this worker")
    return runner.produce(Step.of_action(action, Kind.ACTION, job.iteration, job.name), run_id=job.run_id)


class Executor(ABC):
    """Runs submitted jobs; `finished()` yields each result as its job ends (any order)."""

    @abstractmethod
    def submit(self, job: ActionJob, runner: Runner) -> None:
        """Run `job`; `runner` is the loop's own, for executors that run jobs in this process."""

    @abstractmethod
    def finished(self) -> Iterator[Produced]: ...

    def close(self) -> None:
        """Release what the executor holds (workers, connections)."""


EXECUTORS: Registry[type[Executor]] = Registry("executor")


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """The paper's setting: each job runs in this (warm) process, one after another."""

    def __init__(self, execution):
        self.queue: list[tuple[ActionJob, Runner]] = []

    def submit(self, job: ActionJob, runner: Runner) -> None:
        self.queue.append((job, runner))

    def finished(self) -> Iterator[Produced]:
        while self.queue:
            yield execute(*self.queue.pop(0))


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Each job is a Ray task declaring its resources (execution.num_cpus/num_gpus/memory_gb);
    workers log to the shared tracking server and stay warm between tasks. A task that raises or
    whose worker is lost is a failed action (never retried: its run is marked failed)."""

    FORWARDED = ("LAMDAGENT_CACHE", "LAMDAGENT_FAULT", "LAMDAGENT_INCLUDE", "LAMDAGENT_CONF_PATH", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                 "MLFLOW_DISABLE_TELEMETRY")

    def __init__(self, execution):
        import ray

        env = {k: os.environ[k] for k in self.FORWARDED if k in os.environ}

        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=execution.ray_address, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": env or {}}, configure_logging=False)
            except (ConnectionError, ValueError) as err:
                raise UserError(f"cannot reach the Ray cluster at execution.ray_address={execution.ray_address!r}: {str(err).splitlines()[0]}") from None
        options = {"num_cpus": execution.num_cpus, "num_gpus": execution.num_gpus, "max_retries": 0}
        if execution.memory_gb:
            options["memory"] = int(execution.memory_gb * 2**30)
        self.task = ray.remote(_run_in_worker).options(**options)
        self.pending: dict = {}  # object ref -> run id

    def submit(self, job: ActionJob, runner: Runner) -> None:
        self.pending[self.task.remote(dataclasses.replace(job, inputs=portable(job.inputs)))] = job.run_id

    def finished(self) -> Iterator[Produced]:
        while self.pending:
            [ref], _ = self.ray.wait(list(self.pending), num_returns=1)
            run_id = self.pending.pop(ref)
            try:
                yield self.ray.get(ref)
            except Exception as err:  # the worker died or the task raised past the runner
                message = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
                yield Produced(run_id, None, Status.FAILED, f"worker lost ({type(err).__name__}): {message}"[:500])

    def close(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending.clear()


_WORKER_RUNNERS: dict[str, Runner] = {}  # one per study config and exploration, kept warm in the worker


def _run_in_worker(job: ActionJob) -> Produced:
    """The Ray task: a warm runner for the job's study, then `execute`."""
    key = json.dumps([job.config, job.tracking_uri, job.parent, job.weights], sort_keys=True, default=str)
    runner = _WORKER_RUNNERS.get(key)
    if runner is None:
        from rich.console import Console

        from lamdagent import config as config_mod
        from lamdagent.console import Display, quiet_libraries
        from lamdagent.exploration.seeds import prepare_base
        from lamdagent.exploration.study import Study

        quiet_libraries()
        cfg = config_mod.load_config("", [], base=job.config)
        study = Study(cfg)
        study.connect_judge()
        tracker = Tracker(job.tracking_uri)
        tracker.patience.limit = cfg.tracking.max_outage_seconds
        runner = Runner(study, tracker, job.parent, job.experiment_id, Display(Console(file=io.StringIO())),
                        base=prepare_base(cfg), weights=job.weights)
        _WORKER_RUNNERS[key] = runner
    runner.tracker.log(job.run_id, tags={"worker": f"{socket.gethostname()}:{os.getpid()}"})
    produced = execute(job, runner)
    if produced.model is not None:
        produced.model.path = None  # a folder of this worker's machine, meaningless to the loop
    return produced


def portable(models: list[ModelObject]) -> list[ModelObject]:
    """Copies of models (and their lineage) without local folders: a worker, maybe on another
    machine, resolves each from the tracking server."""
    copies: dict[int, ModelObject] = {}
    for model in walk(models, lambda m: [*m.parents, *([m.adapter_base] if m.adapter_base else [])]):  # parents first
        copies[id(model)] = dataclasses.replace(model, path=None, parents=[copies[id(p)] for p in model.parents],
                                                adapter_base=copies[id(model.adapter_base)] if model.adapter_base else None)
    return [copies[id(m)] for m in models]


def check_placement(execution, tracking_uri: str) -> None:
    """Workers on other machines need a tracking store they can reach: refuse a local one, before any compute."""
    if execution.executor == "ray" and execution.ray_address and urlparse(tracking_uri).scheme in ("sqlite", "file", ""):
        raise UserError(f"execution.ray_address={execution.ray_address!r} joins a cluster, but the tracking store {tracking_uri!r} is local to "
                        "this machine: point MLFLOW_TRACKING_URI at a shared server (docs/tracking-server.md)")


def make_executor(execution) -> Executor:
    """The executor `execution.executor` names (a Ray cluster is joined here, before any compute)."""
    return EXECUTORS[execution.executor](execution)
