"""The data screening: evidence about each candidate training dataset before iterations are spent on it."""

from lamdagent.screening.screen import recorded_evidence, screen

__all__ = ["recorded_evidence", "screen"]
