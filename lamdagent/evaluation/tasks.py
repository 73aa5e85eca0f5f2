"""Target tasks as data: where examples come from, how they are prompted, extracted and scored.

A task is a YAML file in `conf/tasks/` (lm-eval style): a source `kind:<ref>` (evaluation/sources/:
synthetic generators, data shipped by PyPI packages, the hub, local files, BFCL, MT-Bench), Jinja
templates over a row, an extractor (evaluation/extraction.py: a registered one or a list of steps)
and a registered metric (evaluation/metrics.py); or an lm-evaluation-harness task
(`lm_eval:<name or YAML>`), whose prompts and scoring are lm-eval's own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from omegaconf import OmegaConf

from lamdagent.errors import UserError
from lamdagent.evaluation.extraction import Extraction
from lamdagent.evaluation.metrics import METRICS
from lamdagent.evaluation.sources import SOURCES
from lamdagent.files import conf_files

SPLITS = ("train", "val", "test")


@dataclass
class TaskSpec:
    """Templates are Jinja over one data row (lm-eval's doc_to_text / doc_to_target convention).
    `gold` renders the answer scored against; a JSON list (`{{ aliases | tojson }}`) gives aliases."""

    name: str
    source: str
    prompt: str = "Question: {{ question }}\nAnswer:"
    target: str = " {{ answer }}"
    gold: str = "{{ answer }}"
    extractor: str | list = "first_line"  # a registered extractor, or a list of steps (lm-eval's filter list; evaluation/extraction.py)
    extractor_args: dict = field(default_factory=dict)  # keyword options of a named extractor, e.g. {letters: ABCDE}
    metric: str = "exact_match"
    metric_args: dict = field(default_factory=dict)  # keyword options of the metric
    max_new_tokens: int = 16
    until: list[str] = field(default_factory=list)  # stop strings (lm-eval's generation_kwargs.until): generation ends at the first
    description: str = ""
    hf_config: str | None = None
    hf_splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "val": "validation", "test": "test"})
    version: str | None = None  # lm-eval's metadata.version: when set, it alone identifies the definition (bump it after editing a metric's code)
    # `lm_eval:` sources only (docs/tasks.md): the filter and metric giving the reward (default: the
    # task's first of each), our split -> lm-eval split name (default: its training/validation/test_split),
    # and at most this many documents per split (lm-eval's --limit)
    lm_eval_filter: str | None = None
    lm_eval_metric: str | None = None
    lm_eval_splits: dict[str, str] = field(default_factory=dict)
    lm_eval_limit: int | None = None


LM_EVAL_FIELDS = ("lm_eval_filter", "lm_eval_metric", "lm_eval_splits", "lm_eval_limit")


@dataclass(frozen=True)
class Example:
    prompt: str
    target: str  # the completion used for training
    gold: str | tuple[str, ...]  # what the extracted answer is scored against


class Task:
    """One target task: examples per split, and the scoring of a generation."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.name = spec.name
        kind, _, ref = spec.source.partition(":")
        if kind not in SOURCES or not ref:
            raise UserError(f"task {spec.name!r}: source {spec.source!r} is not one of {', '.join(SOURCES[n].usage for n in SOURCES.names())}")
        try:
            SOURCES[kind].check(ref)
            self._defined = SOURCES[kind].define(ref, spec) if SOURCES[kind].define else None
        except UserError as err:
            raise UserError(f"task {spec.name!r}: {err}") from None
        if self._defined is None and any(getattr(spec, f) for f in LM_EVAL_FIELDS):
            raise UserError(f"task {spec.name!r}: {', '.join(LM_EVAL_FIELDS)} apply to lm_eval: sources only")
        if self._defined is not None:
            self.spec = spec = self._defined.spec
        try:
            self._extract = Extraction(spec.extractor, spec.extractor_args)
        except UserError as err:
            raise UserError(f"task {spec.name!r}: {err}") from None
        if spec.metric not in METRICS:
            raise UserError(f"task {spec.name!r}: unknown metric {spec.metric!r}; expected one of {METRICS.names()}")
        accepted = list(inspect.signature(METRICS[spec.metric]).parameters)[2:]
        unknown = sorted(set(spec.metric_args) - set(accepted))
        if unknown:
            raise UserError(f"task {spec.name!r}: metric {spec.metric!r} has no option {unknown[0]!r}; it takes {accepted}")
        self._kind, self._ref = kind, ref
        environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        try:
            self._templates = {k: environment.from_string(getattr(spec, k)) for k in ("prompt", "target", "gold")}
        except jinja2.TemplateSyntaxError as err:
            raise UserError(f"task {spec.name!r}: template syntax error: {err.message}") from None

    def definition_key(self) -> str:
        """What identifies this task's scores: its explicit `version`, else a digest of its whole
        definition (source and splits, templates, extractor, metric, generation settings)."""
        if self.spec.version is not None:
            return f"{self.name}@v{self.spec.version}"
        definition = {k: v for k, v in dataclasses.asdict(self.spec).items() if k not in LM_EVAL_FIELDS or v}  # unset: keys as before they existed
        if self._defined is not None:
            definition["source_definition"] = self._defined.key
        spec = json.dumps(definition, sort_keys=True, default=str)
        return f"{self.name}@{hashlib.sha256(spec.encode()).hexdigest()[:16]}"

    def examples(self, split: str, n: int, seed: int = 0) -> list[Example]:
        """The first `n` examples of `split` (train, val or test)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        rows = self.rows(split, n, seed)
        if len(rows) < n:
            raise UserError(f"task {self.name!r}: split {split!r} has {len(rows)} examples, {n} requested")
        return [self.example(row) for row in rows[:n]]

    def score(self, generation: str, gold: str | tuple[str, ...]) -> tuple[str, float]:
        """(extracted answer, reward in [0, 1]) for one generation."""
        if self._defined is not None:
            return self._defined.score(generation, gold)
        answer = self._extract(generation)
        gold_value = gold if isinstance(gold, str) else list(gold)
        return answer, METRICS[self.spec.metric](answer, gold_value, **self.spec.metric_args)

    def example(self, row: dict) -> Example:
        """The example a data row of this task renders to."""
        try:
            prompt, target, gold = (self._templates[k].render(**row) for k in ("prompt", "target", "gold"))
        except jinja2.UndefinedError as err:
            raise UserError(f"task {self.name!r}: a template uses {err.message}; the data has fields {sorted(row)}") from None
        if gold.startswith("["):
            gold = tuple(str(alias) for alias in json.loads(gold))
        return Example(prompt, target, gold)

    def rows(self, split: str, n: int, seed: int = 0) -> list[dict]:
        """Up to `n` data rows of `split`, from the task's source."""
        return SOURCES[self._kind].rows(self._ref, self.spec, split, n, seed)


def _task_files() -> dict[str, Path]:
    """conf/tasks/*.yaml (offline tasks) and conf/tasks/hub/*.yaml (real benchmarks), by name."""
    return conf_files("tasks")


def task_names() -> list[str]:
    """Names of the tasks defined in conf/tasks/."""
    return sorted(_task_files())


def load_task(name: str) -> Task:
    """The task defined in conf/tasks/[hub/]<name>.yaml, or in a YAML file at path `name`."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else _task_files().get(name, Path(f"{name}.yaml"))
    if not path.exists():
        raise UserError(f"unknown task {name!r}; expected one of {task_names()} or a path to a task YAML file")
    from lamdagent.files import load_yaml

    raw = OmegaConf.to_container(load_yaml(path), resolve=True)
    allowed = {f.name for f in dataclasses.fields(TaskSpec)}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise UserError(f"task file {str(path)!r}: unknown key {unknown[0]!r}; expected keys among {sorted(allowed)}")
    try:
        return Task(TaskSpec(**raw))
    except UserError as err:
        raise UserError(f"task file {str(path)!r}: {err}") from None
