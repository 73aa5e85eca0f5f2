"""Launching SFT/DPO training through `accelerate launch` (multi-GPU: DDP, FSDP, DeepSpeed).

The exploration stays one process; only training fans out. The parent writes a spec (trainer kind,
hyperparameters, model folders, rows), runs `accelerate launch ... -m lamdagent.training.worker SPEC`,
follows its output (progress lines, errors) and reads the worker's result back (docs/multi-gpu.md)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import deque
from dataclasses import asdict
from pathlib import Path

from lamdagent.errors import ActionFailed
from lamdagent.models import flops
from lamdagent.training.spec import TrainResult

STEP_MARK = "LAMDAGENT_STEP"  # `LAMDAGENT_STEP step total`, printed by the main worker after each step
ERROR_MARK = "LAMDAGENT_ERROR"  # `LAMDAGENT_ERROR message`, printed by a worker that failed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config_sets_port(config_file: Path | None) -> bool:
    if config_file is None:
        return False
    import yaml

    return bool((yaml.safe_load(config_file.read_text()) or {}).get("main_process_port"))


def accelerate_command(launch, spec: Path) -> list[str]:
    """`accelerate launch` (from this Python environment) of the worker on `spec`. With several processes
    and no port given (in `args` or the config file), a free port: concurrent launches do not collide."""
    config = Path(launch.accelerate_config).expanduser() if launch.accelerate_config else None
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config is not None:
        cmd += ["--config_file", str(config)]
    cmd += ["--num_processes", str(launch.num_processes)]
    if launch.num_processes > 1 and "--main_process_port" not in launch.args and not _config_sets_port(config):
        cmd += ["--main_process_port", str(_free_port())]
    return [*cmd, *launch.args, "-m", "lamdagent.training.worker", str(spec)]


def _follow(cmd: list[str], log: Path, on_step) -> tuple[int, deque]:
    """Run `cmd`, copy its output to `log`, call `on_step` on progress lines; (exit code, last lines)."""
    from lamdagent.faults import ENV, checkpoint

    env = {k: v for k, v in os.environ.items() if k != ENV}  # fault hooks fire here, in the parent, on progress lines
    env["PYTHONUNBUFFERED"] = "1"
    tail: deque = deque(maxlen=200)
    with open(log, "w") as out, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        try:
            for line in proc.stdout:
                out.write(line)
                tail.append(line.rstrip())
                if line.startswith(STEP_MARK):
                    step, total = (int(v) for v in line.split()[1:3])
                    checkpoint("train_step")
                    if on_step:
                        on_step(step, total)
        except BaseException:  # interrupted here: stop the launcher (and through it the workers)
            proc.terminate()
            raise
    return proc.returncode, tail


def _failure(code: int, tail: deque, log: Path) -> str:
    """The worker's own error line, else the last line that looks like an error, else the last line."""
    lines = [line for line in tail if line.strip()]
    marked = [line.split(ERROR_MARK, 1)[1].strip() for line in lines if ERROR_MARK in line]
    errors = [line.strip() for line in lines if "Error" in line or "error" in line]
    reason = (marked or errors or lines or ["no output"])[-1]
    return f"accelerate launch exited with code {code}: {reason} (log: {log})"


def _release_gpu_memory() -> None:
    """Give this process's cached GPU memory back before the workers start (e.g. after on-policy generation)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        import gc

        gc.collect()
        torch.cuda.empty_cache()


def launch_training(kind: str, ctx, model, rows: list[dict], hparams: dict):
    """Train `model` (a training.ModelOnDisk) with TRL's `kind` trainer in `accelerate launch` workers;
    the model and tokenizer land in `ctx.out_dir / "model"`. Returns a TrainResult without a model."""

    work = ctx.out_dir / "launch"
    work.mkdir(parents=True, exist_ok=True)
    (work / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    spec = {"kind": kind, **asdict(model), "rows": str(work / "rows.jsonl"), "out_dir": str(ctx.out_dir), "seed": ctx.seed,
            "chat_template": ctx.chat_template, "hparams": hparams, "result": str(work / "result.json")}
    (work / "spec.json").write_text(json.dumps(spec, indent=1))
    (work / "result.json").unlink(missing_ok=True)
    log = work / "output.log"
    _release_gpu_memory()
    code, tail = _follow(accelerate_command(ctx.launch, work / "spec.json"), log, ctx.on_step)
    if code != 0 or not (work / "result.json").exists():
        raise ActionFailed(_failure(code, tail, log))
    result = json.loads((work / "result.json").read_text())
    series = {name: [(int(step), float(value)) for step, value in points] for name, points in result.pop("series").items()}
    trained = TrainResult(series=series, **result)
    flops.add(trained.flops)  # the workers' passes, counted there
    return trained
