"""Model merging through mergekit's Python API: one registered action type per merge method.

Two distinct models of the same architecture are merged. `weight` is model_a's share (model_b gets
1 - weight). Methods built on task vectors take them against the models' common ancestor, found
from the lineage, never from the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from lamdagent.actions.base import (
    ActionContext,
    ActionOutput,
    ActionType,
    Slot,
    check_values,
    register_action,
)
from lamdagent.errors import ActionFailed
from lamdagent.faults import checkpoint
from lamdagent.space.lineage import common_ancestor

MODEL_SLOTS = (Slot("model_a", "model", "first model to merge"), Slot("model_b", "model", "second model to merge"))
WEIGHT = Slot("weight", "hparam", "model_a's share of the merge (model_b gets 1 - weight)")
DENSITY = Slot("density", "hparam", "fraction of each task vector kept")


class MergeAction(ActionType):
    """A mergekit merge method. Subclasses set `method`, `slots`, `Settings`, and say how the
    hyperparameters become mergekit parameters."""

    method: ClassVar[str]
    share: ClassVar[str | None] = None  # the slot holding model_a's share where (b, a) at 1 - share is the same merge

    def accepts(self, bindings) -> bool:
        a, b = bindings["model_a"], bindings["model_b"]
        return a.fingerprint != b.fingerprint and a.arch == b.arch

    def mirror(self, bindings):
        """The merge of (model_b, model_a) with model_b's share: the same weighted computation, so the
        same model (tests/actions/test_contract.py checks each method on real merges)."""
        if self.share is None:
            return None
        return {**bindings, "model_a": bindings["model_b"], "model_b": bindings["model_a"], self.share: round(1.0 - float(bindings[self.share]), 12)}

    def model_parameters(self, hp: dict) -> tuple[dict, dict]:
        weight = float(hp["weight"])
        return {"weight": weight}, {"weight": 1.0 - weight}

    def merge_parameters(self, hp: dict) -> dict:
        return {}

    def base_model(self, bindings, ctx: ActionContext):
        """mergekit's base_model: by default the common ancestor that task vectors are taken against."""
        base = common_ancestor([bindings["model_a"], bindings["model_b"]])
        return ctx.model_ref(base) if base else str(ctx.base_model_dir)

    def merge_config(self, bindings, ctx: ActionContext) -> dict:
        """The mergekit configuration (as a dict) of the merge of the bound models."""
        a, b = bindings["model_a"], bindings["model_b"]
        if a.arch != b.arch:
            raise ActionFailed(f"cannot merge {a.name} ({a.arch}) with {b.name} ({b.arch}): architectures differ")
        hp = {s.name: bindings[s.name] for s in self.slots if s.kind == "hparam"}
        params_a, params_b = self.model_parameters(hp)
        config = {
            "merge_method": self.method,
            "models": [{"model": ctx.model_ref(a), "parameters": params_a}, {"model": ctx.model_ref(b), "parameters": params_b}],
            "parameters": self.merge_parameters(hp),
            "dtype": "float32",
        }
        base = self.base_model(bindings, ctx)
        if base is not None:
            config["base_model"] = str(base)
        return config

    def run(self, bindings, ctx: ActionContext) -> ActionOutput:
        return run_mergekit(self.merge_config(bindings, ctx), ctx)


def merge_options(ctx: ActionContext) -> dict:
    """The keyword arguments of mergekit's MergeOptions for a merge into `ctx.out_dir`."""
    return {"device": "cpu", "copy_tokenizer": True, "random_seed": ctx.seed, "lazy_unpickle": False, "quiet": True,
            "lora_merge_cache": str(ctx.out_dir / "lora-merged")}  # adapters merged into their base here


def run_mergekit(config: dict, ctx: ActionContext) -> ActionOutput:
    """Run a mergekit merge configuration (as a dict) into `ctx.out_dir / "model"`."""
    model_dir = ctx.out_dir / "model"
    if ctx.capture is not None:  # an export: the merge is described, not run
        ctx.capture("merge", {"config": config, "options": merge_options(ctx)})
        return ActionOutput(model_dir=model_dir)
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    try:
        run_merge(MergeConfiguration.model_validate(config), str(model_dir), options=MergeOptions(**merge_options(ctx)))
    except Exception as err:  # mergekit raises plain exceptions for shape or vocabulary mismatches
        raise ActionFailed(f"mergekit {config['merge_method']} failed: {type(err).__name__}: {err}".splitlines()[0]) from err
    checkpoint("after_merge")
    return ActionOutput(model_dir=model_dir)

@dataclass
class TiesSettings:
    weight: list = field(default_factory=lambda: [0.5])
    density: list = field(default_factory=lambda: [0.5])

    def check(self, prefix: str) -> None:
        check_values(self.weight, f"{prefix}.weight", high=1.0)
        check_values(self.density, f"{prefix}.density", high=1.0, low_open=True)


@register_action
class Ties(MergeAction):
    name = method = "ties"
    description = "TIES-merging of two models' task vectors (trim, elect sign, merge)"
    share = "weight"
    slots = (*MODEL_SLOTS, WEIGHT, DENSITY)
    Settings = TiesSettings

    def model_parameters(self, hp):
        a, b = super().model_parameters(hp)
        density = float(hp["density"])
        return {**a, "density": density}, {**b, "density": density}

    def merge_parameters(self, hp):
        return {"normalize": True}


@register_action
class DareTies(Ties):
    name = method = "dare_ties"
    description = "DARE-TIES merging: random drop-and-rescale of task vectors, then TIES sign election"
    share = None  # the random drops follow the models' order


@dataclass
class WeightSettings:
    weight: list = field(default_factory=lambda: [0.5])

    def check(self, prefix: str) -> None:
        check_values(self.weight, f"{prefix}.weight", high=1.0)


@register_action
class TaskArithmetic(MergeAction):
    name = method = "task_arithmetic"
    description = "task arithmetic: add the weighted task vectors of two models to their common ancestor"
    share = "weight"
    slots = (*MODEL_SLOTS, WEIGHT)
    Settings = WeightSettings


@register_action
class Linear(MergeAction):
    name = method = "linear"
    description = "linear merge: a weighted average of two models' weights"
    share = "weight"
    slots = (*MODEL_SLOTS, WEIGHT)
    Settings = WeightSettings

    def merge_parameters(self, hp):
        return {"normalize": True}

    def base_model(self, bindings, ctx):
        return None


@dataclass
class SlerpSettings:
    t: list = field(default_factory=lambda: [0.5])

    def check(self, prefix: str) -> None:
        check_values(self.t, f"{prefix}.t", high=1.0)


@register_action
class Slerp(MergeAction):
    name = method = "slerp"
    description = "spherical interpolation from model_a (t=0) toward model_b (t=1)"
    slots = (*MODEL_SLOTS, Slot("t", "hparam", "interpolation factor toward model_b"))
    Settings = SlerpSettings
    share = "t"  # slerp(a, b, t) = slerp(b, a, 1 - t)

    def model_parameters(self, hp):
        return {}, {}

    def merge_parameters(self, hp):
        return {"t": float(hp["t"])}

    def base_model(self, bindings, ctx):
        return ctx.model_ref(bindings["model_a"])  # slerp interpolates away from its base model
