"""The contract every registered ActionType must pass, on tiny models, for real."""

import json

import pytest
import torch
from safetensors.torch import load_file

from lamdagent.actions import ACTION_TYPES
from lamdagent.errors import ActionFailed
from lamdagent.evaluation.tasks import load_task
from lamdagent.models.folders import load_model
from lamdagent.space import ModelObject, PreferenceDatasetObject
from tests.helpers import base_model, context, dataset, trained


@pytest.fixture(scope="module")
def specialists(tmp_path_factory):
    root = tmp_path_factory.mktemp("specialists")
    return {task: trained(root, task) for task in ("arith", "facts")}


def _bindings(action_type, specialists) -> dict:
    """Valid bindings for any action type: specialists for model slots, first choice of hparams."""
    models = iter([specialists["arith"], specialists["facts"]])
    bindings = {}
    for slot in action_type.slots:
        if slot.kind == "model":
            bindings[slot.name] = next(models)
        elif slot.kind == "dataset":
            bindings[slot.name] = dataset("arith", 16)
        elif slot.kind == "preference":
            bindings[slot.name] = PreferenceDatasetObject("arith_prefs", [load_task("arith")], 16)
        else:
            bindings[slot.name] = action_type.hparam_choices()[slot.name][0]
    return bindings


def _weights(model_dir) -> dict[str, torch.Tensor]:
    return load_file(next(model_dir.glob("*.safetensors")))


@pytest.mark.parametrize("name", sorted(ACTION_TYPES))
def test_produces_a_loadable_model(name, specialists, tmp_path):
    action_type = ACTION_TYPES[name](ACTION_TYPES[name].Settings())
    out = action_type.run(_bindings(action_type, specialists), context(tmp_path))
    model, tokenizer = load_model(out.model_dir)
    ids = tokenizer("Question: hi\nAnswer:", return_tensors="pt")
    assert model.generate(**ids, max_new_tokens=2, do_sample=False).shape[1] >= ids["input_ids"].shape[1]
    assert all(isinstance(v, float) for v in out.metrics.values())


@pytest.mark.parametrize("name", sorted(ACTION_TYPES))
def test_deterministic_with_a_seed(name, specialists, tmp_path):
    action_type = ACTION_TYPES[name](ACTION_TYPES[name].Settings())
    bindings = _bindings(action_type, specialists)
    first = _weights(action_type.run(bindings, context(tmp_path / "1")).model_dir)
    second = _weights(action_type.run(bindings, context(tmp_path / "2")).model_dir)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    inputs = _weights(specialists["arith"].path)
    assert any(not torch.equal(first[k], inputs[k]) for k in first)  # it changed the model


@pytest.mark.parametrize("name", sorted(ACTION_TYPES))
def test_a_merge_has_a_mirror_exactly_when_the_other_way_round_is_the_same_model(name, specialists, tmp_path):
    """On real mergekit merges at an uneven share: (a, b) at 0.3 against (b, a) at 0.7. The methods that
    declare a mirror give the same weights (to 1e-6); DARE-TIES, which declares none, does not (its
    seeded random drops follow the models' order). A type without two models has no mirror."""
    action_type = ACTION_TYPES[name](ACTION_TYPES[name].Settings())
    bindings = _bindings(action_type, specialists)
    mirror = action_type.mirror(bindings)
    if "model_b" not in bindings:
        assert mirror is None
        return
    share = next(slot for slot in ("weight", "t") if slot in bindings)
    bindings[share] = 0.3
    swapped = {**bindings, "model_a": bindings["model_b"], "model_b": bindings["model_a"], share: 0.7}
    mirror = action_type.mirror(bindings)
    assert mirror is None or mirror == swapped
    one = _weights(action_type.run(bindings, context(tmp_path / "1")).model_dir)
    other = _weights(action_type.run(swapped, context(tmp_path / "2")).model_dir)
    assert one.keys() == other.keys()
    same = all(torch.allclose(one[k], other[k], atol=1e-6) for k in one)
    assert same == (mirror is not None), (name, same)


@pytest.mark.parametrize("name", sorted(ACTION_TYPES))
def test_failure_path_raises_action_failed(name, specialists, tmp_path):
    action_type = ACTION_TYPES[name](ACTION_TYPES[name].Settings())
    bindings = _bindings(action_type, specialists)
    model_slots = [s.name for s in action_type.slots if s.kind == "model"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 7}))
    for slot in model_slots:
        bindings[slot] = ModelObject("broken", "r", "m", "fp-broken", "broken", specialists["arith"].arch, path=broken)
        break
    with pytest.raises(Exception) as err:
        action_type.run(bindings, context(tmp_path / "out"))
    if len(model_slots) > 1:
        assert err.type is ActionFailed


def test_sft_on_empty_data_fails_cleanly(tmp_path):
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings())
    empty = dataset("arith", 16)
    empty.rows = lambda scale=1.0: []
    with pytest.raises(ActionFailed, match="empty"):
        sft.run({"model": base_model(), "dataset": empty, "learning_rate": 1e-3}, context(tmp_path))


def test_merge_of_incompatible_models_fails_cleanly(specialists, tmp_path):
    ties = ACTION_TYPES["ties"](ACTION_TYPES["ties"].Settings())
    other = ModelObject("other", "r", "m", "fp-o", "other", "gemma/2304", path=specialists["facts"].path)
    bindings = {"model_a": specialists["arith"], "model_b": other, "weight": 0.5, "density": 0.5}
    assert not ties.accepts(bindings)
    with pytest.raises(ActionFailed, match="architectures differ"):
        ties.run(bindings, context(tmp_path))


def test_sft_learns(tmp_path):
    """Fine-tuning lowers the loss on its data: the training is real."""
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(epochs=3))
    out = sft.run({"model": base_model(), "dataset": dataset("facts", 48), "learning_rate": 3e-3}, context(tmp_path))
    losses = [loss for _, loss in out.step_metrics["train.loss"]]
    assert losses[-1] < losses[0] * 0.7
    assert out.loaded is not None  # the trained model stays in memory: evaluated without a reload (docs/performance.md)
    saved = load_file(out.model_dir / "model.safetensors")
    assert all(saved[name].equal(weight) for name, weight in out.loaded[0].state_dict().items() if name in saved)


def test_sft_trains_for_the_epochs_the_search_chose(tmp_path):
    """With `sft.epochs` a list, the bound choice is what TRL trains for, not the first (default) value."""
    sft = ACTION_TYPES["sft"](ACTION_TYPES["sft"].Settings(epochs=[1, 3], batch_size=8))
    assert [s.name for s in sft.slots][-1] == "epochs"
    data = dataset("facts", 16)
    steps = {epochs: sft.run({"model": base_model(), "dataset": data, "learning_rate": 1e-3, "epochs": epochs},
                             context(tmp_path / str(epochs))).metrics["train.steps"] for epochs in (1, 3)}
    assert steps[3] == 3 * steps[1] > 0, steps
