"""Supervised fine-tuning through TRL's SFTTrainer (prompt/completion data, loss on completions)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lamdagent.actions.base import (
    ActionContext,
    ActionOutput,
    ActionType,
    Slot,
    check_non_negative,
    check_positive,
    check_values,
    register_action,
)
from lamdagent.errors import ActionFailed, require
from lamdagent.training.spec import LoraSettings


@dataclass
class SFTSettings:
    learning_rate: list = field(default_factory=lambda: [1e-3])
    epochs: Any = 2.0  # passes over the data; a list of two or more offers the search a choice (the first is the default)
    batch_size: int = 16
    max_length: int = 256
    warmup_steps: int = 0
    weight_decay: float = 0.0
    lora: LoraSettings = field(default_factory=LoraSettings)

    def check(self, prefix: str) -> None:
        check_values(self.learning_rate, f"{prefix}.learning_rate", low_open=True)
        if isinstance(self.epochs, (list, tuple)):  # choices for the search
            check_values(list(self.epochs), f"{prefix}.epochs", low_open=True)
        else:
            number = isinstance(self.epochs, (int, float)) and not isinstance(self.epochs, bool)
            require(number and self.epochs > 0, f"{prefix}.epochs must be a number > 0 or a list of them, got {self.epochs!r}")
        check_positive(self, prefix, "batch_size", "max_length")
        check_non_negative(self, prefix, "warmup_steps", "weight_decay")
        self.lora.check(f"{prefix}.lora")

    def fixed(self) -> SFTSettings:
        """These settings at the default epochs (the first choice): the specialists', the practitioner's
        defaults' and the full fine-tuning grid's starting point, identical to a study that fixes them."""
        return dataclasses.replace(self, epochs=self.epochs[0]) if isinstance(self.epochs, (list, tuple)) else self


EPOCHS = Slot("epochs", "hparam", "passes over the training data")


@register_action
class SFT(ActionType):
    name = "sft"
    description = "supervised fine-tuning of a model on a training dataset"
    slots = (
        Slot("model", "model", "the model to fine-tune"),
        Slot("dataset", "dataset", "the training data"),
        Slot("learning_rate", "hparam", "peak learning rate"),
    )
    Settings = SFTSettings
    setting_slots = ("epochs",)

    def __init__(self, settings: SFTSettings):
        """`settings.epochs` as a list of two or more values makes `epochs` a slot the search chooses,
        like the learning rate; one value (a number or a list of one) is a fixed setting, as before."""
        if isinstance(settings.epochs, (list, tuple)) and len(settings.epochs) == 1:
            settings = dataclasses.replace(settings, epochs=settings.epochs[0])
        super().__init__(settings)
        if isinstance(settings.epochs, (list, tuple)):
            self.slots = (*type(self).slots, EPOCHS)

    def run(self, bindings, ctx: ActionContext) -> ActionOutput:
        from lamdagent.training.trainer import train, trainable_model

        s = self.settings
        model, tokenizer, adapter_base = trainable_model(ctx, bindings["model"], s.lora)
        rows = bindings["dataset"].rows()
        if not rows:
            raise ActionFailed(f"dataset {bindings['dataset'].name!r} is empty")
        result = train(
            "sft", ctx, model, tokenizer, rows,
            learning_rate=float(bindings["learning_rate"]), epochs=float(bindings.get("epochs", s.epochs)), batch_size=s.batch_size, max_length=s.max_length,
            warmup_steps=s.warmup_steps, weight_decay=s.weight_decay,
        )
        return ActionOutput(
            model_dir=ctx.out_dir / "model",
            adapter_base=adapter_base,
            metrics={"train.loss": result.loss, "train.tokens": result.tokens, "train.steps": float(result.steps)},
            step_metrics={"train.loss": result.series.get("loss", [])},
            # a full model trained in this process is evaluated as trained; a launched one is loaded from disk
            loaded=None if adapter_base is not None or result.model is None else (result.model, tokenizer),
        )
