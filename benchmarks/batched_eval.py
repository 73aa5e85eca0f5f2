"""Batched evaluation (the evaluator: left-padded batches of `evaluation.batch_size`) vs. a
per-example `generate` loop, on the same model and validation data. Target: >= 5x."""

from __future__ import annotations

from benchmarks._common import Options, Result, median, timed

NAME = "batched_eval"
TARGET = 5.0


def per_example(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """The loop a script without batching writes: one prompt, one generate call."""
    import torch

    outputs = []
    with torch.inference_mode():
        for prompt in prompts:
            encoded = tokenizer(prompt, return_tensors="pt")
            generated = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            outputs.append(tokenizer.decode(generated[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True))
    return outputs


def run(opts: Options) -> Result:
    from lamdagent.config import load_config
    from lamdagent.evaluation.evaluator import evaluate
    from lamdagent.exploration.study import Study
    from lamdagent.models.folders import load_model, resolve_base_model

    result = Result(NAME, "batched evaluation vs a per-example generate loop (same model, same data)")
    cfg = load_config("demo", ["data.val_size=8"] if opts.quick else [])
    study = Study(cfg)
    model, tokenizer = load_model(resolve_base_model(cfg.base_model, cfg.seed))
    n = cfg.data.val_size
    examples = {t.name: t.examples("val", n, cfg.seed) for t in study.tasks}

    def loop():
        return {t.name: per_example(model, tokenizer, [ex.prompt for ex in examples[t.name]], t.spec.max_new_tokens) for t in study.tasks}

    def batched(size):
        return lambda: {t: [r["generation"] for r in rows] for t, rows in
                        evaluate(model, tokenizer, study.tasks, "val", n, seed=cfg.seed, batch_size=size).predictions.items()}

    batched(cfg.evaluation.batch_size)()  # warm-up
    repeats = 1 if opts.quick else opts.repeats
    times = {"loop": [], "batched": [], "auto": []}
    outputs = {}
    for r in range(repeats):  # the slow loop once: its 5x margin is far above the noise
        for label, call in (("loop", loop), ("batched", batched(cfg.evaluation.batch_size)), ("auto", batched("auto")))[r > 0:]:
            seconds, outputs[label] = timed(call)
            times[label].append(seconds)
    same = sum(a == b for t in outputs["loop"] for a, b in zip(outputs["loop"][t], outputs["batched"][t]))
    total = sum(len(v) for v in outputs["loop"].values())
    result.details = {"examples": total, "batch_size": cfg.evaluation.batch_size, "seconds": times, "same_generations": same}
    result.check(f"speed-up, batch {cfg.evaluation.batch_size} vs per-example", median(times["loop"]) / median(times["batched"]), "x",
                 at_least=TARGET)
    result.check("speed-up, batch auto vs per-example", median(times["loop"]) / median(times["auto"]), "x")
    result.check(f"per-example loop, {total} examples", median(times["loop"]), "s")
    result.check("generations identical to the loop's", same / total, "fraction")
    return result
