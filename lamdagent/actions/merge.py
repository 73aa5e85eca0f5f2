"""Model merging through mergekit's Python API (TIES, as in the paper)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lamdagent.actions._base import ActionContext, ActionOutput, ActionType, Slot, register_action
from lamdagent.errors import ActionFailed


@dataclass
class TiesSettings:
    weight: list = field(default_factory=lambda: [0.5])
    density: list = field(default_factory=lambda: [0.5])


@register_action
class Ties(ActionType):
    """TIES-merging of two models' task vectors against the study's base model.

    `weight` is model_a's share; model_b gets 1 - weight.
    """

    name = "ties"
    description = "TIES-merging of two models (task vectors relative to the base model)"
    slots = (
        Slot("model_a", "model", "first model to merge"),
        Slot("model_b", "model", "second model to merge"),
        Slot("weight", "hparam", "model_a's share of the merge (model_b gets 1 - weight)"),
        Slot("density", "hparam", "fraction of each task vector kept"),
    )
    Settings = TiesSettings

    def accepts(self, bindings) -> bool:
        a, b = bindings["model_a"], bindings["model_b"]
        return a.fingerprint != b.fingerprint and a.arch == b.arch

    def run(self, bindings, ctx: ActionContext) -> ActionOutput:
        from mergekit.config import MergeConfiguration
        from mergekit.merge import MergeOptions, run_merge

        a, b = bindings["model_a"], bindings["model_b"]
        if a.arch != b.arch:
            raise ActionFailed(f"cannot merge {a.name} ({a.arch}) with {b.name} ({b.arch}): architectures differ")
        weight, density = float(bindings["weight"]), float(bindings["density"])
        config = MergeConfiguration.model_validate(
            {
                "merge_method": "ties",
                "base_model": str(ctx.base_model_dir),
                "models": [
                    {"model": str(a.path), "parameters": {"weight": weight, "density": density}},
                    {"model": str(b.path), "parameters": {"weight": 1.0 - weight, "density": density}},
                ],
                "parameters": {"normalize": True},
                "dtype": "float32",
            }
        )
        model_dir = ctx.out_dir / "model"
        options = MergeOptions(device="cpu", copy_tokenizer=True, random_seed=ctx.seed, lazy_unpickle=False, quiet=True)
        try:
            run_merge(config, str(model_dir), options=options)
        except Exception as err:  # mergekit raises plain exceptions for shape/vocab mismatches
            raise ActionFailed(f"mergekit failed: {type(err).__name__}: {err}".splitlines()[0]) from err
        return ActionOutput(model_dir=model_dir)
