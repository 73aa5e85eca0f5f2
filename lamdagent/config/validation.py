"""Names and cross-references that the schema's types and its sections' own checks cannot
express (tasks, datasets, plug-ins), checked before any compute."""

from __future__ import annotations

from pathlib import Path

from lamdagent.actions import ACTION_TYPES
from lamdagent.errors import require as _check


def validate(cfg) -> None:
    """Names and cross-references, then each section's own check."""
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
    for name in cfg.seed_models:
        _check(name in (cfg.datasets or [*task_stems, "all"]),
               f"seed_models names {name!r}, which is not a dataset of this study; expected one of {list(cfg.datasets or [*task_stems, 'all'])}")
    _check(not cfg.seed_models or "sft" in cfg.actions, f"seed_models {list(cfg.seed_models)} are fine-tunes: they need 'sft' in actions")
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
    from lamdagent.agent.policies import POLICIES, chat_policies

    POLICIES.check(cfg.agent.policy, "agent.policy")
    CHAT_BACKENDS.check(cfg.agent.backend, "agent.backend")
    CHAT_BACKENDS.check(cfg.judge.backend, "judge.backend")
    sections = (cfg.agent, cfg.judge, cfg.data, cfg.evaluation, cfg.lease, cfg.tracking, cfg.retention, cfg.execution, cfg.training, cfg.budget,
                cfg.screening)
    for section in sections:
        section.check()  # each section checks its own ranges (config/schema.py)
    sized = [d for d in (cfg.datasets or task_stems) if d != "all" and d not in cfg.training_data]
    for name in cfg.data.train_sizes:  # a size of a task this study does not train on is unused, as a typo is not
        _check(name in sized or name in task_names(),
               f"data.train_sizes names {name!r}, which is not a task dataset; expected one of this study's {sized} or any task in conf/tasks")
    for name, action_type in ACTION_TYPES.items():  # every section, used or not: a typo in one is still a typo
        action_type.check(getattr(cfg, name), name)
    if cfg.agent.policy in chat_policies() and cfg.agent.backend != "local":
        _check(bool(cfg.agent.base_url) or cfg.agent.model.startswith("gpt"), "agent.base_url is required for a non-OpenAI model name")
