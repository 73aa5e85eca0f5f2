"""Cheap commits for a sqlite tracking store.

MLflow commits several times per call, and with sqlite's default rollback journal every commit
waits for the disk (about 1 ms each on this machine's ext4). In write-ahead-log mode with
`synchronous=NORMAL` a commit is a write to the log and no sync (0.02 ms). A committed write
survives a crash or kill of the process; only a power loss or OS crash can roll back the last
commits, never corrupt the file. Readers (the MLflow UI, another worker) read while a writer
writes. LAMDAGENT_SQLITE_WAL=0 puts the store back in sqlite's rollback journal (a store on a
network file system, where WAL does not work).

Done with sqlite's own PRAGMAs on the store's file and SQLAlchemy's public connection events (no
MLflow internals): the journal mode is kept in the file; `synchronous` is per connection, so each
new connection to the store's file gets NORMAL while the file is in WAL mode.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

ENV = "LAMDAGENT_SQLITE_WAL"
_files: set[str] = set()  # the store files whose connections get synchronous=NORMAL


def enabled() -> bool:
    return os.environ.get(ENV, "1") not in ("0", "false", "no")


def store_file(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI, or None for any other store."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(tracking_uri).database
    return Path(database).resolve() if database and database != ":memory:" else None


def tune(tracking_uri: str) -> bool:
    """Put a sqlite store in WAL mode (or back in the rollback journal when turned off); whether it
    is in WAL mode now. Another process holding the store in the other mode keeps it so."""
    path = store_file(tracking_uri)
    if path is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sqlite3.connect(path, timeout=30) as connection:
            mode = connection.execute(f"PRAGMA journal_mode={'WAL' if enabled() else 'DELETE'}").fetchone()[0]
    except sqlite3.OperationalError:
        mode = "unchanged"
    if mode == "wal":
        _listen()
        _files.add(str(path))
    else:
        _files.discard(str(path))
    return mode == "wal"


def _listen() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _normal_sync):
        event.listen(Engine, "connect", _normal_sync)


def _normal_sync(dbapi_connection, _record) -> None:
    """NORMAL sync on a new connection to a tuned store file, only while it is in WAL mode (in the
    rollback journal NORMAL risks corruption)."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        files = {str(Path(row[2]).resolve()) for row in cursor.execute("PRAGMA database_list") if row[2]}
        if files & _files and cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
