"""The `lamdagent` console script and its commands."""

from lamdagent.cli.main import main

__all__ = ["main"]
