"""A lease on an exploration, so that one process at a time runs it: a tag on the exploration's
parent run, `lamdagent.lease` = {"owner", "host", "pid", "started", "heartbeat"}, refreshed by a
background thread and released at exit. Another process refuses to run the exploration while the
lease is live; the lease is stale once its heartbeat is older than the timeout, or at once when its
holder ran on this host and that process is gone (a `kill -9`, a crash)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from datetime import datetime, timezone

import psutil
from mlflow import MlflowClient

from lamdagent.errors import UserError

TAG = "lamdagent.lease"
SETTLE_SECONDS = 0.5  # wait after writing, then read back: of two writers at once, the last one wins


def _started(pid: int) -> float:
    return psutil.Process(pid).create_time()


def _alive(holder: dict) -> bool:
    try:
        return abs(_started(int(holder["pid"])) - float(holder["started"])) < 1e-3
    except (psutil.Error, KeyError, ValueError):
        return False


def is_stale(holder: dict, timeout: float, now: float | None = None) -> bool:
    """Whether a lease no longer holds: no heartbeat for `timeout` seconds, or a dead holder here."""
    now = time.time() if now is None else now
    if now - float(holder.get("heartbeat", 0)) > timeout:
        return True
    return holder.get("host") == socket.gethostname() and not _alive(holder)


class LeaseLost(Exception):
    """Another process took over the exploration (this one's lease went stale)."""


class Lease:
    """`with Lease(client, run_id, timeout, heartbeat):` holds the exploration, or raises UserError."""

    def __init__(self, client: MlflowClient, run_id: str, timeout: float = 300.0, heartbeat: float = 30.0):
        self.client, self.run_id, self.timeout, self.interval = client, run_id, timeout, heartbeat
        pid = os.getpid()
        self.me = {"owner": f"{socket.gethostname()}:{pid}", "host": socket.gethostname(), "pid": pid, "started": _started(pid)}
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict | None:
        value = self.client.get_run(self.run_id).data.tags.get(TAG)
        return json.loads(value) if value else None

    def _refuse(self, holder: dict) -> UserError:
        beat = float(holder.get("heartbeat", 0))
        stale_at = datetime.fromtimestamp(beat + self.timeout, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return UserError(f"exploration {self.run_id} is being run by {holder.get('owner')} (last heartbeat {time.time() - beat:.0f} s ago); "
                         f"its lease goes stale at {stale_at} (lease.timeout_seconds={self.timeout:g})")

    def _write(self) -> None:
        self.client.set_tag(self.run_id, TAG, json.dumps({**self.me, "heartbeat": round(time.time(), 3)}))

    def acquire(self) -> Lease:
        holder = self.holder()
        if holder and holder.get("owner") != self.me["owner"] and not is_stale(holder, self.timeout):
            raise self._refuse(holder)
        self._write()
        time.sleep(SETTLE_SECONDS)
        holder = self.holder()
        if not holder or holder.get("owner") != self.me["owner"]:
            raise self._refuse(holder or {})
        self._thread = threading.Thread(target=self._beat, name="lamdagent-lease", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                holder = self.holder()
                if holder and holder.get("owner") != self.me["owner"]:
                    self.lost = True
                    return
                self._write()
            except Exception:  # a busy store: try again at the next beat
                continue

    def check(self) -> None:
        """Raise LeaseLost if another process has taken the exploration over."""
        if self.lost:
            raise LeaseLost(f"another process took over exploration {self.run_id}; this one stops")

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            holder = self.holder()
            if holder and holder.get("owner") == self.me["owner"]:
                self.client.delete_tag(self.run_id, TAG)
        except Exception:  # the store is gone: the lease goes stale by itself
            pass

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
