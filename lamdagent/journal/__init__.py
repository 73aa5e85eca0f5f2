"""The journal: one record of an exploration that the loop and every policy read."""

from lamdagent.journal.evidence import Evidence
from lamdagent.journal.journal import Cause, Entry, Fallback, Journal
from lamdagent.journal.noise import ScoreNoise
from lamdagent.journal.reading import models_from_records, read_journal

__all__ = ["Cause", "Entry", "Evidence", "Fallback", "Journal", "ScoreNoise", "models_from_records", "read_journal"]
