"""The data screening: evidence about each candidate training dataset before iterations are spent on it."""

from lamdagent.screening.screen import screen

__all__ = ["screen"]
