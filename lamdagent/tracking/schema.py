"""The MLflow schema of a study (docs/tracking.md): experiment naming, the `lamdagent.` tags, the
kinds of runs and their statuses, artifact paths, and a run read back as a Record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum

PREFIX = "lamdagent."
CONFIG_ARTIFACT = "config.json"
MEMORY_ARTIFACT = "agent/memory.txt"
FREED = "freed"  # lamdagent.weights: the retention policy deleted this model's weight files
STUDY_MODELS = "study-models"  # lamdagent.kind of a study's registered model


class Kind(StrEnum):
    """`lamdagent.kind`: what a run is."""

    EXPLORATION = "exploration"  # a parent run: one exploration of a study (the agent's, or a baseline policy's)
    SEED = "seed"  # nested: an initial model (the base, a specialist)
    ACTION = "action"  # nested: one iteration's action and the model it produced
    BASELINES = "baselines"  # a parent run: a group of baselines
    BASELINE = "baseline"  # nested: one baseline model (base, specialist, full, a TIES grid trial)
    BASELINE_GROUP = "baseline_group"  # nested under baselines: the TIES grid, holding its trials
    REPLAYS = "replays"  # a parent run: one replay of a pipeline with a substitution
    REPLAY = "replay"  # nested: one replayed step
    REPORT = "report"  # a parent run holding the report's files
    COMPARISON = "comparison"  # a parent run of the search benchmark (compare-policies): its figures and table
    SCREENING = "screening"  # nested: the evidence about one candidate dataset (a short fine-tune, per-task loss changes)
    LAUNCHER = "launcher"  # the run `mlflow run .` creates, pointing at the exploration it started


class Status(StrEnum):
    """`lamdagent.status` of a nested run."""

    RUNNING = "running"  # started, not finished (left so by a killed process until resume marks it killed)
    OK = "ok"  # the model was built, evaluated and registered
    CACHED = "cached"  # the model of an earlier identical run, reused
    FAILED = "failed"  # the action failed; the run records why
    KILLED = "killed"  # interrupted; its iteration is redone on resume

    @property
    def mlflow(self) -> str:
        """MLflow's status of a run that ended with this status."""
        return {Status.FAILED: "FAILED", Status.KILLED: "KILLED"}.get(self, "FINISHED")


DONE = (Status.OK, Status.CACHED)  # statuses of a run that holds a usable model


def tag(name: str) -> str:
    return PREFIX + name


def experiment_name(study: str) -> str:
    """A study's experiment."""
    return f"lamdagent/{study}"


@dataclass
class Record:
    """One nested run, as the agent, the report and resume see it."""

    run_id: str
    kind: str
    iteration: int
    name: str
    status: str
    action_type: str = ""
    action: dict = field(default_factory=dict)  # slot -> name
    pipeline: str = ""
    fingerprint: str = ""
    model_id: str = ""
    arch: str = ""
    inputs: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # val.<task>
    score: float | None = None
    error: str = ""
    source_run: str = ""
    cost_seconds: float | None = None
    adapter_of: str = ""  # run id of the model a LoRA adapter applies to
    memory_seq: int = 0  # the order in which the agent's memory was rewritten (rounds of k > 1 finish in any order)
    weights: str = ""  # `freed` once the retention policy deleted the model's weight files
    evaluation: dict[str, str] = field(default_factory=dict)  # task -> the definition its val.<task> was scored under
    settings: dict = field(default_factory=dict)  # the action type's settings where the step overrode the study's (a tuning grid's trial)
    pool: list[str] | None = None  # the names of the models the policy saw when it chose this action (None: not recorded)
    fallbacks: list[dict] = field(default_factory=list)  # the agent's fallbacks in this decision: step, cause, detail
    origin: str = ""  # who chose the action in a policy of two minds (hybrid: accepted, override, refused; guided: first, other; proposal: not asked)
    model_cost_seconds: float | None = None  # what making the model took (a reused model: its source's cost)
    step_seconds: float | None = None  # what the step took in this run: building or reusing, evaluating, logging
    compute_seconds: float | None = None  # what the step costs without the cache (a reused model: what making it took)
    compute_flops: float | None = None  # the same in floating-point operations (None: a run from before they were counted)
    screen: dict[str, float] = field(default_factory=dict)  # a data screening's screen.<task>: the loss drop on the task's validation answers

    @property
    def done(self) -> bool:
        """Whether the run holds a usable model."""
        return self.status in DONE

    @property
    def flops_missing(self) -> bool:
        """Its compute was measured in seconds only: a run logged before operations were counted (a run
        that measured nothing, e.g. interrupted, counts nothing in either unit)."""
        return self.compute_seconds is not None and self.compute_flops is None

    @classmethod
    def from_run(cls, run) -> Record:
        """A Record of an MLflow Run. A run whose results were written but that never ended (its
        process died between the two writes) is an interrupted run: status `running`."""
        record = cls.from_data(run.info.run_id, run.data.tags, run.data.metrics)
        if run.info.status == "RUNNING" and record.status != Status.RUNNING:
            record.status = Status.RUNNING
        return record

    @classmethod
    def from_data(cls, run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> Record:
        return cls(
            run_id=run_id,
            kind=tags.get(tag("kind"), ""),
            iteration=int(tags.get(tag("iteration"), 0)),
            name=tags.get(tag("name"), ""),
            status=tags.get(tag("status"), ""),
            action_type=tags.get(tag("action_type"), ""),
            action=json.loads(tags.get(tag("action"), "{}")),
            pipeline=tags.get(tag("pipeline"), ""),
            fingerprint=tags.get(tag("fingerprint"), ""),
            model_id=tags.get(tag("model_id"), ""),
            arch=tags.get(tag("arch"), ""),
            inputs=json.loads(tags.get(tag("inputs"), "[]")),
            scores={k[len("val.") :]: v for k, v in metrics.items() if k.startswith("val.") and k != "val.score"},
            score=metrics.get("val.score"),
            error=tags.get(tag("error"), ""),
            source_run=tags.get(tag("source_run"), ""),
            cost_seconds=metrics.get("cost.seconds"),
            adapter_of=tags.get(tag("adapter_of"), ""),
            memory_seq=int(tags.get(tag("memory_seq"), 0)),
            weights=tags.get(tag("weights"), ""),
            evaluation=json.loads(tags.get(tag("evaluation"), "{}")),
            settings=json.loads(tags.get(tag("settings"), "{}")),
            pool=json.loads(tags[tag("pool")]) if tag("pool") in tags else None,
            fallbacks=json.loads(tags.get(tag("fallbacks"), "[]")),
            origin=tags.get(tag("origin"), ""),
            model_cost_seconds=metrics.get("model.cost_seconds", metrics.get("cost.seconds")),
            step_seconds=metrics.get("step.seconds", metrics.get("cost.seconds")),
            compute_seconds=metrics.get("compute.seconds", metrics.get("step.seconds", metrics.get("cost.seconds"))),
            compute_flops=metrics.get("compute.flops"),
            screen={k[len("screen.") :]: v for k, v in metrics.items() if k.startswith("screen.")},
        )
