"""What the benchmarks share: options, results with targets, a study in a scratch store, timing."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable


@dataclass
class Options:
    quick: bool = False  # tiny sizes: checks that a benchmark runs, its figures mean nothing
    repeats: int = 3
    out: Path = Path("benchmarks/results")


@dataclass
class Check:
    """One measured figure and, when it has one, its target."""

    metric: str
    value: float
    unit: str = ""
    target: str = ""  # e.g. "<= 0.05"; empty for figures that are reported only
    passed: bool | None = None


@dataclass
class Result:
    name: str
    title: str
    checks: list[Check] = field(default_factory=list)
    details: dict = field(default_factory=dict)  # raw timings, sizes, settings
    seconds: float = 0.0

    def check(self, metric: str, value: float, unit: str = "", *, at_most: float | None = None, below: float | None = None,
              at_least: float | None = None) -> Check:
        """Record a figure; with a bound, whether it meets its target."""
        target, passed = "", None
        if at_most is not None:
            target, passed = f"<= {at_most:g}", value <= at_most
        elif below is not None:
            target, passed = f"< {below:g}", value < below
        elif at_least is not None:
            target, passed = f">= {at_least:g}", value >= at_least
        check = Check(metric, float(value), unit, target, passed)
        self.checks.append(check)
        return check

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    def to_json(self) -> dict:
        return {"name": self.name, "title": self.title, "passed": self.passed, "seconds": self.seconds,
                "checks": [asdict(c) for c in self.checks], "details": self.details}

    def write(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{self.name}.json"
        path.write_text(json.dumps(self.to_json(), indent=2, default=str))
        return path


def timed(call: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Scratch:
    """A study (the demo unless told) with a fresh sqlite store, an exploration run and a Runner."""

    def __init__(self, study: str = "demo", overrides: list[str] = (), root: Path | None = None):
        from rich.console import Console

        from lamdagent.config import load_config
        from lamdagent.console import Display
        from lamdagent.exploration.runner import Runner
        from lamdagent.exploration.seeds import prepare_base
        from lamdagent.exploration.study import Study
        from lamdagent.tracking import Tracker, experiment_name

        self.root = Path(root or tempfile.mkdtemp(prefix="lamdagent-bench-"))
        self.cfg = load_config(study, list(overrides))
        self.study = Study(self.cfg)
        self.tracker = Tracker(f"sqlite:///{self.root / 'mlflow.db'}")
        self.artifacts = self.root / "artifacts"  # not ./mlruns, MLflow's default beside a sqlite store
        self.tracker.client.create_experiment(experiment_name(self.cfg.name), artifact_location=self.artifacts.as_uri())
        self.experiment_id = self.tracker.experiment(self.cfg.name)
        self.parent = self.tracker.start_exploration(self.experiment_id, self.cfg.name, {}, {})
        self.runner = Runner(self.study, self.tracker, self.parent, self.experiment_id, Display(Console(quiet=True)), base=prepare_base(self.cfg),
                             weights={t: 1.0 for t in self.study.task_names})

    def base(self):
        """The study's base model as a model object: a run of its own, as in an exploration (made once)."""
        if getattr(self, "_base", None) is None:
            from lamdagent.exploration.runner import Step
            from lamdagent.tracking import Kind

            self._base = self.runner.produce(Step.of_base(self.runner.base, Kind.SEED), finish=True).model
            self._base.path = self.runner.base.path  # the base's folder, as an exploration's seeds have it
        return self._base


def quiet() -> None:
    """The libraries' chatter off, as the CLI has it."""
    from lamdagent.console import quiet_libraries

    quiet_libraries()
