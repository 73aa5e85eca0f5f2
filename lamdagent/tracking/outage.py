"""Waiting out an outage of a remote tracking server (a restart, a network cut, its database
down): every call is tried again with bounded exponential backoff, announced on the console, until
the server answers or `tracking.max_outage_seconds` have passed since the outage began; then
`TrackingOutage`, a one-line stop after which `lamdagent explore --resume` continues cleanly.

Only errors that say the server (or its database) could not be reached count as an outage; any
other error is raised at once. MLflow's own HTTP retries are shortened (unless the user set them)
so that an outage reaches this layer in seconds instead of minutes of silence.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from typing import Callable
from urllib.parse import urlparse

from lamdagent.errors import UserError

DEFAULT_LIMIT = 600.0  # seconds; tracking.max_outage_seconds
MAX_DELAY = 30.0  # the longest wait between two tries
# what MLflow's REST client, requests/urllib3 and the server's database driver say when nothing answers
_UNREACHABLE = re.compile(
    r"Max retries exceeded|Connection refused|Connection reset|Connection aborted|RemoteDisconnected|Read timed out|"
    r"NewConnectionError|Failed to establish a new connection|Name or service not known|Temporary failure in name resolution|"
    r"error code 50[234]|too many 50[0234] error responses|could not connect to server|connection to server at .* failed|"
    r"server closed the connection unexpectedly|terminating connection due to administrator command|the database system is (starting|shutting) up",
    re.I,
)
_REASONS = [  # (pattern, words for the console)
    (re.compile(r"Connection refused|Failed to establish", re.I), "connection refused"),
    (re.compile(r"Read timed out", re.I), "timed out"),
    (re.compile(r"Name or service not known|name resolution", re.I), "host not found"),
    (re.compile(r"could not connect to server|connection to server at|server closed the connection|terminating connection|database system is",
                re.I), "its database is unavailable"),
    (re.compile(r"50([0234])", re.I), "HTTP 50{0}"),
]


class TrackingOutage(UserError):
    """The tracking server stayed unreachable past `tracking.max_outage_seconds`."""


def is_unreachable(error: BaseException) -> bool:
    """Whether `error` says the tracking server or its database could not be reached."""
    if isinstance(error, TrackingOutage):
        return False
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    return bool(_UNREACHABLE.search(f"{type(error).__name__}: {error}"))


def reason(error: BaseException) -> str:
    text = str(error)
    for pattern, words in _REASONS:
        found = pattern.search(text)
        if found:
            return words.format(*found.groups())
    return type(error).__name__


def is_remote(tracking_uri: str) -> bool:
    """Stores that can be away: a server (http, https, databricks) or a database over the network."""
    return urlparse(tracking_uri).scheme not in ("", "file", "sqlite")


def shorten_mlflow_retries() -> None:
    """MLflow retries a refused request 7 times over about 4 minutes, silently: 2 tries over ~3 s
    instead, so that this module announces the outage. A user's own setting is kept."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


def _print_to_stderr(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(message)


class Patience:
    """One process's view of the server's outages, shared by every call (and thread) of a tracker."""

    def __init__(self, where: str, limit: float = DEFAULT_LIMIT, announce: Callable[[str], None] = _print_to_stderr,
                 sleep: Callable[[float], None] = time.sleep):
        self.where, self.limit, self.announce, self.sleep = where, limit, announce, sleep
        self.since: float | None = None  # when the current outage began (monotonic), None while the server answers
        self.gave_up = False  # past the limit once: this process is stopping, calls are tried once
        self.outages = 0
        self._lock = threading.Lock()

    def call(self, fn: Callable, *args, recover: Callable[[], object] | None = None, **kwargs):
        """`fn(*args, **kwargs)`, tried again while the server is unreachable. `recover`: before a
        retry, look for what an earlier try may have written (a request the server took but whose
        answer was lost); a result other than None is returned instead of trying again."""
        tries = 0
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as error:
                if not is_unreachable(error):
                    raise
                tries += 1
                self._wait(error, tries)
                if recover is not None:
                    found = self._quietly(recover)
                    if found is not None:
                        self._back()
                        return found
                continue
            self._back()
            return result

    def _quietly(self, recover: Callable[[], object]):
        try:
            return recover()
        except Exception as error:
            if is_unreachable(error):
                return None
            raise

    def _wait(self, error: Exception, tries: int) -> None:
        with self._lock:
            now = time.monotonic()
            if self.since is None:
                self.since, self.outages = now, self.outages + 1
                if not self.gave_up:
                    self.announce(f"[yellow]tracking server {self.where} unreachable ({reason(error)}): retrying for up to "
                                  f"{self.limit:g} s (tracking.max_outage_seconds)")
            waited = now - self.since
            if self.gave_up or waited >= self.limit:
                self.gave_up = True
                raise TrackingOutage(f"tracking server {self.where} unreachable for {waited:.0f} s ({reason(error)}; "
                                     f"tracking.max_outage_seconds={self.limit:g}): stopped; nothing finished is lost, "
                                     "continue with `lamdagent explore --resume latest` once it is back") from None
            delay = min(2.0 ** (tries - 1), MAX_DELAY, self.limit - waited)
            if tries > 1:
                self.announce(f"[yellow]tracking server still unreachable after {waited:.0f} s; next try in {delay:.0f} s")
        self.sleep(delay)

    def _back(self) -> None:
        if self.since is None:
            return
        with self._lock:
            if self.since is not None:
                self.announce(f"[green]tracking server {self.where} answers again after {time.monotonic() - self.since:.0f} s; going on")
                self.since = None


class PatientClient:
    """An MlflowClient whose every call waits out an outage (Patience); `raw` is the client itself."""

    def __init__(self, client, patience: Patience):
        self.raw, self.patience = client, patience

    def __getattr__(self, name: str):
        attribute = getattr(self.raw, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def patient(*args, **kwargs):
            return self.patience.call(attribute, *args, **kwargs)

        return patient
