"""The operation count (models/flops.py): exact per pass, the backward's share by what trains, real
TRL training counted, and the same count for the same step on an idle and a busy machine."""

from __future__ import annotations

import multiprocessing
import os

import pytest
import torch
from safetensors.torch import load_file

from lamdagent.actions import ACTION_TYPES
from lamdagent.models import flops
from lamdagent.models.folders import load_model
from lamdagent.training.spec import LoraSettings
from tests.helpers import base_model, context, dataset


def _weights(model) -> int:
    """The tiny Llama's matrix weights: its layers' projections and its (tied) output head; not its norms."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def test_the_count_is_torchs_own_flop_counter_less_attentions_products():
    """The reference: torch.utils.flop_counter.FlopCounterMode on the same passes (eager attention, so
    its score products are counted there and can be taken out). Exact for evaluation and full
    fine-tuning; with LoRA autograd skips the first layer's input gradients (its input, the frozen
    embedding, needs none), which the count includes: a few % above on 4 layers, less with depth."""
    from peft import LoraConfig, get_peft_model
    from torch.utils.flop_counter import FlopCounterMode

    model, _ = load_model(base_model().path)
    model.set_attn_implementation("eager")
    batch, length, config = 2, 16, model.config
    ids = torch.randint(0, 500, (batch, length))
    attention = 2 * 2 * config.num_hidden_layers * batch * length * length * config.hidden_size  # QK^T and AV, forward
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as reference, flops.counting() as ours:
        model(input_ids=ids)
    assert ours.total + attention == reference.get_total_flops()
    model.train()
    with FlopCounterMode(display=False) as reference, flops.counting() as ours:
        model(input_ids=ids, labels=ids).loss.backward()
    assert ours.total + 3 * attention == reference.get_total_flops()
    adapted = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    with FlopCounterMode(display=False) as reference, flops.counting() as ours:
        adapted(input_ids=ids, labels=ids).loss.backward()
    assert reference.get_total_flops() <= ours.total + 3 * attention <= 1.05 * reference.get_total_flops()


def test_a_pass_counts_two_operations_per_weight_and_token_and_training_six():
    model, _ = load_model(base_model().path)
    ids = torch.randint(0, 500, (3, 10))
    with torch.no_grad():
        model.eval()
        with flops.counting() as closed:
            pass
        model(input_ids=ids)  # after its count closed: not counted there
        with flops.counting() as evaluated:
            model(input_ids=ids)
    assert evaluated.total == 2 * _weights(model) * 30 and closed.total == 0
    assert flops.per_token_of_folder(base_model().path) == 2 * _weights(model)  # the folder's shape alone (vLLM's count)
    model.train()
    with flops.counting() as trained:
        model(input_ids=ids, labels=ids).loss.backward()
    assert trained.total == 6 * _weights(model) * 30
    flops.count_model(model)  # counted once, however often it is asked
    with flops.counting() as outer, flops.counting() as inner, torch.no_grad():
        model.eval()
        model.generate(ids[:1], max_new_tokens=5, do_sample=False)  # the prompt, then one token per step after the first
    assert outer.total == inner.total == 2 * _weights(model) * (10 + 4)


def test_lora_training_counts_the_adapters_gradients_only(tmp_path):
    sft = ACTION_TYPES["sft"]
    full = sft(sft.Settings(learning_rate=[3e-3], epochs=1))
    lora = sft(sft.Settings(learning_rate=[3e-3], epochs=1, lora=LoraSettings(enabled=True, r=4, alpha=8)))
    counted = []
    for name, action in (("full", full), ("lora", lora)):
        with flops.counting() as count:
            out = action.run({"model": base_model(), "dataset": dataset("arith", 16), "learning_rate": 3e-3}, context(tmp_path / name))
        counted.append((count.total, out.metrics["train.tokens"], out.model_dir))
    (full_ops, tokens, _), (lora_ops, lora_tokens, adapter_dir) = counted
    weights = _weights(load_model(base_model().path)[0])
    adapters = sum(w.numel() for w in load_file(adapter_dir / "adapter_model.safetensors").values())
    assert tokens == lora_tokens and 0 < adapters < weights / 10
    padded = full_ops / (6 * weights)  # the tokens of the batches, padding included
    assert tokens <= padded <= tokens * 1.5
    # forward 2 and backward 2 per weight (the adapters' too), and the weights' gradients of the adapters only
    assert lora_ops == pytest.approx((4 * (weights + adapters) + 2 * adapters) * padded)


def _busy() -> None:
    while True:
        pass


@pytest.mark.slow
def test_the_same_training_counts_the_same_on_a_busy_machine(tmp_path):
    """Wall seconds grew 7x and CPU seconds 3x for one training under four busy processes on two
    cores (measured here); the operations it counts do not move."""
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(learning_rate=[3e-3], epochs=1))

    def train(name: str) -> float:
        with flops.counting() as count:
            sft.run({"model": base_model(), "dataset": dataset("arith", 32), "learning_rate": 3e-3}, context(tmp_path / name))
        return count.total

    idle = train("idle")
    load = [multiprocessing.get_context("spawn").Process(target=_busy, daemon=True) for _ in range(2 * (os.cpu_count() or 1))]
    for process in load:
        process.start()
    try:
        busy = train("busy")
    finally:
        for process in load:
            process.kill()
    assert busy == idle > 0
