"""Training and evaluation throughput through the tool's own paths (lamdagent.training.trainer, evaluate()).

SFT: SmolLM2-135M-Instruct (the demo's tiny base with --quick) on the demo study's training data for
a fixed number of steps (SIZES). Tokens/s counts real tokens (prompt + completion, no padding) over
the wall time of `trainer.train()` (model load excluded), and again from the end of step 1 on (steady
state). bf16 on CUDA, fp32 on the CPU, as the tool trains. The demo's examples are short (~28 tokens),
so they will not saturate a GPU: the figures describe this workload, not the hardware's best.

MFU (CUDA only) = achieved model FLOP/s / the GPU's dense bf16 peak (PEAK_BF16, by device name; an
unknown GPU gets no MFU). Training FLOPs per token = 6 * n_params + 12 * n_layers * hidden * seq_len
(PaLM, Chowdhery et al. 2022, appendix B), seq_len = the mean real length of a training example.
No MFU on the CPU: it has no reliable peak.

Evaluation: examples/s and generated tokens/s (outputs re-tokenised, EOS not counted) of evaluate()
on the validation split with the HF backend, on the same base model; also with vLLM (bf16) and the
vLLM / HF ratio where vLLM is importable and CUDA is available. All figures are reported only."""

from __future__ import annotations

import gc
import re
import tempfile
import time
from dataclasses import dataclass, field

from benchmarks._common import Options, Result, median, timed

NAME = "throughput"
BASE_MODEL = "builtin:smollm2-135m-instruct"  # --quick: the demo study's own tiny base
SIZES = {  # SFT steps of batch_size examples; validation examples per task for the evaluation
    "quick": {"batch_size": 4, "steps": 2, "eval_per_task": 2},
    "cpu": {"batch_size": 8, "steps": 10, "eval_per_task": 16},  # ~1 min on 2 idle cores
    "cuda": {"batch_size": 16, "steps": 50, "eval_per_task": 50},  # the demo's SFT batch size and validation split
}
LEARNING_RATE = 1e-5  # throughput does not depend on it; small, so that a real model never diverges
PEAK_BF16 = (  # (device-name pattern, dense bf16 FLOP/s); the first match wins, so specific names come first
    (r"H100 PCIe", 756e12),
    (r"H100 (SXM|80GB HBM3)", 989e12),
    (r"H200", 989e12),
    (r"A100", 312e12),
    (r"L40S", 362e12),
    (r"\bL4\b", 121e12),
    (r"A10G", 125e12),
    (r"RTX 4090", 165e12),
)


def peak_bf16_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name, or None if it is not in PEAK_BF16."""
    return next((peak for pattern, peak in PEAK_BF16 if re.search(pattern, device_name)), None)


def flops_per_token(n_params: int, n_layers: int, hidden: int, seq_len: float) -> float:
    """Training FLOPs per token, forward and backward (PaLM appendix B)."""
    return 6 * n_params + 12 * n_layers * hidden * seq_len


@dataclass
class StepMeter:
    """Real tokens of each forward pass (from the attention mask) and the time each optimiser step ends."""

    tokens: list[int] = field(default_factory=list)
    step_ends: list[float] = field(default_factory=list)

    def attach(self, model, trainer):
        from transformers import TrainerCallback

        meter = self

        class OnStepEnd(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                meter.step_ends.append(time.perf_counter())

        def count(module, args, kwargs):
            mask = kwargs.get("attention_mask")
            self.tokens.append(int(mask.sum()) if mask is not None else kwargs["input_ids"].numel())

        trainer.add_callback(OnStepEnd())
        return model.register_forward_pre_hook(count, with_kwargs=True)

    def steady_tokens_per_second(self) -> float:
        """Tokens/s from the end of step 1 to the end of the last step (one forward per step)."""
        return sum(self.tokens[1:]) / (self.step_ends[-1] - self.step_ends[0])


def device_name() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def train(cfg, study, model, tokenizer, size: dict) -> dict:
    """SFT for `size["steps"]` steps of `size["batch_size"]` examples through build_trainer / run_trainer."""
    from lamdagent.training.trainer import build_trainer, run_trainer

    needed = size["steps"] * size["batch_size"]
    mixed = study.dataset("all")  # the demo's three tasks, shuffled together
    rows = type(mixed)(mixed.name, mixed.tasks, -(-needed // len(mixed.tasks)), cfg.seed).rows()[:needed]
    with tempfile.TemporaryDirectory(prefix="lamdagent-throughput-") as out_dir:  # the trainer saves nothing (save_strategy=no)
        trainer, track = build_trainer("sft", model, tokenizer, rows, out_dir=out_dir, seed=cfg.seed, chat_template=cfg.chat_template,
                                       learning_rate=LEARNING_RATE, epochs=1, batch_size=size["batch_size"], max_length=cfg.sft.max_length)
        meter = StepMeter()
        hook = meter.attach(model, trainer)
        seconds, trained = timed(lambda: run_trainer("sft", trainer, track, tokenizer, rows, 1))
        hook.remove()
    assert len(meter.tokens) == trained.steps, "one forward pass per step expected (no gradient accumulation)"
    return {"dtype": "bf16" if trainer.args.bf16 else "fp32", "examples": len(rows), "steps": trained.steps, "tokens": trained.tokens,
            "seconds": seconds, "tokens_per_s": trained.tokens / seconds, "steady_tokens_per_s": meter.steady_tokens_per_second(),
            "seq_len": trained.tokens / len(rows), "max_length": cfg.sft.max_length}


def eval_throughput(study, cfg, tokenizer, n: int, repeats: int, **backend) -> dict:
    """examples/s and generated tokens/s of evaluate() on `n` validation examples per task (median of
    `repeats`, after an untimed warm-up); `backend`: model= (HF) or generate= (vLLM)."""
    from lamdagent.evaluation.evaluator import evaluate

    def once(count):
        return evaluate(backend.get("model"), tokenizer, study.tasks, "val", count, seed=cfg.seed, batch_size=cfg.evaluation.batch_size,
                        generate=backend.get("generate"), chat_template=cfg.chat_template)

    once(1)
    runs = [timed(lambda: once(n)) for _ in range(repeats)]
    seconds = median([s for s, _ in runs])
    generations = [row["generation"] for rows in runs[0][1].predictions.values() for row in rows]
    generated = sum(len(tokenizer(g, add_special_tokens=False).input_ids) for g in generations)
    return {"examples": len(generations), "generated_tokens": generated, "seconds": [s for s, _ in runs],
            "examples_per_s": len(generations) / seconds, "generated_tokens_per_s": generated / seconds}


def vllm_ready() -> bool:
    """Whether vLLM can run here: CUDA and an importable vllm."""
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def free_gpu_memory() -> None:
    """Collect the dropped HF model (and its optimiser states) before vLLM claims the GPU's memory."""
    import torch

    gc.collect()
    torch.cuda.empty_cache()


