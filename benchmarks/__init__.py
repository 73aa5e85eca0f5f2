"""Performance benchmarks of LaMDAgent: `python -m benchmarks` (see docs/performance.md)."""
