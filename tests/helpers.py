"""Small builders shared by the tests: tiny models and objects, made for real."""

from __future__ import annotations

from pathlib import Path

from lamdagent.actions import ACTION_TYPES, ActionContext
from lamdagent.evaluation.tasks import load_task
from lamdagent.models.folders import architecture, resolve_base_model
from lamdagent.space import DatasetObject, ModelObject, fingerprint


def base_model() -> ModelObject:
    path = resolve_base_model("builtin:tiny-llama")
    return ModelObject("base", "run-base", "m-base", fingerprint("base"), "base", architecture(path), path=path)


def dataset(task: str = "arith", size: int = 32) -> DatasetObject:
    return DatasetObject(task, [load_task(task)], size)


def context(out_dir: Path, seed: int = 0) -> ActionContext:
    return ActionContext(out_dir, seed, base_model().path)


def trained(tmp_path: Path, task: str, lr: float = 3e-3, epochs: float = 1, size: int = 32) -> ModelObject:
    """A small specialist fine-tuned from the tiny base for real."""
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(learning_rate=[lr], epochs=epochs))
    out = sft.run({"model": base_model(), "dataset": dataset(task, size), "learning_rate": lr}, context(tmp_path / task))
    return ModelObject(f"spec_{task}", f"run-{task}", f"m-{task}", fingerprint(task), f"sft(base, {task})",
                       architecture(out.model_dir), path=out.model_dir, parents=[base_model()])
