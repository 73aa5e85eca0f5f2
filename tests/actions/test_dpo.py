"""DPO on tiny models, for real: pairs, on-policy rejections, and the margin moving."""

import torch

from lamdagent.actions import ACTION_TYPES
from lamdagent.actions.dpo import on_policy_pairs
from lamdagent.evaluation.tasks import load_task
from lamdagent.models.folders import load_model
from lamdagent.space import PreferenceDatasetObject
from tests.helpers import context, trained


def _preferences(size=32):
    return PreferenceDatasetObject("facts_prefs", [load_task("facts")], size)


def test_pairs_from_task_data_prefer_the_correct_answer():
    task = load_task("facts")
    rows = _preferences().pairs()
    assert len(rows) == 32
    for row in rows:
        assert task.score(row["chosen"], row["gold"])[1] == 1.0
        assert task.score(row["rejected"], row["gold"])[1] == 0.0


def test_on_policy_pairs_use_the_models_own_wrong_answers(tmp_path):
    spec = trained(tmp_path, "arith", epochs=4, size=64)  # a weak specialist: it gets many answers wrong
    model, tokenizer = load_model(spec.path)
    task = load_task("arith")
    rows = PreferenceDatasetObject("arith_prefs", [task], 32).pairs()
    replaced_rows, replaced = on_policy_pairs([dict(r) for r in rows], model, tokenizer, {"arith": task})
    assert replaced > 0
    changed = [new for old, new in zip(rows, replaced_rows) if old["rejected"] != new["rejected"]]
    assert 0 < len(changed) <= replaced  # a model answer can equal the off-policy one
    assert all(task.score(r["rejected"], r["gold"])[1] == 0.0 for r in changed)


@torch.inference_mode()
def _margin(model_dir, rows) -> float:
    """Mean over pairs of log p(chosen) - log p(rejected), each given the prompt."""
    model, tokenizer = load_model(model_dir)

    def logprob(prompt, completion):
        prompt_ids = tokenizer(prompt).input_ids
        ids = torch.tensor([tokenizer(prompt + completion).input_ids])
        logits = model(ids).logits[0, :-1].log_softmax(-1)
        targets = ids[0, 1:]
        return logits[torch.arange(len(targets)), targets][len(prompt_ids) - 1 :].sum().item()

    return sum(logprob(r["prompt"], r["chosen"]) - logprob(r["prompt"], r["rejected"]) for r in rows) / len(rows)


def test_dpo_moves_the_preference_margin(tmp_path):
    spec = trained(tmp_path, "facts")
    preferences = _preferences()
    dpo = ACTION_TYPES["dpo"](ACTION_TYPES["dpo"].Settings(epochs=2, on_policy=False))
    out = dpo.run({"model": spec, "preference_dataset": preferences, "beta": 0.1, "learning_rate": 1e-3}, context(tmp_path / "dpo"))
    rows = preferences.pairs()
    before, after = _margin(spec.path, rows), _margin(out.model_dir, rows)
    assert after > before + 1.0, (before, after)
    assert out.metrics["train.pairs"] == 32 and out.metrics["train.steps"] == 4
    assert out.step_metrics["train.rewards_margins"][-1][1] > 0


def test_the_reference_model_is_the_model_being_trained_whatever_was_loaded_before(tmp_path):
    """TRL's DPOTrainer loads its reference model from the folder the model's config names. Models of a
    study share one config content, parsed once per process (models/fast_load.py): the config must
    still name the model's own folder, not the first folder with that content (the order dependence
    the export's DPO test once dodged by running in a fresh process)."""
    from lamdagent.models.folders import TINY_LLAMA, build_tiny_llama
    from lamdagent.training.trainer import build_trainer

    shape = {**TINY_LLAMA, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    earlier, trained_here = (build_tiny_llama(tmp_path / name, seed=seed, shape=shape) for name, seed in (("earlier", 1), ("here", 2)))
    assert (earlier / "config.json").read_bytes() == (trained_here / "config.json").read_bytes()
    load_model(earlier)  # what an earlier action or test of the process loaded
    model, tokenizer = load_model(trained_here)
    assert model.config.name_or_path == str(trained_here)
    rows = [{"prompt": "Question: 1+1=\nAnswer:", "chosen": " 2", "rejected": " 3"}] * 2
    trainer, _ = build_trainer("dpo", model, tokenizer, rows, out_dir=tmp_path / "dpo", seed=0, learning_rate=1e-3, epochs=1, batch_size=2,
                               max_length=32, beta=0.1)
    ours, reference = model.state_dict(), trainer.ref_model.state_dict()
    assert all(torch.equal(ours[k], reference[k]) for k in ours)
