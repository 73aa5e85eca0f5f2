"""ActionType: a model-improving method with typed slots, registered by name."""

from __future__ import annotations

import dataclasses
import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

from lamdagent.errors import require
from lamdagent.registry import Registry

SlotKind = Literal["model", "dataset", "preference", "hparam"]


@dataclass(frozen=True)
class Slot:
    name: str
    kind: SlotKind
    description: str = ""


def check_values(values: list, name: str, low: float = 0.0, high: float | None = None, low_open: bool = False) -> None:
    """An hparam's choices: at least one, each a number within [low, high] (or (low, high] when `low_open`),
    none twice (a repeated choice would be two names for one action)."""
    require(bool(values), f"{name} must list at least one value")
    for value in values:
        require(isinstance(value, (int, float)) and not isinstance(value, bool), f"{name} values must be numbers, got {value!r}")
        above = value > low if low_open else value >= low
        within = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high is not None else "")
        require(above and (high is None or value <= high), f"{name} values must be {within}, got {value!r}")
    repeated = sorted({value for value in values if values.count(value) > 1})
    require(not repeated, f"{name} lists {', '.join(f'{value:g}' for value in repeated)} more than once: each choice once, got {values!r}")


def check_positive(settings: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        require(value > 0, f"{prefix}.{name} must be > 0, got {value}")


def check_non_negative(settings: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        require(value >= 0, f"{prefix}.{name} must be >= 0, got {value}")


@dataclass
class ActionContext:
    """What an action needs besides its bindings: where to write, the study's base, progress hooks."""

    out_dir: Path
    seed: int
    base_model_dir: Path
    on_step: Callable[[int, int], None] | None = None  # (step, total) during training
    resolve: Callable[[Any], Path] | None = None  # ModelObject -> local folder (from the tracking store)
    chat_template: bool = False  # the study's chat-template setting (lamdagent.models.chat_template)
    launch: Any = None  # the study's `training` section (lamdagent.config.schema.LaunchConfig): in-process or accelerate
    # `lamdagent export`: each training or merge is described to capture(kind, what it takes) instead of run
    capture: Callable[[str, dict], None] | None = None

    def model_path(self, model) -> Path:
        """The local folder of a model object, fetched from the tracking store if needed."""
        if model.path is None and self.resolve is not None:
            model.path = self.resolve(model)
        return model.path

    def model_ref(self, model) -> str:
        """How mergekit names the model: its folder, or `BASE+ADAPTER` for a LoRA adapter."""
        if model.adapter_base is not None:
            return f"{self.model_path(model.adapter_base)}+{self.model_path(model)}"
        return str(self.model_path(model))

    def load(self, model, *, trainable: bool = False):
        """(model, tokenizer) of a model object; an adapter comes over its base (see load_model)."""
        from lamdagent.models.folders import load_model

        base = self.model_path(model.adapter_base) if model.adapter_base is not None else None
        return load_model(self.model_path(model), base, trainable=trainable)


@dataclass
class ActionOutput:
    model_dir: Path
    adapter_base: Any = None  # the ModelObject a LoRA adapter output applies to
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. train loss, tokens seen
    step_metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # name -> (step, value)
    loaded: tuple | None = field(default=None, repr=False)  # (model, tokenizer) still in memory: evaluated without a reload


class ActionType(ABC):
    """Subclasses declare `name`, `slots`, `Settings` (a dataclass; hparam slots are lists of choices)."""

    name: ClassVar[str]
    description: ClassVar[str]
    slots: ClassVar[tuple[Slot, ...]]
    Settings: ClassVar[type]
    setting_slots: ClassVar[tuple[str, ...]] = ()  # hparam slots a study may fix instead (one value): identified as settings either way

    def defaults(self) -> dict[str, Any]:
        """The value of each setting slot this type offers a choice of, where an action made before the
        choice (or by a fixed-setting type: a specialist, a grid trial) names none: the first choice."""
        choices = self.hparam_choices()
        return {name: choices[name][0] for name in self.setting_slots if name in choices}

    def __init__(self, settings: Any):
        self.settings = settings

    @classmethod
    def check(cls, settings: Any, prefix: str) -> None:
        """One-line errors for a bad settings section (`prefix`: its name in the config), before any
        compute: every hparam slot lists numbers, then the section's own `check(prefix)` where its
        Settings declare one (a plug-in's need not)."""
        for slot in cls.slots:
            if slot.kind == "hparam":
                check_values(list(getattr(settings, slot.name)), f"{prefix}.{slot.name}")
        if hasattr(cls.Settings, "check"):
            settings.check(prefix)

    def hparam_choices(self) -> dict[str, list]:
        """The values the study offers for each hparam slot."""
        return {slot.name: list(getattr(self.settings, slot.name)) for slot in self.slots if slot.kind == "hparam"}

    @functools.cached_property
    def fixed_settings(self) -> dict[str, Any]:
        """Settings that are not slots (epochs, batch size, ...): part of every action's identity."""
        slot_names = {slot.name for slot in self.slots}
        return {k: v for k, v in dataclasses.asdict(self.settings).items() if k not in slot_names}

    def accepts(self, bindings: dict[str, Any]) -> bool:
        """Whether a full binding is valid beyond slot kinds (e.g. distinct, compatible models)."""
        return True

    def mirror(self, bindings: dict[str, Any]) -> dict[str, Any] | None:
        """Other bindings that compute the same model (a merge of the two models the other way round),
        or None: once either is done, the other is not offered."""
        return None

    @abstractmethod
    def run(self, bindings: dict[str, Any], ctx: ActionContext) -> ActionOutput:
        """Produce a model folder in `ctx.out_dir` from bound objects; raise ActionFailed on failure."""


ACTION_TYPES: Registry[type[ActionType]] = Registry("action type")


def register_action(cls: type[ActionType]) -> type[ActionType]:
    """Class decorator: make an ActionType available to studies under `cls.name`."""
    ACTION_TYPES.add(cls.name, cls)
    return cls
