"""Supervised fine-tuning through TRL's SFTTrainer (prompt/completion data, loss on completions)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
from lamdagent.errors import ActionFailed
from lamdagent.training.spec import LoraSettings


@dataclass
class SFTSettings:
    learning_rate: list = field(default_factory=lambda: [1e-3])
    epochs: float = 2.0
    batch_size: int = 16
    max_length: int = 256
    warmup_steps: int = 0
    weight_decay: float = 0.0
    lora: LoraSettings = field(default_factory=LoraSettings)

    def check(self, prefix: str) -> None:
        check_values(self.learning_rate, f"{prefix}.learning_rate", low_open=True)
        check_positive(self, prefix, "epochs", "batch_size", "max_length")
        check_non_negative(self, prefix, "warmup_steps", "weight_decay")
        self.lora.check(f"{prefix}.lora")


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

    def run(self, bindings, ctx: ActionContext) -> ActionOutput:
        from lamdagent.training.trainer import train, trainable_model

        s = self.settings
        model, tokenizer, adapter_base = trainable_model(ctx, bindings["model"], s.lora)
        rows = bindings["dataset"].rows()
        if not rows:
            raise ActionFailed(f"dataset {bindings['dataset'].name!r} is empty")
        result = train(
            "sft", ctx, model, tokenizer, rows,
            learning_rate=float(bindings["learning_rate"]), epochs=s.epochs, batch_size=s.batch_size, max_length=s.max_length,
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
