"""What the TRL-based actions share: device arguments and a callback for progress and loss curves."""

from __future__ import annotations

from typing import Callable

from transformers import TrainerCallback


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

    def on_step_end(self, args, state, control, **kwargs):
        if self.on_step:
            self.on_step(state.global_step, state.max_steps)
