"""Ranges and names that the schema's types cannot express, checked before any compute."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lamdagent.actions import ACTION_TYPES
from lamdagent.errors import UserError


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(message)


def validate(cfg) -> None:
    """Ranges and names that the schema's types cannot express."""
    from lamdagent.evaluation.tasks import task_names
    from lamdagent.models.folders import check_base_model

    check_base_model(cfg.base_model)
    _check(cfg.iterations >= 0, f"iterations must be >= 0, got {cfg.iterations}")
    _check(cfg.max_consecutive_failures >= 1, f"max_consecutive_failures must be >= 1, got {cfg.max_consecutive_failures}")
    _check(bool(cfg.tasks), "tasks must list at least one task")
    for task in [*cfg.tasks, *cfg.ood_tasks]:
        _check(task in task_names() or task.endswith((".yaml", ".yml")), f"unknown task {task!r}; expected one of {task_names()}")
    for task in cfg.task_weights:
        _check(task in cfg.tasks, f"task_weights names {task!r}, which is not in tasks {list(cfg.tasks)}")
    task_stems = [Path(t).stem for t in cfg.tasks]
    for name, data in cfg.training_data.items():
        _check(data.source.startswith(("hf:", "json:")), f"training_data.{name}.source must be hf:<id> or json:<path>, got {data.source!r}")
        _check(data.size > 0, f"training_data.{name}.size must be > 0, got {data.size}")
        if data.source.startswith("json:"):
            _check(Path(data.source[5:]).expanduser().exists(), f"training_data.{name}: file {data.source[5:]!r} does not exist")
    for dataset in cfg.datasets:
        _check(dataset in task_stems or dataset == "all" or dataset in cfg.training_data or dataset in task_names(),
               f"unknown dataset {dataset!r}; expected a task name (one of {task_stems} or any task in conf/tasks), 'all' "
               f"or a name in training_data {sorted(cfg.training_data)}")
    for name in cfg.preference_datasets:
        if name.startswith("json:"):
            _check(Path(name[5:]).expanduser().exists(), f"preference dataset file {name[5:]!r} does not exist")
        else:
            _check(name in task_stems or name == "all" or name.startswith("hf:"),
                   f"unknown preference dataset {name!r}; expected a task name {task_stems}, 'all', json:<path> or hf:<id>")
    _check(bool(cfg.actions), "actions must list at least one action type")
    for action in cfg.actions:
        _check(action in ACTION_TYPES, f"unknown action type {action!r}; expected one of {ACTION_TYPES.names()}")
    from lamdagent.agent.llm import CHAT_BACKENDS
    from lamdagent.agent.policies import POLICIES

    POLICIES.check(cfg.agent.policy, "agent.policy")
    CHAT_BACKENDS.check(cfg.agent.backend, "agent.backend")
    _check(cfg.agent.on_endpoint_failure in ("stop", "random"),
           f"agent.on_endpoint_failure must be 'stop' or 'random', got {cfg.agent.on_endpoint_failure!r}")
    _check(cfg.agent.temperature >= 0, f"agent.temperature must be >= 0, got {cfg.agent.temperature}")
    _check(cfg.agent.max_retries >= 0, f"agent.max_retries must be >= 0, got {cfg.agent.max_retries}")
    _check(cfg.agent.request_retries >= 0, f"agent.request_retries must be >= 0, got {cfg.agent.request_retries}")
    for name in ("train_size", "val_size", "test_size"):
        value = getattr(cfg.data, name)
        _check(value > 0, f"data.{name} must be > 0, got {value}")
    sized = [d for d in (cfg.datasets or task_stems) if d != "all" and d not in cfg.training_data]
    for name, value in cfg.data.train_sizes.items():  # a size of a task this study does not train on is unused, as a typo is not
        _check(name in sized or name in task_names(),
               f"data.train_sizes names {name!r}, which is not a task dataset; expected one of this study's {sized} or any task in conf/tasks")
        _check(value > 0, f"data.train_sizes.{name} must be > 0, got {value}")
    batch = cfg.evaluation.batch_size
    _check(batch == "auto" or (isinstance(batch, int) and not isinstance(batch, bool)), f"evaluation.batch_size must be a number or 'auto', got {batch!r}")
    _check(cfg.evaluation.backend in ("hf", "vllm"), f"evaluation.backend must be 'hf' or 'vllm', got {cfg.evaluation.backend!r}")
    if cfg.evaluation.backend == "vllm":
        import importlib.util

        _check(importlib.util.find_spec("vllm") is not None,
               "evaluation.backend=vllm needs vLLM: pip install vllm (a CUDA machine), or use evaluation.backend=hf")
    for name, value in (("evaluation.batch_size", 1 if batch == "auto" else batch), ("agent.memory_max_tokens", cfg.agent.memory_max_tokens),
                        ("agent.request_timeout", cfg.agent.request_timeout)):
        _check(value > 0, f"{name} must be > 0, got {value}")
    CHAT_BACKENDS.check(cfg.judge.backend, "judge.backend")
    _check(cfg.judge.max_retries >= 0, f"judge.max_retries must be >= 0, got {cfg.judge.max_retries}")
    _check(cfg.tracking.max_outage_seconds > 0, f"tracking.max_outage_seconds must be > 0 (seconds), got {cfg.tracking.max_outage_seconds}")
    _check(0 < cfg.lease.heartbeat_seconds < cfg.lease.timeout_seconds,
           f"lease.heartbeat_seconds must be > 0 and < lease.timeout_seconds, got {cfg.lease.heartbeat_seconds} and {cfg.lease.timeout_seconds}")
    _check(cfg.retention.keep_top_k is None or cfg.retention.keep_top_k >= 1, f"retention.keep_top_k must be >= 1 or null, got {cfg.retention.keep_top_k}")
    execution = cfg.execution
    _check(execution.parallel >= 1, f"execution.parallel must be >= 1, got {execution.parallel}")
    # execution.executor names a plug-in of the exploration layer, checked there (EXECUTORS) before any run starts
    _check(execution.num_cpus > 0 and execution.num_gpus >= 0 and (execution.memory_gb is None or execution.memory_gb > 0),
           f"execution resources must be positive, got num_cpus={execution.num_cpus}, num_gpus={execution.num_gpus}, memory_gb={execution.memory_gb}")
    if execution.executor == "ray":
        import importlib.util

        _check(importlib.util.find_spec("ray") is not None, "execution.executor=ray needs Ray: pip install 'lamdagent[cluster]' (or ray)")
    from lamdagent.training.launch import check_launch_config

    check_launch_config(cfg.training)
    for action in ACTION_TYPES:
        _check_settings(action, dataclasses.asdict(getattr(cfg, action)))
    for action in cfg.actions:
        settings = getattr(cfg, action)
        for slot in ACTION_TYPES[action].slots:
            if slot.kind == "hparam":
                values = getattr(settings, slot.name)
                _check(bool(values), f"{action}.{slot.name} must list at least one value")
                for value in values:
                    _check(isinstance(value, (int, float)) and not isinstance(value, bool), f"{action}.{slot.name} values must be numbers, got {value!r}")
    from lamdagent.agent.policies import chat_policies

    if cfg.agent.policy not in chat_policies() or cfg.agent.backend == "local":
        return
    _check(bool(cfg.agent.base_url) or cfg.agent.model.startswith("gpt"), "agent.base_url is required for a non-OpenAI model name")


POSITIVE = {"epochs", "batch_size", "max_length", "r", "alpha"}
NON_NEGATIVE = {"warmup_steps", "weight_decay", "dropout"}


def _check_settings(prefix: str, settings: dict) -> None:
    """Sizes must be positive and rates non-negative, in every action section (LoRA included)."""
    for key, value in settings.items():
        if isinstance(value, dict):
            _check_settings(f"{prefix}.{key}", value)
        elif key in POSITIVE:
            _check(value > 0, f"{prefix}.{key} must be > 0, got {value}")
        elif key in NON_NEGATIVE:
            _check(value >= 0, f"{prefix}.{key} must be >= 0, got {value}")


