"""Latency of the offline agent (SmolLM2-135M-Instruct on CPU): load, decision (`choose`) and memory
update (`chat`), on prompts the size of the agent's real ones.

    python benchmarks/local_llm_latency.py            # uses $LAMDAGENT_CACHE (converts once if needed)
    python benchmarks/local_llm_latency.py --fresh    # also times the GGUF conversion, in a temp cache
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from lamdagent.agent.local_llm import LocalChatModel

MODELS = [f"model_{i}" for i in range(5)]
DATASETS = ["gsm8k", "arc", "boolq", "all"]
LEARNING_RATES = ["1e-4", "3e-4"]


def decision_prompt(model: LocalChatModel, target_tokens: int) -> list[dict]:
    """An objects prompt like the agent's: header, a growing model list, slots and the reply format."""
    header = (
        "You are LaMDAgent, an expert machine-learning engineer who builds post-training pipelines for a language model.\n"
        "Goal: the highest multi-task validation score on these tasks: gsm8k, arc, boolq.\n"
        "Your memory: Lessons: SFT on all data helped most (0.41); merging two SFT models was neutral. "
        "Next: try a lower learning rate on the best model.\nModels available (validation score; per-task scores):\n"
    )
    footer = (
        '\nYou chose the action type "sft": supervised fine-tuning of a model on a dataset.\n'
        'Now choose one value for each of its slots:\n- "model": any model listed above\n'
        f'- "dataset": {", ".join(DATASETS)}\n- "learning_rate": {", ".join(LEARNING_RATES)}\n'
        'Reply with JSON only, exactly in this form: {"model": "<model>", "dataset": "<dataset>", "learning_rate": "<float>"}'
    )
    lines = []
    while True:
        i = len(lines)
        scores = f"score 0.{30 + i % 50} (gsm8k 0.{20 + i % 60}, arc 0.{40 + i % 40}, boolq 0.{50 + i % 30})"
        lines.append(f"- model_{i % 5}_{i} = sft(merge(model_{i % 3}, model_{i % 4}), gsm8k, 1e-4): {scores}")
        messages = [{"role": "user", "content": header + "\n".join(lines) + footer}]
        if len(model._prompt_ids(messages)) >= target_tokens:
            return messages


def timed(call, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true", help="convert the GGUF into a temporary cache first (timed)")
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    if args.fresh:
        with tempfile.TemporaryDirectory() as cache:
            started = time.perf_counter()
            LocalChatModel(cache_dir=cache)
            print(f"first load (GGUF conversion): {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    model = LocalChatModel()
    print(f"load from the safetensors cache: {time.perf_counter() - started:.1f} s")

    messages = decision_prompt(model, args.prompt_tokens)
    sft_options = [{"model": m, "dataset": d, "learning_rate": lr} for m in MODELS for d in DATASETS for lr in LEARNING_RATES]
    merge_options = [{"model_a": a, "model_b": b, "method": method} for a in MODELS for b in MODELS if a != b for method in ("ties", "slerp")]
    type_options = [{"action_type": t} for t in ("sft", "dpo", "ties", "slerp", "task_arithmetic")]
    print(f"decision prompt: {len(model._prompt_ids(messages))} tokens")
    for label, options in [("action type", type_options), ("sft objects", sft_options), ("merge objects", merge_options)]:
        seconds, reply = timed(lambda: model.choose(messages, options), args.repeats)
        print(f"choose, {label} ({len(options)} options over {len(options[0])} fields): {seconds:.2f} s -> {reply}")

    memory = [{"role": "user", "content": messages[0]["content"] + "\nRewrite your memory in at most 60 words: Lessons: ... Next: ..."}]
    seconds, reply = timed(lambda: model.chat(memory, max_tokens=96), args.repeats)
    new_tokens = len(model.tokenizer.encode(reply, add_special_tokens=False))
    print(f"chat, memory update (max 96 new tokens, wrote {new_tokens}): {seconds:.2f} s -> {json.dumps(reply[:80])}...")


if __name__ == "__main__":
    main()
