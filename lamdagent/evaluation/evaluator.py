"""Evaluate a model on target tasks and combine the rewards into the multi-task score."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from lamdagent.evaluation.generation import generate_greedy, resolve_batch_size
from lamdagent.evaluation.tasks import Task
from lamdagent.models.chat_template import chat_prompt


@dataclass
class EvalResult:
    split: str
    scores: dict[str, float]  # task -> mean reward r_t over the scored examples
    predictions: dict[str, list[dict]] = field(default_factory=dict)  # task -> rows
    unscored: dict[str, int] = field(default_factory=dict)  # task -> examples no score could be given (an unparseable judgement)


def evaluate(
    model,
    tokenizer,
    tasks: list[Task],
    split: str,
    n: int,
    *,
    seed: int = 0,
    batch_size: int | str = 64,
    on_progress: Callable[[int], None] | None = None,
    generate: Callable | None = None,
    chat_template: bool = False,
) -> EvalResult:
    """Score `model` on the first `n` examples of `split` of each task (greedy, batched).
    `generate(prompts, max_new_tokens, on_batch, stop_strings=...)` replaces the HF backend (e.g. vllm_generator);
    `batch_size` may be `auto` (see resolve_batch_size)."""
    scores, predictions, unscored = {}, {}, {}
    for task in tasks:
        examples = task.examples(split, n, seed)
        prompts = [chat_prompt(tokenizer, ex.prompt) if chat_template else ex.prompt for ex in examples]
        if generate is not None:
            generations = generate(prompts, task.spec.max_new_tokens, on_progress, stop_strings=task.spec.until)
        else:
            size = resolve_batch_size(batch_size, model, max_tokens=task.spec.max_new_tokens + max(map(len, prompts), default=0) // 2)
            generations = generate_greedy(model, tokenizer, prompts, max_new_tokens=task.spec.max_new_tokens, batch_size=size,
                                          on_batch=on_progress, stop_strings=task.spec.until)
        rows = []
        for ex, prompt, generation in zip(examples, prompts, generations):
            answer, reward = task.score(generation, ex.gold)
            gold = ex.gold if isinstance(ex.gold, str) else list(ex.gold)
            rows.append({"prompt": prompt, "generation": generation, "answer": answer, "gold": gold, "reward": reward})
        rewards = [r["reward"] for r in rows if not math.isnan(r["reward"])]
        scores[task.name] = sum(rewards) / len(rewards) if rewards else 0.0
        unscored[task.name] = len(rows) - len(rewards)
        predictions[task.name] = rows
    return EvalResult(split, scores, predictions, unscored)


def task_weights(reference_scores: list[dict[str, float]], tasks: list[str], overrides: dict[str, float] | None = None) -> dict[str, float]:
    """w_t = 1 / max r_t over the reference models (the seed models), unless given in `overrides`.

    A task no reference model scores on gets weight 1 so that it still counts.
    """
    weights = {}
    for task in tasks:
        best = max((scores.get(task, 0.0) for scores in reference_scores), default=0.0)
        weights[task] = 1.0 / best if best > 0 else 1.0
    weights.update(overrides or {})
    return weights


def weighted_score(scores: dict[str, float], weights: dict[str, float]) -> float:
    """The paper's multi-task score: sum_t w_t * r_t."""
    return sum(weights[task] * scores[task] for task in weights)
