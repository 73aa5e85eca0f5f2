"""Greedy, batched generation with left padding (temperature 0, as the paper evaluates)."""

from __future__ import annotations

from typing import Callable

import torch


@torch.inference_mode()
def generate_greedy(
    model,
    tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
    stop_strings: list[str] = (),
) -> list[str]:
    """The greedy continuation of each prompt, decoded without special tokens. Prompts are batched
    longest first (as lm-evaluation-harness does), so a batch pads little; outputs keep the input order.
    `stop_strings`: a row stops generating once it writes one (a batch ends when every row has), and
    its text is cut at the first one, as lm-eval cuts its generations."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    model.eval()
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]] if prompts else []
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    outputs: list[str] = [""] * len(prompts)
    for start in range(0, len(prompts), batch_size):
        indices = order[start : start + batch_size]
        batch = [prompts[i] for i in indices]
        encoded = tokenizer(batch, return_tensors="pt", padding=True).to(device)
        generated = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **({"stop_strings": list(stop_strings), "tokenizer": tokenizer} if stop_strings else {}),
        )
        new_tokens = generated[:, encoded["input_ids"].shape[1] :]
        for i, text in zip(indices, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
            outputs[i] = cut_at_stop(text, stop_strings)
        if on_batch:
            on_batch(len(batch))
    return outputs


def cut_at_stop(text: str, stop_strings: list[str]) -> str:
    """The text up to its first stop string (lm-eval's HF backend: `s.split(term)[0]` for each term)."""
    for term in stop_strings:
        if term:
            text = text.split(term)[0]
    return text


AUTO = "auto"


def resolve_batch_size(setting: int | str, model=None, *, max_tokens: int = 512) -> int:
    """`evaluation.batch_size`: a number as given, or `auto`: as many sequences as half of the free
    memory (GPU if the model is on one, else RAM) holds, counting the KV cache and the logits; at
    most 256 on a GPU and 64 on the CPU, where larger batches stop paying (benchmarks/batched_eval.py)."""
    if setting != AUTO:
        return int(setting)
    if model is None:
        return 64
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = getattr(config, "num_attention_heads", 1)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    dtype_bytes = next(model.parameters()).element_size()
    per_sequence = dtype_bytes * max_tokens * (2 * config.num_hidden_layers * kv_heads * head_dim + 4 * config.hidden_size) + 4 * config.vocab_size
    device = next(model.parameters()).device
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        ceiling = 256
    else:
        import psutil

        free, ceiling = psutil.virtual_memory().available, 64
    return max(1, min(ceiling, int(free // 2 // per_sequence)))


def vllm_generator(model_dir, *, dtype: str = "bfloat16", gpu_memory_utilization: float = 0.85) -> Callable:
    """A `generate(prompts, max_new_tokens, on_batch)` over vLLM for the model folder (greedy, as
    generate_greedy); vLLM is imported here, only when the `vllm` backend is chosen. bf16 as the HF
    backend on CUDA (vLLM's "auto" would run the fp32 folders the actions write in fp16)."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        from lamdagent.errors import UserError

        raise UserError("evaluation.backend=vllm needs vLLM: pip install vllm (a CUDA machine), or use evaluation.backend=hf") from None
    from lamdagent.models import flops

    llm = LLM(model=str(model_dir), dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, seed=0)
    per_token = flops.per_token_of_folder(model_dir)

    def generate(prompts: list[str], max_new_tokens: int, on_batch: Callable[[int], None] | None = None, stop_strings: list[str] = ()) -> list[str]:
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, skip_special_tokens=True, stop=list(stop_strings) or None)
        outputs = llm.generate(prompts, params, use_tqdm=False)
        flops.add(per_token * sum(len(out.prompt_token_ids) + len(out.outputs[0].token_ids) for out in outputs))
        if on_batch:
            on_batch(len(prompts))
        return [cut_at_stop(out.outputs[0].text, stop_strings) for out in outputs]

    return generate
