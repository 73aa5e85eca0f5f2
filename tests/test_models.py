"""Loading a model folder: the single-file path gives what from_pretrained gives, anything it does
not know goes to from_pretrained, and evaluations share a tokenizer only when its files are equal."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from lamdagent.models.fast_load import load_single_file, shared_tokenizer
from lamdagent.models.folders import TINY_LLAMA, build_tiny_llama, load_model

SMALL = {**TINY_LLAMA, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}


@pytest.mark.parametrize("tie", [True, False])
def test_a_single_file_folder_loads_as_from_pretrained_loads_it(tmp_path, tie):
    path = build_tiny_llama(tmp_path / "m", shape={**SMALL, "tie_word_embeddings": tie})
    expected = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    loaded = load_single_file(path, torch.float32)

    assert loaded is not None and not loaded.training
    ours, theirs = loaded.state_dict(), expected.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert (loaded.lm_head.weight is loaded.model.embed_tokens.weight) is tie
    assert loaded.generation_config.to_dict() == expected.generation_config.to_dict()
    tokens = torch.tensor([[1, 5, 9, 2]])
    assert torch.equal(loaded(tokens).logits, expected(tokens).logits)


def test_other_folders_go_to_from_pretrained(tmp_path):
    path = build_tiny_llama(tmp_path / "m", shape=SMALL)
    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(path).save_pretrained(sharded, max_shard_size="20KB")
    shutil.copy(path / "tokenizer.json", sharded)
    shutil.copy(path / "tokenizer_config.json", sharded)
    assert load_single_file(sharded, torch.float32) is None
    model, _ = load_model(sharded)
    assert torch.equal(model.model.embed_tokens.weight, AutoModelForCausalLM.from_pretrained(path).model.embed_tokens.weight)

    state = load_file(path / "model.safetensors")
    save_file({**state, "unknown.weight": torch.zeros(2)}, path / "model.safetensors", metadata={"format": "pt"})
    assert load_single_file(path, torch.float32) is None  # a tensor the model does not have


def test_evaluations_share_a_tokenizer_only_for_identical_files(tmp_path):
    path = build_tiny_llama(tmp_path / "m", shape=SMALL)
    copy_dir = tmp_path / "copy"
    shutil.copytree(path, copy_dir)
    first = shared_tokenizer(path)
    assert shared_tokenizer(copy_dir) is first  # a merge's copy of its donor's tokenizer
    _, evaluated = load_model(copy_dir, for_evaluation=True)
    _, trained = load_model(copy_dir)
    assert evaluated is first and trained is not first  # training gets its own

    config = copy_dir / "tokenizer_config.json"
    config.write_text(config.read_text().replace('"<pad>"', '"</s>"', 1))
    assert shared_tokenizer(copy_dir) is not first


def test_a_parsed_config_is_reused_but_never_shared(tmp_path):
    path = build_tiny_llama(tmp_path / "m", shape=SMALL)
    first = load_single_file(path, torch.float32)
    first.config.pad_token_id = 99  # what a caller may do to its model's config
    assert load_single_file(path, torch.float32).config.pad_token_id != 99


def test_the_warm_up_stream_is_none_of_the_tasks_splits():
    from lamdagent.evaluation.tasks import load_task
    from lamdagent.models.warm import warm_rows

    rows = warm_rows()
    assert len(rows) == 900 and sum(r["completion"].startswith(" [[") for r in rows) == 300  # choice answers in the [[X]] format
    arith = {r["prompt"] for r in rows if "How many" in r["prompt"]}
    for split in ("train", "val", "test"):
        drawn = [ex.prompt for ex in load_task("arith").examples(split, 50)]
        assert sum(p in arith for p in drawn) < len(drawn) / 2  # an independent draw, not the same stream


@pytest.mark.slow
def test_the_warm_base_already_half_knows_the_skills(tmp_path, monkeypatch):
    """builtin:tiny-llama-warm is built once (cached by its recipe) and knows the facts the random base does not."""
    from lamdagent.evaluation.evaluator import evaluate
    from lamdagent.evaluation.tasks import load_task
    from lamdagent.models.folders import resolve_base_model

    warm = resolve_base_model("builtin:tiny-llama-warm")
    assert warm == resolve_base_model("builtin:tiny-llama-warm") and not (warm / "trainer").exists()
    cold = resolve_base_model("builtin:tiny-llama")
    facts = [load_task("facts")]
    scores = {path: evaluate(*load_model(path), facts, "val", 30).scores["facts"] for path in (warm, cold)}
    assert scores[cold] == 0.0 and scores[warm] >= 0.5, scores
