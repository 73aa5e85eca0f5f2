"""Explorations as real child processes that can be SIGKILLed: `lamdagent explore` runs in a
process forked from a fork server that imported the heavy libraries once (torch, transformers,
TRL, mergekit, MLflow), so a kill-and-resume costs the work, not 15 s of imports. The fork server
never opens a tracking store; each child reads its environment fresh."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
PRELOAD = ["lamdagent.cli.main", "lamdagent.exploration.loop", "lamdagent.tracking.retention", "torch", "transformers", "trl", "mergekit.merge",
           "mlflow", "datasets"]
_context = None


def context():
    """The fork server context, started once per test session with the libraries preloaded."""
    global _context
    if _context is None:
        os.environ.setdefault("PYTHONPATH", str(ROOT))
        _context = mp.get_context("forkserver")
        _context.set_forkserver_preload([*PRELOAD, "tests.reliability.harness"])
    return _context


def _child(argv: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    os.environ.update(env)
    os.chdir(cwd)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    from lamdagent.cli.main import main

    code = main(argv)
    sys.stdout.flush()
    os._exit(code)


@dataclass
class Outcome:
    exitcode: int  # -9: SIGKILLed
    log: str
    seconds: float
    cpu_seconds: float  # the child's CPU time (sampled until it ended): its cost on an idle machine


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Store:
    """One tracking store (sqlite + artifacts in `root`) and the environment its children share."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.env = {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1",
                    "HF_DATASETS_OFFLINE": "1", "LAMDAGENT_CACHE": os.environ["LAMDAGENT_CACHE"], **env}
        self.client = MlflowClient(self.uri)
        self.count = 0

    def start(self, argv: list[str], fault: str | None = None, **env: str):
        """A child process running `lamdagent <argv>`; `fault` sets LAMDAGENT_FAULT."""
        self.count += 1
        log = str(self.root / f"child-{self.count}.log")
        child_env = {**self.env, **env, "LAMDAGENT_FAULT": fault or ""}
        process = context().Process(target=_child, args=(argv, child_env, str(self.root), log), daemon=False)
        process.start()
        process.log, process.started = log, time.perf_counter()
        return process

    def run(self, argv: list[str], fault: str | None = None, kill_after: float | None = None, timeout: float = 300, **env: str) -> Outcome:
        """Run a child to its end (or SIGKILL it after `kill_after` seconds)."""
        process = self.start(argv, fault, **env)
        deadline, cpu = process.started + (kill_after if kill_after is not None else timeout), 0.0
        while process.is_alive() and time.perf_counter() < deadline:
            cpu = _cpu_seconds(process.pid) or cpu
            process.join(0.2)
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
            process.join(30)
        return Outcome(process.exitcode, Path(process.log).read_text(), time.perf_counter() - process.started, cpu)
