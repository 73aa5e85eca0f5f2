"""`lm_eval:<task name or YAML path>`: a task of lm-evaluation-harness, defined by the library itself
(imported here only, when such a task is loaded).

From lm-eval: the documents of each split, the prompt of each (doc_to_text with the task's few-shot
context, built by lm-eval's `build_all_requests` as for the split it evaluates: few-shot seed 1234,
its default, no chat template), the generation settings (generation_kwargs: `until`, `max_gen_toks`),
and the reward of a generation: one of the task's filter pipelines, then its `process_results`, one
metric (`lm_eval_filter` / `lm_eval_metric` in the task YAML; default: the first of each). The score
is the mean of the rewards, so the metric must aggregate by mean. Only `generate_until` tasks.
Splits: train/val/test are lm-eval's training/validation/test_split unless `lm_eval_splits` maps
them (a name, or `name[a:b]` for a slice of its documents); `lm_eval_limit` takes at most that many
documents of each (lm-eval's --limit). A row is
{prompt, target (target_delimiter + doc_to_target), doc (the JSON the gold carries)}.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import hashlib
import importlib.util
import io
import json
import re
from pathlib import Path

from lamdagent.errors import UserError
from lamdagent.evaluation.sources.base import SOURCES, Defined, Source

FEWSHOT_SEED = 1234  # lm-eval's default fewshot_random_seed
SPLIT_KEYS = {"train": "training_split", "val": "validation_split", "test": "test_split"}
# what lm-eval defines for these tasks; a task YAML setting them otherwise is an error
TEMPLATES = {"prompt": "{{ prompt }}", "target": "{{ target }}", "gold": "{{ doc }}"}
DEFINED_BY_LM_EVAL = ("prompt", "target", "gold", "extractor", "extractor_args", "metric", "metric_args", "max_new_tokens", "until",
                      "hf_config", "hf_splits")


def _require() -> None:
    if importlib.util.find_spec("lm_eval") is None:
        raise UserError("lm_eval: tasks need lm-evaluation-harness: pip install lm_eval (make install adds it)")


@functools.lru_cache(maxsize=1)
def _library_tasks():
    """lm-eval's TaskManager over the tasks it ships (~10 s to index, once per process)."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def _is_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml"))


def config(ref: str) -> tuple[str, dict]:
    """(what lm-eval's TaskManager.load takes, the task's YAML config with its includes merged) for
    a task name or a YAML path; a one-line UserError for an unknown name or a missing file."""
    _require()
    if not _is_path(ref):
        return _config(ref, None)
    path = Path(ref).expanduser().resolve()
    if not path.is_file():
        raise UserError(f"lm-eval task file {ref!r} does not exist")
    return _config(str(path), path.stat().st_mtime_ns)


def check(ref: str) -> None:
    config(ref)


@functools.lru_cache(maxsize=64)
def _config(ref: str, stamp: int | None) -> tuple[str, dict]:  # stamp: the file's mtime, so an edit is read again
    if stamp is not None:
        from lm_eval.tasks import TaskManager

        path = Path(ref)
        index = TaskManager(include_path=str(path.parent), include_defaults=False).task_index
        cfg = next((e.cfg for e in index.values() if e.yaml_path and Path(e.yaml_path).resolve() == path and e.cfg), None)
        if not cfg or "task" not in cfg:
            raise UserError(f"{ref!r} is not an lm-eval task YAML (a mapping with a `task:` name that lm-eval can read)")
        return ref, cfg
    manager = _library_tasks()
    if ref in manager.all_groups or ref in manager.all_tags:
        raise UserError(f"lm-eval name {ref!r} is a group or tag of tasks; name one of its tasks")
    entry = manager.task_index.get(ref)
    if entry is None:
        close = difflib.get_close_matches(ref, manager.all_subtasks, n=3)
        raise UserError(f"unknown lm-eval task {ref!r}; expected a task name of lm-evaluation-harness"
                        f"{' (close: ' + ', '.join(close) + ')' if close else ''} or a path to an lm-eval task YAML")
    return ref, dict(entry.cfg or {"task": ref})


