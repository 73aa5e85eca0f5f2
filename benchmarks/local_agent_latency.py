"""Latency of one agent decision with the local agent's model (deploy/local-agent.sh, docs/local-agent.md):
Qwen2.5-Coder-1.5B-Instruct Q4_K_M served by llama.cpp, against the same GGUF dequantised to fp32 and run
by transformers through the `local` backend's own code (`LocalChatModel`, constrained decoding). Same
prompt, same options, temperature 0.

    deploy/local-agent.sh
    python -m benchmarks.local_agent_latency                    # both (transformers needs ~7 GB of memory)
    python -m benchmarks.local_agent_latency --only server      # the llama.cpp server alone
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.local_llm_latency import DATASETS, LEARNING_RATES, MODELS, decision_prompt
from lamdagent.files import cache_dir

DEFAULT_GGUF = cache_dir() / "local-agent" / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
SFT_OPTIONS = [{"model": m, "dataset": d, "learning_rate": lr} for m in MODELS for d in DATASETS for lr in LEARNING_RATES]
TYPE_OPTIONS = [{"action_type": t} for t in ("sft", "dpo", "ties", "slerp", "task_arithmetic")]


class Counter:
    """Counts a conversation's chat-template tokens with the GGUF's own tokenizer (what `decision_prompt` needs)."""

    def __init__(self, gguf: Path):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)

    def _prompt_ids(self, messages: list[dict]) -> list[int]:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def measure(chat, messages: list[dict]) -> dict:
    """The two steps of a decision (action type, then the objects) and a memory update, each timed once."""
    memory = [{"role": "user", "content": messages[0]["content"] + "\nRewrite your memory in at most 60 words: Lessons: ... Next: ..."}]
    out = {}
    for label, call in [("choose action type", lambda: chat.choose(messages, TYPE_OPTIONS, temperature=0.0)),
                        ("choose sft objects", lambda: chat.choose(messages, SFT_OPTIONS, temperature=0.0)),
                        ("chat memory (max 96 tokens)", lambda: chat.chat(memory, max_tokens=96, temperature=0.0))]:
        seconds, reply = timed(call)
        out[label] = {"seconds": round(seconds, 2), "reply": reply[:120]}
        print(f"  {label}: {seconds:.1f} s -> {json.dumps(reply[:80])}", flush=True)
    return out


def server(messages: list[dict], args) -> dict:
    from lamdagent.agent.llm import openai_chat

    os.environ.setdefault(args.api_key_env, "local")  # a local llama.cpp server accepts any key
    chat = openai_chat(args.model, args.base_url, args.api_key_env, "the benchmark", timeout=900)
    print(f"llama.cpp server {args.base_url} ({args.model}):")
    out = measure(chat, messages)
    out["structured_form"], out["negotiation"] = chat.structured_form, chat.negotiation
    print(f"  structured form: {chat.structured_form}; negotiation: {chat.negotiation}")
    return out


def transformers_fp32(messages: list[dict], gguf: Path) -> dict:
    """The GGUF dequantised to fp32 by transformers, saved as safetensors in a temporary folder (as the
    `local` backend converts SmolLM2), then run by `LocalChatModel`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lamdagent.agent.local_llm import LocalChatModel

    print(f"transformers {torch.get_num_threads()} threads, {gguf.name} dequantised to fp32:")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as folder:
        started = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
        del model
        convert = time.perf_counter() - started
        size = sum(f.stat().st_size for f in Path(folder).iterdir()) / 2**30
        print(f"  GGUF -> safetensors: {convert:.0f} s, {size:.1f} GiB")
        load, chat = timed(lambda: LocalChatModel(model_dir=folder, max_prompt_tokens=8192))
        print(f"  load: {load:.1f} s")
        out = measure(chat, messages)
    return {"convert_seconds": round(convert, 1), "safetensors_gib": round(size, 2), "load_seconds": round(load, 1), **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", type=Path, default=DEFAULT_GGUF)
    parser.add_argument("--base-url", default="http://127.0.0.1:8765/v1")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--api-key-env", default="LAMDAGENT_LOCAL_AGENT_KEY")
    parser.add_argument("--prompt-tokens", type=int, default=700)
    parser.add_argument("--only", choices=["server", "transformers"])
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    counter = Counter(args.gguf)
    messages = decision_prompt(counter, args.prompt_tokens)
    tokens = len(counter._prompt_ids(messages))
    print(f"decision prompt: {tokens} tokens; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results = {"prompt_tokens": tokens, "load_average": round(os.getloadavg()[0], 1)}
    if args.only != "transformers":
        results["server"] = server(messages, args)
    if args.only != "server":
        results["transformers_fp32"] = transformers_fp32(messages, args.gguf)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
