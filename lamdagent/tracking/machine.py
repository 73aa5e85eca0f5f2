"""The machine a run computes on. A seed's numbers reproduce on the same kind of machine, not across
kinds: another CPU's kernels round differently, greedy decoding flips on near-ties, and a search that
reads its scores goes down another path (on 2026-12-06 the same code and seeds gave the `uneven`
base 36 instead of 37 of 50 facts answers on another CPU, and greedy other top-1 models). Every
exploration records its machine (`lamdagent.machine`); a resume on another kind says so."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("torch", "transformers", "trl", "peft", "mergekit")  # the libraries whose kernels and defaults make the numbers


def machine() -> dict[str, str]:
    """What decides whether this machine's numbers reproduce elsewhere: the CPU, the instruction set
    torch dispatches to, its thread count, the accelerator and the libraries' versions."""
    import torch

    found = {"cpu": _cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": str(torch.get_num_threads()),
             "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "absent"
    return found


def differences(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """'key recorded -> current' for every way the current machine differs from the recorded one."""
    return [f"{key} {recorded.get(key, '?')} -> {current.get(key, '?')}" for key in sorted(recorded.keys() | current.keys())
            if recorded.get(key) != current.get(key)]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"
