"""Cheap commits for a sqlite tracking store.

MLflow commits several times per call, and with sqlite's default rollback journal every commit
waits for the disk (about 1 ms each on this machine's ext4; 14 commits per produced model). In
write-ahead-log mode with `synchronous=NORMAL` a commit is a write to the log and no sync
(0.02 ms). A committed write survives a crash or kill of the process; only a power loss or OS
crash can roll back the last commits, never corrupt the file. Readers (the MLflow UI, another
worker) read while a writer writes. LAMDAGENT_SQLITE_WAL=0 puts the store back in sqlite's
rollback journal (a store on a network file system, where WAL does not work).
"""

from __future__ import annotations

import os

ENV = "LAMDAGENT_SQLITE_WAL"


def enabled() -> bool:
    return os.environ.get(ENV, "1") not in ("0", "false", "no")


def tune(client) -> bool:
    """Put the sqlite stores behind an MlflowClient (tracking and registry) in WAL mode with normal
    sync, or back in sqlite's rollback journal when turned off (the mode is kept in the file);
    whether they are in WAL mode now. Another process holding a store in the other mode keeps it so."""
    from sqlalchemy import event, exc

    engines = {id(e): e for e in (_engine(client._tracking_client), _engine(client._get_registry_client()))
               if e is not None and e.dialect.name == "sqlite"}
    wal = bool(engines)
    for engine in engines.values():
        try:
            with engine.connect() as connection:
                mode = connection.exec_driver_sql(f"PRAGMA journal_mode={'WAL' if enabled() else 'DELETE'}").scalar()
        except exc.OperationalError:
            mode = "unchanged"
        if mode == "wal" and not event.contains(engine, "connect", _normal_sync):
            event.listen(engine, "connect", _normal_sync)  # only with WAL: in rollback mode NORMAL risks corruption
            engine.dispose()  # pooled connections were opened before the listener
        wal = wal and mode == "wal"
    return wal


def _engine(store_client):
    return getattr(getattr(store_client, "store", None), "engine", None)


def _normal_sync(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