def _digest(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _built(load: str, digest: str):
    """lm-eval's task object (its data read: local files, or the hub's cache); one per definition."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_defaults=False) if _is_path(load) else _library_tasks()
    try:
        (task,) = manager.load(load)["tasks"].values()
    except Exception as err:  # lm-eval raises many kinds; the first line says what
        raise UserError(f"lm-eval could not load task {load!r}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    return task


def _task(ref: str, metric: str):
    """The built task, its metric checked to aggregate by mean (our score is the mean reward)."""
    from lm_eval.api.metrics import mean

    load, cfg = config(ref)
    task = _built(load, _digest(cfg))
    if task.OUTPUT_TYPE != "generate_until":
        raise UserError(_output_type_error(cfg.get("task", ref), task.OUTPUT_TYPE))
    if task.aggregation().get(metric) is not mean:
        raise UserError(f"lm-eval task {cfg['task']!r}: metric {metric!r} does not aggregate by mean; a reward must be a per-document value averaged")
    return task


def _output_type_error(name: str, output_type: str) -> str:
    return f"lm-eval task {name!r} is {output_type}; only generate_until tasks can be targets (no log-likelihood scoring here)"


def _ensemble(task, name: str):
    """The task's filter pipeline `name`, built from its config as lm-eval's ConfigurableTask builds
    its own (public config and build_filter_ensemble; the task's built pipelines are private)."""
    from lm_eval.filters import build_filter_ensemble

    for entry in task.config.filter_list or [{"name": "none", "filter": [{"function": "take_first"}]}]:
        if entry["name"] == name:
            return build_filter_ensemble(name, [[f["function"], {k: v for k, v in f.items() if k != "function"}] for f in entry["filter"]])
    raise UserError(f"lm-eval task {task.config.task!r} has no filter {name!r}")


def _split(expression: str) -> tuple[str, int, int | None]:
    """(split name, first, end) of `name` or `name[a:b]` (a slice of documents, as in hf_splits)."""
    match = re.fullmatch(r"([\w.-]+)(?:\[(\d*):(\d*)\])?", expression.strip())
    if match is None:
        raise UserError(f"lm_eval_splits: {expression!r} is not a split name or name[a:b]")
    name, start, stop = match.groups()
    return name, int(start or 0), int(stop) if stop else None


def rows(ref: str, spec, split: str, n: int, seed: int) -> list[dict]:
    """The first `n` documents of the lm-eval split mapped to `split`, with the prompts lm-eval builds."""
    task = _task(ref, spec.lm_eval_metric)
    name = task.config.task
    if not spec.lm_eval_splits.get(split):
        raise UserError(f"lm-eval task {name!r} names no {SPLIT_KEYS[split]}; map one with lm_eval_splits: {{{split}: <split name>}}")
    lm_split, start, stop = _split(spec.lm_eval_splits[split])
    if lm_split not in task.dataset:
        raise UserError(f"lm-eval task {name!r} has no split {lm_split!r}; its data has {sorted(task.dataset)}")
    task.set_config("test_split", lm_split)  # lm-eval builds requests for its test split (else validation)
    size = len(task.eval_docs)  # after the task's process_docs
    start, stop = min(start, size), min(size if stop is None else stop, size)
    stop = min(stop, start + n, start + spec.lm_eval_limit if spec.lm_eval_limit is not None else stop)
    if stop <= start:
        return []
    task.set_fewshot_seed(FEWSHOT_SEED)
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        task.build_all_requests(samples=list(range(start, stop)))  # lm-eval's --samples (from 0: its --limit)
    out = []
    for instance in task.instances:
        target = task.doc_to_target(instance.doc)
        target = target[0] if isinstance(target, list) else target
        out.append({"prompt": instance.arguments[0], "target": f"{task.config.target_delimiter}{target}",
                    "doc": json.dumps(instance.doc, default=str)})
    return out


def _generation(cfg: dict) -> tuple[list[str], int]:
    """(until, max_gen_toks) as lm-eval's backends take them from the task's generation_kwargs."""
    from lm_eval.defaults import DEFAULT_MAX_GEN_TOKS
    from lm_eval.models.utils import normalize_gen_kwargs

    delimiter = cfg.get("fewshot_delimiter", "\n\n")
    kwargs = normalize_gen_kwargs(dict(cfg.get("generation_kwargs") or {"until": [delimiter]}), DEFAULT_MAX_GEN_TOKS)
    until = kwargs.get("until")
    until = [delimiter] if until is None else [until] if isinstance(until, str) else list(until)
    return until, int(kwargs["max_gen_toks"])


def define(ref: str, spec) -> Defined:
    """The task as lm-eval defines it, its filter, metric and splits checked from the YAML (no data read)."""
    load, cfg = config(ref)
    name = cfg.get("task", ref)
    output_type = cfg.get("output_type", "generate_until")
    if output_type != "generate_until":
        raise UserError(_output_type_error(name, output_type))
    if cfg.get("repeats", 1) != 1:
        raise UserError(f"lm-eval task {name!r} repeats each request {cfg['repeats']} times; only single greedy generations are scored here")
    filters = [f["name"] for f in cfg.get("filter_list") or []] or ["none"]
    metrics = [m["metric"] for m in cfg.get("metric_list") or []] or ["exact_match"]
    for what, chosen, known in (("filter", spec.lm_eval_filter, filters), ("metric", spec.lm_eval_metric, metrics)):
        if chosen is not None and chosen not in known:
            raise UserError(f"lm-eval task {name!r} has no {what} {chosen!r}; expected one of {known}")
    unknown = sorted(set(spec.lm_eval_splits) - set(SPLIT_KEYS))
    if unknown:
        raise UserError(f"lm_eval_splits: {unknown[0]!r} is not one of {sorted(SPLIT_KEYS)}")
    for expression in spec.lm_eval_splits.values():
        _split(expression)
    until, max_new_tokens = _generation(cfg)
    splits = {ours: spec.lm_eval_splits.get(ours) or cfg.get(key) for ours, key in SPLIT_KEYS.items()}
    completed = dataclasses.replace(spec, **TEMPLATES, until=until, max_new_tokens=max_new_tokens,
                                    lm_eval_filter=spec.lm_eval_filter or filters[0], lm_eval_metric=spec.lm_eval_metric or metrics[0],
                                    lm_eval_splits={ours: split for ours, split in splits.items() if split})
    defaults = type(spec)(name=spec.name, source=spec.source)
    for field in DEFINED_BY_LM_EVAL:
        if getattr(spec, field) not in (getattr(defaults, field), getattr(completed, field)):
            raise UserError(f"`{field}` is defined by lm-eval for an lm_eval: source; remove it from the task YAML")
    filter_name, metric = completed.lm_eval_filter, completed.lm_eval_metric

    def score(generation: str, gold) -> tuple[str, float]:
        """lm-eval's verdict on one generation: the filter pipeline, then process_results' metric."""
        from lm_eval.api.instance import Instance

        doc = json.loads(gold if isinstance(gold, str) else gold[0])
        task = _task(ref, metric)
        instance = Instance("generate_until", doc, ("", {}), 0, resps=[generation])
        _ensemble(task, filter_name).apply([instance])
        answer = instance.filtered_resps[filter_name]
        return str(answer), float(task.process_results(doc, [answer])[metric])

    return Defined(completed, score, _digest(cfg))


SOURCES.add("lm_eval", Source("lm_eval:<task name or YAML>", rows, check, define))
