"""Objects that actions consume: models (each an MLflow run) and training datasets."""

from __future__ import annotations

import dataclasses
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
    parents: list[ModelObject] = field(default_factory=list, repr=False)  # the lineage edges
    cost_seconds: float | None = None  # what making it took
    adapter_base: ModelObject | None = field(default=None, repr=False)  # set when this is a LoRA adapter


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

    def subset(self, fraction: float) -> DatasetObject:
        """The first `fraction` of its examples (per task), as a dataset of its own fingerprint."""
        return dataclasses.replace(self, size=max(1, round(self.size * fraction)))


@dataclass
class ConversationDatasetObject:
    """Training data from chat conversations (ToolACE, Agent-FLAN, WizardLM, or a local file)."""

    name: str
    source: str  # hf:<id> or json:<path>
    size: int
    subset: str | None = None  # a data file of the hub dataset (Agent-FLAN's subsets)
    seed: int = 0

    @property
    def fingerprint(self) -> str:
        return fingerprint("conversations", self.name, self.source, self.subset, self.size, self.seed)

    @property
    def num_examples(self) -> int:
        return self.size

    def rows(self, scale: float = 1.0) -> list[dict[str, str]]:
        from lamdagent.evaluation.sources.conversations import load_conversations

        return load_conversations(self.source, max(1, round(self.size * scale)), self.subset)

    def describe(self) -> str:
        return f"{self.name}: up to {self.size} conversations ({self.source}{'/' + self.subset if self.subset else ''})"

    def first(self, fraction: float) -> ConversationDatasetObject:
        """The first `fraction` of its conversations."""
        return dataclasses.replace(self, size=max(1, round(self.size * fraction)))


@dataclass
class MixtureDatasetObject:
    """Several training datasets as one (the `all` of a study whose candidates are not all tasks)."""

    name: str
    parts: list
    seed: int = 0

    @property
    def fingerprint(self) -> str:
        return fingerprint("mixture", self.name, [part.fingerprint for part in self.parts], self.seed)

    @property
    def num_examples(self) -> int:
        return sum(part.num_examples for part in self.parts)

    def rows(self, scale: float = 1.0) -> list[dict]:
        """Every part's rows, shuffled together deterministically."""
        rows = [row for part in self.parts for row in part.rows(scale)]
        random.Random(f"{self.name}/{self.seed}").shuffle(rows)
        return rows

    def describe(self) -> str:
        return f"{self.name}: {self.num_examples} examples ({', '.join(part.name for part in self.parts)})"

    def subset(self, fraction: float) -> MixtureDatasetObject:
        """The first `fraction` of each part."""
        return dataclasses.replace(self, parts=[head(part, fraction) for part in self.parts])


def reseeded(data, seed: int):
    """The dataset drawn at `seed`: another sample of a task's examples, in another order (a mixture's
    parts too; a conversation file's rows stay the same). At its own seed, the dataset itself."""
    if isinstance(data, MixtureDatasetObject):
        return dataclasses.replace(data, parts=[reseeded(part, seed) for part in data.parts], seed=seed)
    return dataclasses.replace(data, seed=seed)


def head(data, fraction: float):
    """The first `fraction` of any training dataset (a conversation dataset names its data file `subset`)."""
    return data.first(fraction) if isinstance(data, ConversationDatasetObject) else data.subset(fraction)


@dataclass
class PreferenceDatasetObject:
    """Preference pairs (prompt, chosen, rejected) by name.

    Built from task data (`source="tasks"`): chosen = the correct answer, rejected = the answer of
    another example of the same task (a wrong one); the DPO action replaces it with the trained
    model's own wrong answer where it has one (on-policy pairs). Or read from `json:<path>` /
    `hf:<dataset id>` with prompt/chosen/rejected columns.
    """

    name: str
    tasks: list[Task]
    size: int  # pairs per task (or in total, for a file)
    seed: int = 0
    source: str = "tasks"

    @property
    def fingerprint(self) -> str:
        return fingerprint("preferences", self.name, self.source, [t.spec.source for t in self.tasks], self.size, self.seed)

    def describe(self) -> str:
        origin = ", ".join(t.name for t in self.tasks) if self.source == "tasks" else self.source
        return f"{self.name}: {self.size * max(1, len(self.tasks)) if self.source == 'tasks' else self.size} pairs ({origin})"

    def pairs(self) -> list[dict]:
        """Rows of prompt, chosen, rejected; task-built rows also carry `task` and `gold`."""
        if self.source != "tasks":
            return self._read()
        rows = []
        for task in self.tasks:
            examples = task.examples("train", self.size, self.seed)
            rng = random.Random(f"{self.name}/{task.name}/{self.seed}")
            for example in examples:
                wrong = [other for other in examples if other.gold != example.gold]
                rejected = rng.choice(wrong).target if wrong else ""
                rows.append({"prompt": example.prompt, "chosen": example.target, "rejected": rejected, "task": task.name, "gold": example.gold})
        if len(self.tasks) > 1:
            random.Random(f"{self.name}/{self.seed}").shuffle(rows)
        return rows

    def _read(self) -> list[dict]:
        import datasets

        kind, _, ref = self.source.partition(":")
        if kind == "json":
            data = datasets.load_dataset("json", data_files=str(Path(ref).expanduser()), split="train")
        else:
            data = datasets.load_dataset(ref, split="train")
        missing = {"prompt", "chosen", "rejected"} - set(data.column_names)
        if missing:
            from lamdagent.errors import ActionFailed

            raise ActionFailed(f"preference dataset {self.name!r} lacks columns {sorted(missing)}")
        return [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in data.select(range(min(self.size, len(data))))]


TRAINING_DATA = (DatasetObject, ConversationDatasetObject, MixtureDatasetObject, PreferenceDatasetObject)  # what a dataset slot binds
