"""Run a pipeline exported by `lamdagent export`, without LaMDAgent: `python run_pipeline.py`.

Needs torch, transformers, trl, peft, datasets, mergekit and PyYAML, at the versions the pipeline
was found with. Runs the steps of pipeline.json in lineage order, each into steps/NN_<name>/model:
SFT and DPO with TRL on the step's train.jsonl and trl_config.json, merges with mergekit on the
step's mergekit.yaml (the same as `mergekit-yaml mergekit.yaml model` with the options of its
step.json). A step whose model folder exists is skipped, so an interrupted run goes on where it
stopped. Paths are relative to this folder.

This file is copied verbatim into every export (from lamdagent/experiments/pipeline_runner.py):
it imports nothing from LaMDAgent.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_trainable(step: dict, config: dict):
    """(model, tokenizer) to train, as LaMDAgent loads them: fp32 unless the config trains in bf16. With
    LoRA, an adapter goes on training and a full model gets a new adapter; without, an adapter is merged
    into its base first."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    dtype = torch.bfloat16 if config.get("bf16") else torch.float32
    lora = step["lora"]
    if step["base_dir"]:  # the input is a LoRA adapter over base_dir
        from peft import PeftModel

        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(step["base_dir"], dtype=dtype), step["model_dir"],
                                          is_trainable=lora["enabled"])
        if not lora["enabled"]:
            model = model.merge_and_unload().requires_grad_(True)
    else:
        model = AutoModelForCausalLM.from_pretrained(step["model_dir"], dtype=dtype)
        if lora["enabled"]:
            from peft import LoraConfig, get_peft_model

            set_seed(step["seed"])  # the adapter's initialisation is drawn here, before the trainer seeds itself
            model = get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                                     target_modules=lora["target_modules"], task_type="CAUSAL_LM"))
    return model, AutoTokenizer.from_pretrained(step["model_dir"])


def train(step_dir: Path, step: dict, out: Path) -> None:
    """SFT or DPO with TRL on the step's exact rows and config; the model (or adapter) and tokenizer to `out`."""
    import trl
    from datasets import Dataset

    config = json.loads((step_dir / "trl_config.json").read_text())
    model, tokenizer = load_trainable(step, config)
    rows = [json.loads(line) for line in (step_dir / "train.jsonl").read_text().splitlines() if line]
    config_cls, trainer_cls = {"sft": (trl.SFTConfig, trl.SFTTrainer), "dpo": (trl.DPOConfig, trl.DPOTrainer)}[step["kind"]]
    trainer = trainer_cls(model=model, args=config_cls(**config), train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.train()
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def merge(step_dir: Path, step: dict, out: Path) -> None:
    """The step's mergekit configuration, merged with its options into `out`."""
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    config = MergeConfiguration.model_validate(yaml.safe_load((step_dir / "mergekit.yaml").read_text()))
    run_merge(config, str(out), options=MergeOptions(**step["options"]))


def main() -> int:
    os.chdir(HERE)
    pipeline = json.loads(Path("pipeline.json").read_text())
    steps = [s for s in pipeline["steps"] if s["kind"] != "base"]
    for number, entry in enumerate(steps, 1):
        step_dir = Path(entry["dir"])
        out = step_dir / "model"
        if out.is_dir():
            print(f"[{number}/{len(steps)}] {entry['name']}: done before", flush=True)
            continue
        print(f"[{number}/{len(steps)}] {entry['name']} = {entry['pipeline']}", flush=True)
        step = json.loads((step_dir / "step.json").read_text())
        partial = step_dir / "model.partial"  # renamed to model/ once whole
        shutil.rmtree(partial, ignore_errors=True)
        (merge if step["kind"] == "merge" else train)(step_dir, step, partial)
        partial.rename(out)
    print(f"final model: {HERE / pipeline['final']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
