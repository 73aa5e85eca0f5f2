"""MLflow as the system of record: the schema (tags, kinds, statuses), the tracker, the lease, retention."""

from lamdagent.tracking.tracker import (
    CACHED,
    CONFIG_ARTIFACT,
    FAILED,
    FREED,
    KILLED,
    MEMORY_ARTIFACT,
    OK,
    PREFIX,
    RUNNING,
    Record,
    Tracker,
    WeightsFreed,
    tag,
)

__all__ = ["CACHED", "CONFIG_ARTIFACT", "FAILED", "FREED", "KILLED", "MEMORY_ARTIFACT", "OK", "PREFIX", "RUNNING", "Record", "Tracker",
           "WeightsFreed", "tag"]
