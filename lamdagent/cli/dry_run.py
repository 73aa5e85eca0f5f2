"""`--dry-run`: validate a study offline and say what a real run would download, computing nothing."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lamdagent.agent.policies import chat_policies
from lamdagent.agent.prompts import action_type_prompt, check_templates
from lamdagent.exploration.executors import EXECUTORS
from lamdagent.exploration.seeds import DEFAULTS_PREFIX
from lamdagent.exploration.study import Study
from lamdagent.journal import Journal
from lamdagent.models.folders import BUILTIN_PREFIX
from lamdagent.space import ModelObject, fingerprint


def downloads(study: Study) -> list[tuple[str, str]]:
    """(what, where from) for everything a real run would fetch from the Hugging Face hub."""
    cfg = study.cfg
    found = []
    if not cfg.base_model.startswith(BUILTIN_PREFIX) and not Path(cfg.base_model).expanduser().exists():
        found.append(("base model", f"hub model {cfg.base_model}"))
    for task in study.tasks:
        kind, _, ref = task.spec.source.partition(":")
        if kind == "hf":
            config = f" ({task.spec.hf_config})" if task.spec.hf_config else ""
            splits = ", ".join(f"{k}={v}" for k, v in task.spec.hf_splits.items())
            found.append((f"task {task.name}", f"hub dataset {ref}{config}: {splits}"))
    for name, data in cfg.training_data.items():
        if data.source.startswith("hf:") and name in [d.name for d in study.datasets]:
            found.append((f"training data {name}", f"hub dataset {data.source[3:]}" + (f" (file {data.subset})" if data.subset else "")))
    for preferences in study.preference_datasets:
        if preferences.source.startswith("hf:"):
            found.append((f"preference data {preferences.name}", f"hub dataset {preferences.source[3:]}"))
    return found


def dry_run(study: Study, console: Console) -> None:
    """Print the study's objects, the size of its action space, the first prompt and the downloads."""
    cfg = study.cfg
    EXECUTORS.check(cfg.execution.executor, "execution.executor")
    arch = "unknown until downloaded"
    base = ModelObject("base", "-", "-", fingerprint("base", cfg.base_model), "base", arch)
    seeds = [base]
    if cfg.specialists and "sft" in cfg.actions:
        seeds += [ModelObject(f"spec_{t.name}", "-", "-", fingerprint(t.name), f"sft(base, {t.name})", arch, parents=[base])
                  for t in study.tasks]
    seeds += [ModelObject(f"{DEFAULTS_PREFIX}{name}", "-", "-", fingerprint("ft", name), f"sft(base, {name})", arch, parents=[base])
              for name in cfg.seed_models]
    space = study.space(seeds)
    table = Table(title=f"study {cfg.name}: the action space at iteration 1", header_style="bold")
    for column in ("action type", "slots", "valid actions"):
        table.add_column(column)
    for name, action_type in space.action_types.items():
        slots = ", ".join(f"{s.name}:{s.kind}" for s in action_type.slots)
        table.add_row(name, slots, str(len(space.actions(name))))
    console.print(table)
    console.print(f"initial models: {', '.join(m.name for m in seeds)}; datasets: {', '.join(d.describe() for d in study.datasets)}")
    console.print(f"agent: {cfg.agent.policy} policy, backend {cfg.agent.backend}, model {cfg.agent.model}")
    if cfg.agent.policy in chat_policies() and cfg.agent.backend == "openai" and not os.environ.get(cfg.agent.api_key_env):
        console.print(f"[yellow]note: ${cfg.agent.api_key_env} is not set; a real run needs it")
    check_templates()
    journal = Journal(study.task_names, cfg.iterations, seeds)
    console.rule("first prompt of the paper's LLM agent (action type step)" + ("" if cfg.agent.policy == "llm" else
                 f"; the {cfg.agent.policy} policy asks differently"))
    console.print(action_type_prompt(journal, 1, space, space.available_types()), markup=False, highlight=False)
    console.rule("a real run would download")
    for what, where in downloads(study) or [("nothing", "everything is local or built in")]:
        console.print(f"- {what}: {where}", markup=False, highlight=False)
