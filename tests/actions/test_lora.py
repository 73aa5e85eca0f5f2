"""LoRA: produced models store only an adapter; later actions take adapters transparently."""

import pytest

from lamdagent.actions import ACTION_TYPES
from lamdagent.evaluation.tasks import load_task
from lamdagent.models.folders import is_adapter, load_model
from lamdagent.space import ModelObject, PreferenceDatasetObject
from lamdagent.training.spec import LoraSettings
from tests.helpers import base_model, context, dataset, trained

LORA = LoraSettings(enabled=True, r=8, alpha=16)


def _bytes(path):
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "token" not in f.name)


def _as_model(out, name, parent):
    return ModelObject(name, f"run-{name}", f"m-{name}", f"fp-{name}", name, parent.arch, path=out.model_dir,
                       parents=[parent], adapter_base=out.adapter_base)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """sft(base, facts) trained as LoRA."""
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(epochs=6, lora=LORA))
    base = base_model()
    out = sft.run({"model": base, "dataset": dataset("facts", 48), "learning_rate": 1e-2}, context(tmp_path_factory.mktemp("lora")))  # LoRA wants a higher rate
    model = _as_model(out, "lora_facts", base)
    model.losses = [loss for _, loss in out.step_metrics["train.loss"]]
    return model


def test_lora_stores_only_the_adapter_and_it_learns(adapter):
    assert is_adapter(adapter.path) and adapter.adapter_base.name == "base"
    full = base_model().path
    assert _bytes(adapter.path) * 5 < _bytes(full)
    with pytest.raises(ValueError, match="its base model folder is needed"):
        load_model(adapter.path)
    model, tokenizer = load_model(adapter.path, full)
    untrained, _ = load_model(full)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in untrained.parameters())
    assert adapter.losses[-1] < adapter.losses[0] * 0.9  # the adapter learned


def test_training_on_top_of_an_adapter_keeps_one_adapter_over_the_same_base(adapter, tmp_path):
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(epochs=1, lora=LORA))
    out = sft.run({"model": adapter, "dataset": dataset("arith", 16), "learning_rate": 1e-3}, context(tmp_path))
    assert is_adapter(out.model_dir) and out.adapter_base is adapter.adapter_base
    dpo = ACTION_TYPES["dpo"](ACTION_TYPES["dpo"].Settings(epochs=1, lora=LORA, on_policy=True))
    prefs = PreferenceDatasetObject("facts_prefs", [load_task("facts")], 16)
    out = dpo.run({"model": adapter, "preference_dataset": prefs, "beta": 0.1, "learning_rate": 5e-4}, context(tmp_path / "dpo"))
    assert is_adapter(out.model_dir) and out.adapter_base is adapter.adapter_base


def test_lora_training_is_deterministic(tmp_path):
    import torch
    from safetensors.torch import load_file

    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(epochs=1, lora=LORA))
    bindings = {"model": base_model(), "dataset": dataset("arith", 16), "learning_rate": 1e-2}
    first = sft.run(bindings, context(tmp_path / "1")).model_dir
    torch.rand(7)  # disturb the global generator
    second = sft.run(bindings, context(tmp_path / "2")).model_dir
    a, b = load_file(first / "adapter_model.safetensors"), load_file(second / "adapter_model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_full_training_on_an_adapter_merges_it_first(adapter, tmp_path):
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(epochs=1))
    out = sft.run({"model": adapter, "dataset": dataset("arith", 16), "learning_rate": 1e-3}, context(tmp_path))
    assert not is_adapter(out.model_dir) and out.adapter_base is None


@pytest.mark.parametrize("method", ["ties", "linear", "slerp"])
def test_merges_accept_adapter_models(method, adapter, tmp_path):
    other = trained(tmp_path, "arith")
    merge = ACTION_TYPES[method](ACTION_TYPES[method].Settings())
    bindings = {"model_a": adapter, "model_b": other, **{k: v[0] for k, v in merge.hparam_choices().items()}}
    out = merge.run(bindings, context(tmp_path / "merged"))
    assert not is_adapter(out.model_dir)
    model, _ = load_model(out.model_dir)
    assert model.config.hidden_size == 128
