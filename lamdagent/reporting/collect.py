"""Everything the report needs, read from the study's experiment."""

from __future__ import annotations

from dataclasses import dataclass, field

from lamdagent import tracking as tr
from lamdagent.tracking import Kind, Record, Tracker

AGENT = "LaMDAgent"


GRIDS = ("ties_grid", "full")  # baselines tuned over a grid: only the best trial stands for each

@dataclass
class Exploration:
    run_id: str
    label: str  # LaMDAgent, random_policy, merges_only
    records: list[Record]  # its action runs, by iteration
    policy: str = "llm"  # agent.policy
    actions: str = ""  # the action types of its space

    @property
    def models(self) -> list[Record]:
        return [r for r in self.records if r.kind == Kind.ACTION and r.done and r.score is not None]


@dataclass
class StudyRuns:
    experiment_id: str
    explorations: list[Exploration]
    baselines: list[Record]  # kind=baseline, finished
    seeds: list[Record]
    replays: list[dict] = field(default_factory=list)  # {source, scale, base_model, run_id, score}
    baseline_names: dict[str, str] = field(default_factory=dict)  # run id -> lamdagent.baseline

    def agent_models(self) -> list[Record]:
        return [m for e in self.explorations if e.label == AGENT for m in e.models]


def _finished(records: list[Record]) -> list[Record]:
    return [r for r in records if r.done]


def collect(tracker: Tracker, study: str) -> StudyRuns:
    """Explorations (the agent's and the exploration baselines), model baselines, seeds and replays."""
    eid = tracker.find_experiment(study)
    kind = tr.tag("kind")
    explorations = []
    for run in sorted(tracker.search_runs(eid, f"tags.`{kind}` = '{Kind.EXPLORATION}'"), key=lambda r: r.info.start_time):
        label = run.data.tags.get(tr.tag("baseline"), AGENT)
        records = [r for r in tracker.children(run.info.run_id, eid) if r.kind == Kind.ACTION]
        params = run.data.params
        explorations.append(Exploration(run.info.run_id, label, records, params.get("agent.policy", "llm"), params.get("actions", "")))
    baseline_runs = tracker.search_runs(eid, f"tags.`{kind}` = '{Kind.BASELINE}'")
    names = {run.info.run_id: run.data.tags.get(tr.tag("baseline"), "") for run in baseline_runs}
    best_trials = {run.info.run_id for run in baseline_runs if run.data.tags.get(tr.tag("best_trial")) == "true"}
    baselines = [r for r in _finished([Record.from_run(run) for run in baseline_runs])
                 if names[r.run_id] not in GRIDS or r.run_id in best_trials]
    seeds = _finished(tracker.search(eid, f"tags.`{kind}` = '{Kind.SEED}'"))
    replays = []
    for run in tracker.search_runs(eid, f"tags.`{kind}` = '{Kind.REPLAYS}'"):
        tags = run.data.tags
        if run.info.status == "FINISHED" and "val.score" in run.data.metrics:
            replays.append({"source": tags.get(tr.tag("replay_of"), ""), "scale": float(tags.get(tr.tag("data_scale"), "1")),
                            "base_model": tags.get(tr.tag("base_model"), ""), "scaling": tags.get(tr.tag("scaling"), "data"),
                            "run_id": tags.get(tr.tag("replayed_run"), ""),
                            "score": run.data.metrics["val.score"]})
    return StudyRuns(eid, explorations, baselines, seeds, replays, names)
