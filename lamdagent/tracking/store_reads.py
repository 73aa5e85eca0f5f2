"""Fast reads of the tracking store for what is read back each time: the tags and latest metrics of
an exploration's nested runs (what the agent sees), and the runs carrying given tags (the cache
lookup by fingerprint), in plain SQL queries over MLflow's own table models when the store is a
database (sqlite, PostgreSQL, MySQL). None when it is not (a REST server): the caller then uses
MlflowClient.search_runs."""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def no_gc():
    """Collection paused while thousands of small objects are built (a read's cost halves)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _engine(client):
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    return getattr(store, "engine", None)


def runs_tagged(client, experiment_id: str, tags: dict[str, str]) -> list[str] | None:
    """Ids of the experiment's active runs carrying every tag of `tags` (key -> value), newest
    first; None if the store is not a database. One query, where search_runs builds every run."""
    engine = _engine(client)
    if engine is None:
        return None
    from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
    from sqlalchemy import select

    query = select(SqlRun.run_uuid).where(SqlRun.experiment_id == int(experiment_id), SqlRun.lifecycle_stage == "active")
    for key, value in tags.items():
        query = query.where(SqlRun.run_uuid.in_(select(SqlTag.run_uuid).where(SqlTag.key == key, SqlTag.value == value)))
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(query.order_by(SqlRun.start_time.desc()))]


def child_runs(client, parent_id: str, experiment_id: str, prefix: str = "") -> list[tuple[str, dict[str, str], dict[str, float]]] | None:
    """(run id, tags whose key starts with `prefix`, latest metrics) of every active nested run of
    `parent_id`, or None if the store is not a database."""
    engine = _engine(client)
    if engine is None:
        return None
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlRun, SqlTag
    from sqlalchemy import select

    children = select(SqlTag.run_uuid).where(SqlTag.key == "mlflow.parentRunId", SqlTag.value == parent_id)
    runs = select(SqlRun.run_uuid).where(SqlRun.run_uuid.in_(children), SqlRun.experiment_id == int(experiment_id),
                                         SqlRun.lifecycle_stage == "active")
    with engine.connect() as connection:
        ids = [row[0] for row in connection.execute(runs)]
        tags: dict[str, dict[str, str]] = {run_id: {} for run_id in ids}
        metrics: dict[str, dict[str, float]] = {run_id: {} for run_id in ids}
        ours = select(SqlTag.run_uuid, SqlTag.key, SqlTag.value).where(SqlTag.run_uuid.in_(runs), SqlTag.key.startswith(prefix))
        for run_id, key, value in connection.execute(ours).all():
            tags[run_id][key] = value
        latest = select(SqlLatestMetric.run_uuid, SqlLatestMetric.key, SqlLatestMetric.value, SqlLatestMetric.is_nan)
        for run_id, key, value, is_nan in connection.execute(latest.where(SqlLatestMetric.run_uuid.in_(runs))).all():
            metrics[run_id][key] = float("nan") if is_nan else float(value)
    return [(run_id, tags[run_id], metrics[run_id]) for run_id in ids]
