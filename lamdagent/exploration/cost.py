"""What an action costs: wall time and peak memory, measured around it, and how loaded the machine
was meanwhile (wall time is what a compute budget counts, and other work inflates it)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil

_CLEAR_REFS, _STATUS = Path("/proc/self/clear_refs"), Path("/proc/self/status")
LOADED = 1.5  # runnable threads per core (the 1-minute load average) above which other work inflates wall time


def load_per_core() -> float | None:
    """The machine's 1-minute load average per core; None where the OS keeps none."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (OSError, AttributeError):
        return None


def load_notice(load: float | None) -> str | None:
    """What to say when an action's seconds were measured on a loaded machine; None when they were not."""
    if load is None or load <= LOADED:
        return None
    return (f"this machine is loaded ({load:.1f} runnable threads per core): compute seconds are wall time, so they are "
            f"inflated by the other work; budget.seconds counts them as measured, also when the action is reused later "
            f"(budget.flops and compare-policies --equal-compute count floating-point operations, which the load does not change)")


class CostMeter:
    """Context manager: seconds, peak resident memory (plus the CUDA allocator's peak when a GPU is
    used) and the load per core at the end (`load_per_core`). On Linux the kernel keeps the peak
    (VmHWM, reset on entry): nothing runs meanwhile; elsewhere a thread samples the resident memory
    every `interval` s."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.metrics: dict[str, float] = {}
        self._stop = threading.Event()
        self._peak = 0
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self._peak = max(self._peak, process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> CostMeter:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._start = time.perf_counter()
        if not _reset_kernel_peak():
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        else:
            self._peak = _kernel_peak()
        self.metrics = {"cost.seconds": time.perf_counter() - self._start, "cost.peak_rss_mb": self._peak / 2**20}
        if (load := load_per_core()) is not None:
            self.metrics["cost.load_per_core"] = load
        if torch.cuda.is_available():
            self.metrics["cost.peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20


def _reset_kernel_peak() -> bool:
    """Start the kernel's peak resident memory (VmHWM) again from the current one; False where
    there is none (not Linux)."""
    try:
        _CLEAR_REFS.write_text("5")
        return _kernel_peak() > 0
    except OSError:
        return False


def _kernel_peak() -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    return 0
