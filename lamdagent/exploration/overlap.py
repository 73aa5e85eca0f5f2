"""Contamination check: training data that holds a target task's validation or test examples.

The agent sees validation scores only and the report's test split stays out of the search, but a
candidate dataset that contains evaluation prompts (a copy of the benchmark, or a world whose
train and test draw from a small pool) still lets a pipeline win by memorising them. Before an
exploration starts, every training dataset is compared with each task's validation and test
prompts (lower case, punctuation and spacing ignored): a prompt counts when it equals a training
prompt or stands inside one (a question embedded in a chat conversation)."""

from __future__ import annotations

import re

from lamdagent.exploration.study import Study


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def overlaps(study: Study) -> dict[str, dict[str, int]]:
    """Training dataset -> {"<task>/<split>": evaluation prompts it holds}, only where some are held.
    A dataset that cannot be read is left out here: the action that trains on it fails and says why."""
    cfg = study.cfg
    evaluation = {}
    for task in study.tasks:
        for split, size in (("val", cfg.data.val_size), ("test", cfg.data.test_size)):
            evaluation[f"{task.name}/{split}"] = [normalised(ex.prompt) for ex in task.examples(split, size, cfg.seed)]
    found: dict[str, dict[str, int]] = {}
    for dataset in study.datasets:
        try:
            rows = dataset.rows()
        except Exception:  # bad or unreachable data: an action's failure to report, not a reason to stop now
            continue
        texts = [normalised(row["prompt"] + " " + row["completion"]) for row in rows]
        prompts = {normalised(row["prompt"]) for row in rows}
        for where, eval_prompts in evaluation.items():
            held = sum(1 for p in eval_prompts if p in prompts or (len(p) >= 20 and any(p in text for text in texts)))
            if held:
                found.setdefault(dataset.name, {})[where] = held
    return found


def describe(found: dict[str, dict[str, int]], study: Study) -> list[str]:
    """One console line per dataset that holds evaluation prompts."""
    sizes = {"val": study.cfg.data.val_size, "test": study.cfg.data.test_size}
    return [f"training data {name!r} holds " + ", ".join(f"{n}/{sizes[w.split('/')[1]]} {w.replace('/', ' ')} prompts" for w, n in held.items())
            for name, held in found.items()]
