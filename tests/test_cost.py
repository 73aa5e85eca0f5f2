"""The cost meter's peak memory sees an allocation that lives for a moment only (the kernel's
peak on Linux), and the sampling fallback elsewhere still measures a lasting one."""

from __future__ import annotations

import time

import numpy as np
import psutil

from lamdagent.exploration import cost
from lamdagent.exploration.cost import CostMeter

MB = 2**20


def test_peak_counts_a_short_lived_allocation():
    before = psutil.Process().memory_info().rss
    with CostMeter(interval=60) as meter:  # a sampler would look once, at the start
        block = np.ones(300 * MB // 8)  # touched, then freed at once
        del block
    assert meter.metrics["cost.peak_rss_mb"] * MB > before + 250 * MB
    assert meter.metrics["cost.seconds"] > 0


def test_sampling_fallback_where_the_kernel_keeps_no_peak(monkeypatch, tmp_path):
    monkeypatch.setattr(cost, "_CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    before = psutil.Process().memory_info().rss
    with CostMeter(interval=0.01) as meter:
        block = np.ones(300 * MB // 8)
        time.sleep(0.1)
        del block
    assert meter.metrics["cost.peak_rss_mb"] * MB > before + 250 * MB
