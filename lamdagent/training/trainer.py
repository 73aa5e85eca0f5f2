"""What the TRL-based actions share: the model to train, one trainer setup for both ways of training
(in this process, or in `accelerate launch` workers: lamdagent.training.launch), progress and loss curves."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from transformers import TrainerCallback

from lamdagent.faults import checkpoint
from lamdagent.training.spec import LoraSettings, ModelOnDisk, TrainResult

TRAINERS = {"sft": ("SFTTrainer", "SFTConfig"), "dpo": ("DPOTrainer", "DPOConfig")}  # kind -> TRL classes


def launched(ctx) -> bool:
    """Whether the model to train stays on disk: the study trains through `accelerate launch`, or an
    export describes the training (`ctx.capture`) instead of running it."""
    return ctx.capture is not None or (ctx.launch is not None and ctx.launch.launcher == "accelerate")


def load_trainable(model_dir, base_dir, lora: LoraSettings, seed: int):
    """(model, tokenizer) ready to train. With LoRA, an adapter keeps training its own adapter and a full
    model gets a new one; without LoRA, an adapter is merged into its base first."""
    from lamdagent.models.folders import load_model

    if not lora.enabled:
        return load_model(model_dir, base_dir)
    if base_dir is not None:
        return load_model(model_dir, base_dir, trainable=True)
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    model, tokenizer = load_model(model_dir)
    set_seed(seed)  # the adapter's initialisation is drawn here, before the trainer seeds itself
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config), tokenizer


def trainable_model(ctx, bound, lora: LoraSettings):
    """(model, tokenizer, adapter_base) to train from the bound model object; the adapter base is the
    ModelObject a LoRA output applies to. When training is launched, the model stays on disk:
    (ModelOnDisk, None, adapter_base)."""
    adapter_base = (bound.adapter_base if bound.adapter_base is not None else bound) if lora.enabled else None
    base_dir = ctx.model_path(bound.adapter_base) if bound.adapter_base is not None else None
    if launched(ctx):
        return ModelOnDisk(str(ctx.model_path(bound)), base_dir and str(base_dir), asdict(lora)), None, adapter_base
    model, tokenizer = load_trainable(ctx.model_path(bound), base_dir, lora, ctx.seed)
    return model, tokenizer, adapter_base


def trainer_device_args() -> dict:
    """bf16 on CUDA; fp32 on the CPU (TRL defaults to bf16, which fails there)."""
    import torch

    cuda = torch.cuda.is_available()
    return {"bf16": cuda, "use_cpu": not cuda, "activation_checkpointing": False}


CURVE_POINTS = 50  # points of a logged training curve (the loss): at most one per step


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
            control.should_training_stop = True  # no use training on: the action fails (see run_trainer)

    def on_step_end(self, args, state, control, **kwargs):
        checkpoint("train_step")
        if self.on_step:
            self.on_step(state.global_step, state.max_steps)


def trainer_config(*, out_dir: Path, seed: int, learning_rate: float, epochs: float, batch_size: int, max_length: int, **config) -> dict:
    """The keyword arguments of TRL's SFTConfig or DPOConfig: the one trainer setting of every training
    (in process, launched, or written out by `lamdagent export`)."""
    return dict(
        output_dir=str(Path(out_dir) / "trainer"),
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        data_seed=seed,
        save_strategy="no",
        logging_steps=1 / CURVE_POINTS,  # a fraction of the steps: logging every step costs ~5% of a demo SFT
        logging_nan_inf_filter=False,  # the default hides NaN/inf losses from the logs, and so from the check in run_trainer
        report_to="none",
        disable_tqdm=True,
        ddp_find_unused_parameters=False,  # launched DDP: every weight takes part (no-op in one process)
        **trainer_device_args(),
        **config,
    )


def training_rows(rows: list[dict], chat_template: bool) -> list[dict]:
    """The rows as the trainer gets them: in TRL's conversational form under the study's chat template."""
    if not chat_template:
        return rows
    from lamdagent.models.chat_template import as_conversations

    return as_conversations(rows)


def build_trainer(kind: str, model, tokenizer, rows: list[dict], *, out_dir: Path, seed: int, chat_template: bool = False,
                  on_step=None, logged: tuple[str, ...] = ("loss",), **hparams):
    """(TRL trainer of `kind`, its StepCallback) for `rows`: the one setup both ways of training use."""
    import trl
    from datasets import Dataset
    from transformers import PrinterCallback

    trainer_cls, config_cls = (getattr(trl, name) for name in TRAINERS[kind])
    args = config_cls(**trainer_config(out_dir=out_dir, seed=seed, **hparams))
    track = StepCallback(on_step, tuple(logged))
    trainer = trainer_cls(model=model, args=args, train_dataset=Dataset.from_list(training_rows(rows, chat_template)), processing_class=tokenizer,
                          callbacks=[track])
    trainer.remove_callback(PrinterCallback)  # progress is reported through on_step
    return trainer, track


def run_trainer(kind: str, trainer, track: StepCallback, tokenizer, rows: list[dict], epochs: float) -> TrainResult:
    """Train; an ActionFailed if the loss became NaN or infinite."""
    from lamdagent.errors import ActionFailed

    result = trainer.train()
    losses = [value for _, value in track.series.get("loss", [])] + [result.training_loss]
    if any(not math.isfinite(value) for value in losses):
        raise ActionFailed("training loss became NaN or infinite")
    if kind == "sft":  # tokens after TRL's tokenization
        tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    else:  # a prompt with each of its two answers
        tokens = sum(len(tokenizer(r["prompt"] + r["chosen"]).input_ids) + len(tokenizer(r["prompt"] + r["rejected"]).input_ids) for r in rows)
    return TrainResult(float(result.training_loss), int(result.global_step), track.series, float(tokens * epochs),
                       trainer.accelerator.num_processes, str(trainer.accelerator.distributed_type.value), model=trainer.model)


def train(kind: str, ctx, model, tokenizer, rows: list[dict], **hparams) -> TrainResult:
    """Train with TRL's `kind` trainer ("sft" or "dpo") on `rows` and save the model (or adapter) and
    tokenizer to `ctx.out_dir / "model"`: in this process, or through `accelerate launch` when `model`
    is a ModelOnDisk (see trainable_model); then the result holds no model."""
    if isinstance(model, ModelOnDisk):
        if ctx.capture is not None:  # an export: the training is described, not run
            settings = {k: v for k, v in hparams.items() if k != "logged"}
            ctx.capture(kind, {**asdict(model), "seed": ctx.seed, "rows": training_rows(rows, ctx.chat_template),
                               "config": trainer_config(out_dir=ctx.out_dir, seed=ctx.seed, **settings)})
            return TrainResult(math.nan, 0, {}, 0.0)
        from lamdagent.training.launch import launch_training

        return launch_training(kind, ctx, model, rows, hparams)
    trainer, track = build_trainer(kind, model, tokenizer, rows, out_dir=ctx.out_dir, seed=ctx.seed, chat_template=ctx.chat_template,
                                   on_step=ctx.on_step, **hparams)
    result = run_trainer(kind, trainer, track, tokenizer, rows, hparams["epochs"])
    trainer.model.save_pretrained(ctx.out_dir / "model")
    tokenizer.save_pretrained(ctx.out_dir / "model")
    return result
