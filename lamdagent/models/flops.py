"""Counting the arithmetic of the models loaded here: a compute measure that other work on the
machine cannot inflate (wall seconds grow with the load; so do CPU seconds, by the threads' spin waits).

Every forward pass of a counted model adds, per token it processes, 2 floating-point operations per
weight of its matrix products (the layers and the output head; the embedding lookup, norms, biases
and attention's score products are left out, as in Kaplan et al.'s 6ND). This is exactly what
torch's own FlopCounterMode counts for the same passes, less attention's products (tests/test_flops.py). A pass that trains (gradients on, the model
in training mode) adds the backward's: 2 per weight for the activations' gradients and 2 per
trainable weight for the weights' (LoRA: the adapters' only). So full fine-tuning counts 6 per weight
and token, evaluation 2, and the count of a step is the same on a busy machine and an idle one.
A merge's own arithmetic (a few operations per weight, once) is not counted; its evaluation is.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator
from weakref import WeakKeyDictionary

_counts: ContextVar[tuple[FlopCount, ...]] = ContextVar("lamdagent_flop_counts", default=())
_HOOKED = "_lamdagent_flops_hooked"


@dataclass
class FlopCount:
    """The floating-point operations counted while it is open (see `counting`)."""

    total: float = 0.0
    # model -> {training: operations per token}, read at its first pass in this count (a step): which weights
    # train is settled before a model's first pass, and reading it took 2.5-5.5 ms a pass on a 28-layer model here
    rates: WeakKeyDictionary = field(default_factory=WeakKeyDictionary, repr=False)


@contextmanager
def counting() -> Iterator[FlopCount]:
    """Count the operations of every counted model's forward (and backward) passes in this context;
    counts nest (an open outer count sees what an inner one counts)."""
    count = FlopCount()
    token = _counts.set((*_counts.get(), count))
    try:
        yield count
    finally:
        _counts.reset(token)


def add(flops: float) -> None:
    """Add operations counted elsewhere (in launched training workers) to the open counts."""
    for count in _counts.get():
        count.total += flops


def count_model(model) -> None:
    """Count `model`'s passes from now on (a transformers model; idempotent; a copy keeps counting)."""
    if not getattr(model, _HOOKED, False):
        model.register_forward_pre_hook(_on_forward, with_kwargs=True)
        setattr(model, _HOOKED, True)


def per_token(model, training: bool) -> float:
    """The operations of one token's pass through `model` (see the module docstring)."""
    weights = _matrix_weights(model)
    return 4.0 * weights + 2.0 * _matrix_weights(model, trainable=True) if training else 2.0 * weights


def per_token_of_folder(model_dir) -> float:
    """The operations of one token's evaluation pass through a model folder's shape (built on the meta
    device: no weights read), for passes run outside torch (vLLM)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        return per_token(AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir)), training=False)


def _matrix_weights(model, trainable: bool = False) -> int:
    """The weights of `model`'s matrix products (of those that train, with `trainable`): every matrix but
    the embedding lookup's, and the output head's even when it is the embedding's (tied)."""
    import torch

    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    total = sum(p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in embeddings and (p.requires_grad or not trainable))
    head = model.get_output_embeddings()
    if head is not None and id(head.weight) in embeddings and (head.weight.requires_grad or not trainable):
        total += head.weight.numel()
    return total


def _on_forward(model, args, kwargs) -> None:
    counts = _counts.get()
    if not counts:
        return
    import torch

    ids = kwargs.get("input_ids", args[0] if args else None)
    if ids is not None:
        tokens = ids.numel()
    elif (embeds := kwargs.get("inputs_embeds")) is not None:
        tokens = embeds.shape[:-1].numel()
    else:
        return
    training = torch.is_grad_enabled() and model.training
    rates = counts[0].rates.setdefault(model, {})
    if training not in rates:
        rates[training] = per_token(model, training)
    flops = rates[training] * tokens
    for count in counts:
        count.total += flops
