"""The end of a step in one transaction: its results (params, metrics with their latest values,
tags) and the run's status and end time. Through the client that is log_batch and
set_terminated: 2 calls, 5 transactions, ~11 ms of MLflow's per-session work on a sqlite store;
here one session, and all or nothing.

Written with MLflow's own table models, validators and latest-metric logic (the store's), for a
database store; None when the store is not one (a REST server), and the caller uses the client.
tests/test_tracking.py checks that a run written here reads back exactly as one written through
the client.
"""

from __future__ import annotations

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import _validate_batch_log_data, _validate_param_keys_unique


def _store(client):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    return store if isinstance(store, SqlAlchemyStore) else None


def finish(client, run_id: str, metrics: list[Metric], params: list[Param], tags: list[RunTag], *,
           run_status: str | None = None) -> bool | None:
    """Write the step's results; with `run_status` ("FINISHED", "FAILED", ...) also end the run.
    None if the store is not a database; False if the write is not one for a single transaction (a
    run renamed by tag, a metric already logged with the same key, step, time and value): nothing
    was written and the caller uses the client."""
    store = _store(client)
    if store is None:
        return None
    if any(t.key == "mlflow.runName" for t in tags):  # the client renames the run too
        return False
    import sqlalchemy

    metrics, params, tags = _validate_batch_log_data(metrics, params, tags)
    _validate_param_keys_unique(params)
    try:
        with store.ManagedSessionMaker(read_only=False) as session:
            run = store._get_run(run_uuid=run_id, session=session)
            store._check_run_is_active(run)
            _add_params(session, run, params)
            rows = _metric_rows(run_id, metrics, store)
            session.add_all(rows)
            store._update_latest_metrics_if_necessary(rows, session)
            _set_tags(session, run, tags)
            if run_status is not None:
                run.status = RunStatus.to_string(RunStatus.from_string(run_status))
                run.end_time = get_current_time_millis()
    except MlflowException as err:
        if isinstance(err.__cause__, sqlalchemy.exc.IntegrityError):  # rolled back; the client's log_batch drops such duplicates
            return False
        raise
    return True


def _add_params(session, run, params: list[Param]) -> None:
    """New params added; one logged before keeps its value, and a different one is refused (as log_batch does)."""
    from mlflow.store.tracking.dbmodels.models import SqlParam

    existing = {p.key: p.value for p in run.params}
    changed = [{"key": p.key, "old_value": existing[p.key], "new_value": p.value} for p in params if p.key in existing and existing[p.key] != p.value]
    if changed:
        raise MlflowException(f"Changing param values is not allowed. Params were already logged='{changed}' for run ID='{run.run_uuid}'.",
                              INVALID_PARAMETER_VALUE)
    session.add_all(SqlParam(run_uuid=run.run_uuid, key=p.key, value=p.value) for p in params if p.key not in existing)


def _metric_rows(run_id: str, metrics: list[Metric], store) -> list:
    """One row per distinct metric, NaN and infinities stored as the store stores them."""
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    rows, seen = [], set()
    for metric in metrics:
        if metric in seen:
            continue
        seen.add(metric)
        is_nan, value = store.sanitize_metric_value(metric.value)
        rows.append(SqlMetric(run_uuid=run_id, key=metric.key, value=value, timestamp=metric.timestamp, step=metric.step, is_nan=is_nan))
    return rows


def _set_tags(session, run, tags: list[RunTag]) -> None:
    """Tags set, a later one of the same key winning."""
    from mlflow.store.tracking.dbmodels.models import SqlTag

    current = {t.key: t for t in run.tags}
    for t in tags:
        if t.key in current:
            current[t.key].value = t.value
        else:
            current[t.key] = SqlTag(run_uuid=run.run_uuid, key=t.key, value=t.value)
            session.add(current[t.key])
