"""What counting floating-point operations costs (models/flops.py): the demo's SFT step through the
tool (Runner.produce: training and evaluation), the passes its counted models made, and one counted
pass's hook time measured on its own (the operations per token read once per step, as the hook
does); their product against the step's seconds. Target: <= 1% of the step. Reported too: the
step's operations, and the rate they ran at on this machine."""

from __future__ import annotations

import timeit

from benchmarks._common import Options, Result, Scratch, timed

NAME = "flop_count"
TARGET = 0.01  # the hook's seconds / the step's
QUICK = ["data.train_size=16", "data.val_size=4", "sft.epochs=1"]


def run(opts: Options) -> Result:
    import torch
    from torch.nn.modules.module import register_module_forward_pre_hook

    from lamdagent.actions import ACTION_TYPES
    from lamdagent.exploration.runner import Step
    from lamdagent.models import flops
    from lamdagent.models.folders import load_model
    from lamdagent.space import Action
    from lamdagent.tracking import Kind

    result = Result(NAME, "the operation count's own time against a real SFT step")
    s = Scratch("demo", QUICK if opts.quick else [])
    cfg, base = s.cfg, s.base()
    action = Action(ACTION_TYPES["sft"](cfg.sft), {"model": base, "dataset": s.study.dataset("all"),
                                                   "learning_rate": float(cfg.sft.learning_rate[0])}, cfg.seed)
    passes = [0]

    def note(module, args):  # every pass of a counted model (the models the step loads)
        passes[0] += getattr(module, "_lamdagent_flops_hooked", False)

    handle = register_module_forward_pre_hook(note)
    try:
        seconds, produced = timed(lambda: s.runner.produce(Step.of_action(action, Kind.ACTION, 1, "m1"), finish=True))
    finally:
        handle.remove()
    if produced.model is None:
        raise RuntimeError(f"the SFT step failed: {produced.error}")
    model, _ = load_model(base.path)
    model.train()
    ids = torch.ones((cfg.sft.batch_size, 64), dtype=torch.long)
    calls = 2000 if not opts.quick else 200
    with flops.counting():
        flops._on_forward(model, (), {"input_ids": ids})  # the step's first pass reads the rates; the others find them
        hook = timeit.timeit(lambda: flops._on_forward(model, (), {"input_ids": ids}), number=calls) / calls
    result.details = {"step_s": seconds, "passes": passes[0], "hook_s": hook, "flops": produced.compute_flops}
    result.check("counted passes in the step", passes[0])
    result.check("one pass's count", hook * 1e6, "µs")
    result.check("count / step", passes[0] * hook / seconds, "ratio", at_most=TARGET)
    result.check("the step's operations", produced.compute_flops, "FLOPs")
    result.check("the step's rate", produced.compute_flops / seconds / 1e9, "GFLOP/s")
    return result
