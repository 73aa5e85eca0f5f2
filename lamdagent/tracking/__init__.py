"""MLflow as the system of record: the schema (tags, kinds, statuses), the tracker, the lease, retention."""

from lamdagent.tracking.schema import (
    CONFIG_ARTIFACT,
    DONE,
    FREED,
    MEMORY_ARTIFACT,
    PREFIX,
    Kind,
    Record,
    Status,
    experiment_name,
    tag,
)
from lamdagent.tracking.tracker import RunNotFound, Tracker, WeightsFreed

__all__ = ["CONFIG_ARTIFACT", "DONE", "FREED", "MEMORY_ARTIFACT", "PREFIX", "Kind", "Record", "RunNotFound", "Status", "Tracker", "WeightsFreed",
           "experiment_name", "tag"]
