"""Evaluation speed against the peer the field uses: our batched evaluator (`generate_greedy`) and
lm-evaluation-harness's HF backend (`HFLM.generate_until`) on the same model, prompts and
generation settings (greedy, the same stop strings, the same batch size), in ABBA order.
Reported: the ratio of generated tokens per second (ours / lm-eval's) and how many generations are
identical. Target: >= 1.0x with every generation identical. Needs lm_eval (make install)."""

from __future__ import annotations

from benchmarks._common import Options, Result, median, timed
from lamdagent.errors import UserError

NAME = "eval_peer"
TARGET = 1.0
UNTIL = ["Question:", "</s>", "<|im_end|>"]  # lm-eval's gsm8k task


def _prompts(n: int) -> list[str]:
    """GSM8K-style zero-shot prompts of varied length (GSM-Symbolic's instances, shipped offline)."""
    from lamdagent.evaluation.tasks import load_task

    task = load_task("mgsm_symbolic_eng")  # 50 validation and 50 test instances
    return [example.prompt for split in ("val", "test") for example in task.examples(split, 50)][:n]


def run(opts: Options) -> Result:
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        raise UserError("eval_peer needs lm-evaluation-harness: make install (or pip install --no-deps lm_eval==0.4.13)") from None
    from lamdagent.evaluation.generation import generate_greedy
    from lamdagent.models.folders import load_model, resolve_base_model

    result = Result(NAME, "our batched evaluator vs lm-evaluation-harness's HF backend (same model, prompts, settings)")
    model_ref = "builtin:tiny-llama" if opts.quick else "builtin:smollm2-135m-instruct"
    model, tokenizer = load_model(resolve_base_model(model_ref, 0))
    n, new_tokens, batch = (8, 16, 4) if opts.quick else (64, 128, 16)
    prompts = _prompts(n)
    peer = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch, max_length=2048)
    settings = {"until": UNTIL, "max_gen_toks": new_tokens, "do_sample": False, "temperature": 0.0}

    def ours() -> list[str]:
        return generate_greedy(model, tokenizer, prompts, max_new_tokens=new_tokens, batch_size=batch, stop_strings=UNTIL)

    def theirs() -> list[str]:
        requests = [Instance(request_type="generate_until", doc={}, arguments=(p, dict(settings)), idx=i) for i, p in enumerate(prompts)]
        return peer.generate_until(requests, disable_tqdm=True)

    ours()
    theirs()  # warm-up, untimed
    seconds = {"ours": [], "lm_eval": []}
    outputs = {}
    for _ in range(1 if opts.quick else max(1, opts.repeats // 2)):
        for label, call in (("ours", ours), ("lm_eval", theirs), ("lm_eval", theirs), ("ours", ours)):
            wall, outputs[label] = timed(call)
            seconds[label].append(wall)
    tokens = {label: sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts) for label, texts in outputs.items()}
    same = sum(a == b for a, b in zip(outputs["ours"], outputs["lm_eval"]))
    rate = {label: tokens[label] / median(seconds[label]) for label in seconds}
    result.details = {"model": model_ref, "prompts": n, "max_new_tokens": new_tokens, "batch_size": batch, "until": UNTIL,
                      "seconds": seconds, "generated_tokens": tokens, "identical": same,
                      "first_difference": next(({"ours": a, "lm_eval": b} for a, b in zip(outputs["ours"], outputs["lm_eval"]) if a != b), None)}
    result.check("generated tokens/s, ours / lm-eval's", rate["ours"] / rate["lm_eval"], "x", at_least=None if opts.quick else TARGET)
    result.check("identical generations", same / n, "fraction", at_least=None if opts.quick else 1.0)
    result.check("ours: tokens/s", rate["ours"], "tok/s")
    result.check("lm-eval: tokens/s", rate["lm_eval"], "tok/s")
    return result
