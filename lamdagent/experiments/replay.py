"""Replays: re-execute a model's pipeline from its lineage in MLflow, with substitutions.

A replay reads the model's run and its ancestors (the `lamdagent.inputs` edges) from the store and
re-runs each step in order, from the base model up, under the source exploration's config with
every training set scaled (data-size scaling) or the base model swapped (model-size scaling). The
steps are `lamdagent.kind=replay` runs nested under one replay run; a step identical to an earlier
run (same fingerprint) reuses it, as in an exploration.
"""

from __future__ import annotations

from dataclasses import dataclass

from lamdagent import config as config_mod
from lamdagent import tracking as tr
from lamdagent.console import Display
from lamdagent.errors import UserError
from lamdagent.evaluation.evaluator import task_weights
from lamdagent.exploration.runner import Produced, Runner, Step
from lamdagent.exploration.seeds import prepare_base, sets_weights
from lamdagent.exploration.study import Study
from lamdagent.space import ModelObject
from lamdagent.space.lineage import walk
from lamdagent.tracking import Kind, Record, Status, Tracker


@dataclass(frozen=True)
class Substitution:
    """What changes in a replay: every training set's size times `data_scale`, and/or the base model."""

    data_scale: float = 1.0
    base_model: str | None = None

    def label(self) -> str:
        parts = ([f"data x{self.data_scale:g}"] if self.data_scale != 1 else []) + ([f"base={self.base_model}"] if self.base_model else [])
        return ", ".join(parts) or "as recorded"

    def overrides(self, cfg: dict) -> list[str]:
        """Dotlist overrides of the source config."""
        if self.data_scale <= 0:
            raise UserError(f"data scale must be > 0, got {self.data_scale:g}")
        items = []
        if self.data_scale != 1:
            items.append(f"data.train_size={max(1, round(cfg['data']['train_size'] * self.data_scale))}")
            for name, size in cfg["data"].get("train_sizes", {}).items():
                items.append(f"data.train_sizes.{name}={max(1, round(size * self.data_scale))}")
            for name, data in cfg.get("training_data", {}).items():
                items.append(f"training_data.{name}.size={max(1, round(data['size'] * self.data_scale))}")
        if self.base_model:
            items.append(f"base_model={self.base_model}")
        return items


def pipeline_runs(tracker: Tracker, run_id: str) -> list[Record]:
    """The model's run and the runs of all its ancestors, each once, parents before children."""

    def finished(current: str) -> Record:
        record = tracker.record(current)
        if not record.done:
            raise UserError(f"run {current} ({record.name or 'unnamed'}) has status {record.status!r}: only finished models can be replayed or exported")
        return record

    return walk([finished(run_id)], lambda r: [finished(i) for i in r.inputs], key=lambda r: r.run_id)


def source_config(tracker: Tracker, run_id: str) -> tuple[dict, str, str]:
    """(resolved config, parent run id, experiment id) of the run's exploration (or baselines group)."""
    run = tracker.run(run_id)  # RunNotFound: a one-line error
    parent = run.data.tags.get("mlflow.parentRunId")
    if not parent or not run.data.tags.get(tr.tag("pipeline")):
        raise UserError(f"run {run_id!r} is not a model of a LaMDAgent study (no lamdagent.pipeline tag or parent run)")
    while tracker.run(parent).data.tags.get(tr.tag("kind")) == Kind.BASELINE_GROUP:  # a grid's trial: its group's parent holds the config
        parent = tracker.run(parent).data.tags["mlflow.parentRunId"]
    return tracker.exploration_config(parent), parent, run.info.experiment_id


def reference_weights(tracker: Tracker, parent_id: str, experiment_id: str, cfg) -> dict[str, float]:
    """The task weights of the source exploration: w_t = 1 / max r_t over the initial models that set
    them (the base and the specialists, as in the exploration itself)."""
    seeds = [r for r in tracker.children(parent_id, experiment_id) if r.kind == Kind.SEED and r.done and sets_weights(r.name)]
    if not seeds:  # e.g. a baselines group: the study's seeds, from any exploration
        seeds = [r for r in tracker.search(experiment_id, f"tags.`{tr.tag('kind')}` = '{Kind.SEED}'") if r.done and sets_weights(r.name)]
    return task_weights([r.scores for r in seeds], list(cfg.tasks), cfg.task_weights)


def replay(tracker: Tracker, run_id: str, substitution: Substitution, display: Display, *, reuse: bool = True,
           group: str | None = None) -> Produced:
    """Re-execute the pipeline of model run `run_id` with `substitution`; returns the replayed model.
    The steps nest under `group` (a replay run), created here when not given."""
    raw, parent_id, experiment_id = source_config(tracker, run_id)
    records = pipeline_runs(tracker, run_id)
    cfg = config_mod.load_config("", substitution.overrides(raw), base=raw)
    study = Study(cfg)
    study.connect_judge()
    source = records[-1]
    labels = {"replay_of": run_id, "substitution": substitution.label(), "data_scale": f"{substitution.data_scale:g}",
              "base_model": cfg.base_model, "scaling": "model" if substitution.base_model else "data"}
    owns_group = group is None
    if owns_group:
        group = tracker.start_exploration(experiment_id, cfg.name, config_mod.redacted(config_mod.to_dict(cfg)), {},
                                          run_name=f"replay {source.name} ({substitution.label()})", kind=Kind.REPLAYS, tags=labels)
    weights = reference_weights(tracker, parent_id, experiment_id, config_mod.load_config("", [], base=raw))
    runner = Runner(study, tracker, group, experiment_id, display, base=prepare_base(cfg), weights=weights)
    replayed: dict[str, ModelObject] = {}
    produced = None
    for record in records:
        tags = {**labels, "replay_of": record.run_id}
        if not record.action_type:  # the base model
            step = Step.of_base(runner.base, Kind.REPLAY, tags, iteration=record.iteration, name=record.name)
        else:
            action = study.space([replayed[i] for i in record.inputs]).find(record.action_type, record.action)
            action = action and action.with_settings(record.settings)
            if action is None:
                raise UserError(f"cannot replay {record.name}: {record.action_type} {record.action} is not an action of study {cfg.name!r}")
            step = Step.of_action(action, Kind.REPLAY, record.iteration, record.name, tags)
        produced = runner.produce(step, reuse=reuse, finish=True)
        if produced.model is None:
            break
        if not record.action_type:
            produced.model.path = runner.base.path
        replayed[record.run_id] = produced.model
    if owns_group:
        score = produced.model.score if produced.model else None
        tracker.log(group, metrics={"val.score": score} if score is not None else {}, tags={"replayed_run": produced.run_id})
        tracker.close(group, (Status.OK if produced.model else Status.FAILED).mlflow)
    return produced
