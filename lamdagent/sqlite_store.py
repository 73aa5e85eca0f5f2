"""Cheap commits for a sqlite tracking store.

MLflow commits several times per call, and with sqlite's default rollback journal every commit
waits for the disk (about 1 ms each on this machine's ext4; 14 commits per produced model). In
write-ahead-log mode with `synchronous=NORMAL` a commit is a write to the log and no sync
(0.02 ms). A committed write survives a crash or kill of the process; only a power loss or OS
crash can roll back the last commits, never corrupt the file. Readers (the MLflow UI, another
worker) read while a writer writes. Set LAMDAGENT_SQLITE_WAL=0 to keep sqlite's defaults (a
store on a network file system, where WAL does not work).
"""

from __future__ import annotations

import os

ENV = "LAMDAGENT_SQLITE_WAL"


def enabled() -> bool:
    return os.environ.get(ENV, "1") not in ("0", "false", "no")


def tune(client) -> bool:
    """Switch the sqlite stores behind an MlflowClient (tracking and registry) to WAL with
    normal sync; whether it did (False for any other store, or when turned off)."""
    if not enabled():
        return False
    from sqlalchemy import event

    engines = {id(e): e for e in (_engine(client._tracking_client), _engine(client._get_registry_client()))
               if e is not None and e.dialect.name == "sqlite"}
    for engine in engines.values():
        if not event.contains(engine, "connect", _normal_sync):
            event.listen(engine, "connect", _normal_sync)
            engine.dispose()  # pooled connections were opened before the listener
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")  # kept in the file: once per store
    return bool(engines)


def _engine(store_client):
    return getattr(getattr(store_client, "store", None), "engine", None)


def _normal_sync(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
