"""One `accelerate launch` training process: `python -m lamdagent.training.worker SPEC.json` (lamdagent.training.launch).

Every process loads the model and trains it with the same setup as in-process training (lamdagent.training.trainer);
the main process reports progress, writes the model and the result JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from lamdagent.plugins import load_included
from lamdagent.training.launch import ERROR_MARK, STEP_MARK


def _main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _report_step(step: int, total: int) -> None:
    if _main_process():
        print(f"{STEP_MARK} {step} {total}", flush=True)


def run(spec: dict) -> None:
    """Train as `spec` says; save the model (all processes take part: FSDP/DeepSpeed gather the weights)."""
    import torch

    from lamdagent.models import flops
    from lamdagent.training.spec import LoraSettings
    from lamdagent.training.trainer import build_trainer, load_trainable, run_trainer

    if torch.cuda.is_available():  # each process on its own GPU from the start
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    model, tokenizer = load_trainable(spec["model_dir"], spec["base_dir"], LoraSettings(**spec["lora"]), spec["seed"])
    rows = [json.loads(line) for line in Path(spec["rows"]).read_text().splitlines()]
    hparams = spec["hparams"]
    trainer, track = build_trainer(spec["kind"], model, tokenizer, rows, out_dir=Path(spec["out_dir"]), seed=spec["seed"],
                                   chat_template=spec["chat_template"], on_step=_report_step, **hparams)
    with flops.counting() as counted:  # this process's share; the others' are alike (data parallel)
        result = run_trainer(spec["kind"], trainer, track, tokenizer, rows, hparams["epochs"])
    model_dir = Path(spec["out_dir"]) / "model"
    trainer.save_model(str(model_dir))
    if trainer.is_world_process_zero():
        if not any(model_dir.glob("*.safetensors")):
            raise RuntimeError(f"no weights were saved to {model_dir}: FSDP needs fsdp_state_dict_type: FULL_STATE_DICT, "
                               "DeepSpeed ZeRO-3 zero3_save_16bit_model: true")
        (model_dir / "training_args.bin").unlink(missing_ok=True)  # the folder holds what in-process training writes
        tokenizer.save_pretrained(model_dir)
        fields = {"loss": result.loss, "steps": result.steps, "series": result.series, "tokens": result.tokens, "processes": result.processes,
                  "distributed": result.distributed, "flops": counted.total * result.processes}
        Path(spec["result"]).write_text(json.dumps(fields))
    trainer.accelerator.wait_for_everyone()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        load_included()  # the user's plug-ins (--include), as in the process that launched this one
        run(json.loads(Path(args[0]).read_text()))
    except Exception as err:  # one line the parent turns into ActionFailed
        from lamdagent.errors import ActionFailed

        message = str(err) if isinstance(err, ActionFailed) else f"{type(err).__name__}: {err}"
        print(f"{ERROR_MARK} {' '.join(message.split())}", file=sys.stderr, flush=True)
        return 1
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
