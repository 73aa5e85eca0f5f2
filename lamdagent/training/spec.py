"""What a training takes and gives, as plain data (no training library imported): the LoRA
settings of an action, a model that launched workers load themselves, and a training's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoraSettings:
    """Train a LoRA adapter instead of all weights; the produced model stores the adapter only."""

    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: str = "all-linear"

    def check(self, prefix: str) -> None:
        from lamdagent.errors import require

        for name in ("r", "alpha"):
            require(getattr(self, name) > 0, f"{prefix}.{name} must be > 0, got {getattr(self, name)}")
        require(0 <= self.dropout < 1, f"{prefix}.dropout must be >= 0 and < 1, got {self.dropout}")


@dataclass
class ModelOnDisk:
    """A model to train that launched workers load themselves (with `load_trainable`)."""

    model_dir: str
    base_dir: str | None  # the base folder of an adapter
    lora: dict


@dataclass
class TrainResult:
    """What a training run reports; `model` is the trained model when it is still in memory."""

    loss: float
    steps: int
    series: dict[str, list[tuple[int, float]]]  # logged name -> (step, value)
    tokens: float  # tokens seen over all epochs
    processes: int = 1
    distributed: str = "NO"  # accelerate's distributed type: NO, MULTI_GPU, MULTI_CPU, FSDP, DEEPSPEED
    model: Any = field(default=None, repr=False)
    flops: float = 0.0  # launched: the workers' operations (models/flops.py), which this process did not see
