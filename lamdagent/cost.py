"""What an action costs: wall time and peak memory, measured around it."""

from __future__ import annotations

import threading
import time

import psutil


class CostMeter:
    """Context manager: seconds, and peak resident memory sampled every `interval` s (plus the
    CUDA allocator's peak when a GPU is used)."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.metrics: dict[str, float] = {}
        self._stop = threading.Event()
        self._peak = 0

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
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        self._stop.set()
        self._thread.join()
        self.metrics = {"cost.seconds": time.perf_counter() - self._start, "cost.peak_rss_mb": self._peak / 2**20}
        if torch.cuda.is_available():
            self.metrics["cost.peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