def report_training(result: Result, trained: dict, n_params: int, config, device: str, cuda: bool) -> None:
    result.check("SFT: real tokens (prompt + completion, no padding) / s, whole trainer.train()", trained["tokens_per_s"], "tok/s")
    result.check("SFT: same, steady state (after step 1)", trained["steady_tokens_per_s"], "tok/s")
    per_token = flops_per_token(n_params, config.num_hidden_layers, config.hidden_size, trained["seq_len"])
    peak = peak_bf16_flops(device) if cuda else None
    result.details["flops_per_token"] = per_token
    if peak is None:
        result.details["mfu"] = f"not reported: no peak bf16 FLOP/s known for {device}" if cuda else "not reported on the CPU (no reliable peak)"
        return
    result.details["mfu"] = {"peak_bf16_flops": peak}
    result.check("SFT: MFU, steady state (6N + 12 L H S FLOPs/token, dense bf16 peak)", trained["steady_tokens_per_s"] * per_token / peak, "fraction")


def run(opts: Options) -> Result:
    import torch

    from lamdagent.config import load_config
    from lamdagent.exploration.study import Study
    from lamdagent.models.folders import load_model, resolve_base_model

    result = Result(NAME, "SFT tokens/s (MFU on CUDA) and evaluation throughput (HF; vLLM where installed)")
    cuda = torch.cuda.is_available()
    size = SIZES["quick" if opts.quick else "cuda" if cuda else "cpu"]
    cfg = load_config("demo", [] if opts.quick else [f"base_model={BASE_MODEL}"])
    study = Study(cfg)
    base_dir = resolve_base_model(cfg.base_model, cfg.seed)
    model, tokenizer = load_model(base_dir)
    config, device, n_params = model.config.get_text_config(), device_name(), model.num_parameters()
    repeats = 1 if opts.quick else opts.repeats

    hf = eval_throughput(study, cfg, tokenizer, size["eval_per_task"], repeats, model=model)
    trained = train(cfg, study, model, tokenizer, size)
    result.details = {"device": device, "base_model": cfg.base_model, "n_params": n_params, "batch_size": size["batch_size"],
                      "sft": trained, "eval_hf": hf, "eval_batch_size": cfg.evaluation.batch_size}
    report_training(result, trained, n_params, config, device, cuda)
    result.check(f"eval, HF: examples / s ({hf['examples']} examples)", hf["examples_per_s"], "ex/s")
    result.check("eval, HF: generated tokens / s", hf["generated_tokens_per_s"], "tok/s")
    if not vllm_ready():
        result.details["eval_vllm"] = "not run: needs vllm and CUDA"
        return result
    del model
    free_gpu_memory()
    from lamdagent.evaluation.generation import vllm_generator

    vllm = eval_throughput(study, cfg, tokenizer, size["eval_per_task"], repeats, generate=vllm_generator(base_dir))
    result.details["eval_vllm"] = vllm
    result.check("eval, vLLM: generated tokens / s", vllm["generated_tokens_per_s"], "tok/s")
    result.check("eval: vLLM / HF, generated tokens / s", vllm["generated_tokens_per_s"] / hf["generated_tokens_per_s"], "x")
    return result
