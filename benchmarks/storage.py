"""Bytes stored per produced model vs. the model's own size, for a full SFT and a LoRA SFT:
registering adds no copy and no working copy is left behind. Target: 1.0x."""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks._common import Options, Result, Scratch

NAME = "storage"
SMALL = ["data.train_size=16", "data.val_size=4", "sft.epochs=1"]  # sizes do not depend on how long it trains


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _weights(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*.safetensors"))


def measure(lora: bool) -> dict:
    """Produce one SFT model through the tool; the store's growth and its weight files vs. the model's."""
    from lamdagent.actions import ACTION_TYPES
    from lamdagent.exploration.runner import Step
    from lamdagent.files import cache_dir
    from lamdagent.space import Action
    from lamdagent.tracking import Kind

    s = Scratch("demo", SMALL + (["sft.lora.enabled=true"] if lora else []))
    base = s.base()
    artifacts = s.artifacts
    before, before_weights = (_bytes(artifacts), _weights(artifacts)) if artifacts.exists() else (0, 0)
    action = Action(ACTION_TYPES["sft"](s.cfg.sft), {"model": base, "dataset": s.study.dataset(s.study.task_names[0]),
                                                     "learning_rate": float(s.cfg.sft.learning_rate[0])}, s.cfg.seed)
    produced = s.runner.produce(Step.of_action(action, Kind.ACTION, 1, "m1"))
    assert produced.model is not None, produced.error
    model_dir = s.tracker.model_dir(produced.model.model_id)
    model_bytes = s.tracker.run(produced.run_id).data.metrics["model.bytes"]
    stored_weights = _weights(artifacts) - before_weights
    figures = {"model_bytes": model_bytes, "model_weight_bytes": _weights(model_dir), "stored_weight_bytes": stored_weights,
               "stored_model_folder_bytes": _bytes(model_dir), "store_growth_bytes": _bytes(artifacts) - before,
               "base_model_bytes": _bytes(base.path), "work_left_behind": (cache_dir() / "work" / produced.run_id).exists(),
               "registered_versions": len(s.tracker.client.search_model_versions(f"name = '{s.study.registered_model}'"))}
    shutil.rmtree(s.root, ignore_errors=True)
    return figures


def run(opts: Options) -> Result:
    result = Result(NAME, "bytes stored per produced model vs the model's own size (full and LoRA)")
    for label, lora in (("full", False), ("lora", True)):
        f = measure(lora)
        result.details[label] = f
        result.check(f"{label}: stored model folder / model", f["stored_model_folder_bytes"] / f["model_bytes"], "x", at_most=1.0)
        result.check(f"{label}: weight files in the store / model's", f["stored_weight_bytes"] / f["model_weight_bytes"], "x", at_most=1.0)
        result.check(f"{label}: store growth (predictions, metadata too) / model", f["store_growth_bytes"] / f["model_bytes"], "x")
        result.check(f"{label}: model / base model", f["model_bytes"] / f["base_model_bytes"], "x")
        result.check(f"{label}: working copies left behind", float(f["work_left_behind"]), "", at_most=0)
    return result
