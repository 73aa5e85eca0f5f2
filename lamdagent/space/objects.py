"""Objects that actions consume: models (each an MLflow run) and training datasets."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from lamdagent.evaluation.tasks import Task


def fingerprint(*parts) -> str:
    """A stable short hash of JSON-serialisable parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class ModelObject:
    """A model in the pool: a seed or the output of an earlier iteration, backed by an MLflow run."""

    name: str  # what the agent calls it: base, spec_arith, m3
    run_id: str
    model_id: str  # the MLflow LoggedModel id
    fingerprint: str
    pipeline: str  # e.g. sft(ties(spec_arith, spec_facts), all)
    arch: str  # merge-compatibility signature
    scores: dict[str, float] = field(default_factory=dict)  # val.<task>
    score: float | None = None  # val.score
    iteration: int = 0
    path: Path | None = None  # local folder, resolved when an action needs it


@dataclass
class DatasetObject:
    """Training data by name: one task's train split, or the union of several (`all`)."""

    name: str
    tasks: list[Task]
    size: int  # examples per task
    seed: int = 0

    @property
    def fingerprint(self) -> str:
        return fingerprint("dataset", self.name, [t.spec.source for t in self.tasks], self.size, self.seed)

    @property
    def num_examples(self) -> int:
        return self.size * len(self.tasks)

    def rows(self, scale: float = 1.0) -> list[dict[str, str]]:
        """Prompt/completion pairs for SFT, shuffled deterministically when tasks are mixed."""
        n = max(1, round(self.size * scale))
        rows = [{"prompt": ex.prompt, "completion": ex.target} for task in self.tasks for ex in task.examples("train", n, self.seed)]
        if len(self.tasks) > 1:
            random.Random(f"{self.name}/{self.seed}").shuffle(rows)
        return rows

    def describe(self) -> str:
        return f"{self.name}: {self.num_examples} examples ({', '.join(t.name for t in self.tasks)})"
