"""What the TRL-based actions share: device arguments and a callback for progress and loss curves."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from transformers import TrainerCallback

from lamdagent.faults import checkpoint


@dataclass
class LoraSettings:
    """Train a LoRA adapter instead of all weights; the produced model stores the adapter only."""

    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: str = "all-linear"


def trainable_model(ctx, bound, lora: LoraSettings):
    """(model, tokenizer, adapter_base) to train from the bound model object.

    With LoRA, an adapter model keeps training its own adapter (so it stays an adapter over the same
    base); a full model gets a new adapter. Without LoRA, an adapter is merged into its base first."""
    if not lora.enabled:
        model, tokenizer = ctx.load(bound)
        return model, tokenizer, None
    if bound.adapter_base is not None:
        model, tokenizer = ctx.load(bound, trainable=True)
        return model, tokenizer, bound.adapter_base
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    model, tokenizer = ctx.load(bound)
    set_seed(ctx.seed)  # the adapter's initialisation is drawn here, before the trainer seeds itself
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config), tokenizer, bound


def trainer_device_args() -> dict:
    """bf16 on CUDA; fp32 on the CPU (TRL defaults to bf16, which fails there)."""
    import torch

    cuda = torch.cuda.is_available()
    return {"bf16": cuda, "use_cpu": not cuda, "activation_checkpointing": False}


class StepCallback(TrainerCallback):
    """Reports (step, total) after each step and keeps the logged values of `keys` by step."""

    def __init__(self, on_step: Callable[[int, int], None] | None, keys: tuple[str, ...] = ("loss",)):
        self.on_step = on_step
        self.keys = keys
        self.series: dict[str, list[tuple[int, float]]] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in self.keys:
            if logs and key in logs:
                self.series.setdefault(key, []).append((state.global_step, float(logs[key])))
        if logs and "loss" in logs and not math.isfinite(float(logs["loss"])):
            control.should_training_stop = True  # no use training on: the action fails (see train)

    def on_step_end(self, args, state, control, **kwargs):
        checkpoint("train_step")
        if self.on_step:
            self.on_step(state.global_step, state.max_steps)


def train(trainer_cls, config_cls, ctx, model, tokenizer, rows: list[dict], *, learning_rate: float, epochs: float,
          batch_size: int, max_length: int, logged: tuple[str, ...] = ("loss",), **config):
    """Train with a TRL trainer on `rows`, save the model (or adapter) and tokenizer to
    `ctx.out_dir / "model"`; returns (trainer, train result, logged series by name)."""
    import math

    from datasets import Dataset
    from transformers import PrinterCallback

    from lamdagent.errors import ActionFailed

    args = config_cls(
        output_dir=str(ctx.out_dir / "trainer"),
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        max_length=max_length,
        seed=ctx.seed,
        data_seed=ctx.seed,
        save_strategy="no",
        logging_steps=1,
        logging_nan_inf_filter=False,  # the default hides NaN/inf losses from the logs, and so from the check below
        report_to="none",
        disable_tqdm=True,
        **trainer_device_args(),
        **config,
    )
    track = StepCallback(ctx.on_step, logged)
    if ctx.chat_template:
        from lamdagent.chat import as_conversations

        rows = as_conversations(rows)
    trainer = trainer_cls(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer, callbacks=[track])
    trainer.remove_callback(PrinterCallback)  # progress is reported through ctx.on_step
    result = trainer.train()
    losses = [value for _, value in track.series.get("loss", [])] + [result.training_loss]
    if any(not math.isfinite(value) for value in losses):
        raise ActionFailed("training loss became NaN or infinite")
    trainer.model.save_pretrained(ctx.out_dir / "model")
    tokenizer.save_pretrained(ctx.out_dir / "model")
    return trainer, result, track.series
