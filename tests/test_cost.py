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


def test_a_loaded_machine_is_measured_and_said(monkeypatch):
    monkeypatch.setattr(cost.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cost.os, "getloadavg", lambda: (5.0, 4.0, 3.0))  # four benchmark jobs on two cores
    with CostMeter() as meter:
        pass
    assert meter.metrics["cost.load_per_core"] == 2.5
    notice = cost.load_notice(meter.metrics["cost.load_per_core"])
    assert "2.5 runnable threads per core" in notice and "budget.seconds" in notice
    monkeypatch.setattr(cost.os, "getloadavg", lambda: (2.0, 2.0, 2.0))  # one job's own threads
    with CostMeter() as meter:
        pass
    assert cost.load_notice(meter.metrics["cost.load_per_core"]) is None


def test_a_degraded_mode_is_said_once():
    from io import StringIO

    from rich.console import Console

    from lamdagent.console import Display

    out = StringIO()
    display = Display(Console(file=out, width=200))
    for _ in range(3):
        display.log_once("load", "the machine is loaded")
    display.log_once("other", "something else")
    assert out.getvalue().count("the machine is loaded") == 1 and "something else" in out.getvalue()
