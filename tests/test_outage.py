"""Waiting out a tracking-server outage (tracking/outage.py): which errors count as one (real
errors of MLflow's REST client against a closed port, of a sqlite store), the bounded wait and its
console lines, the one-line stop past `tracking.max_outage_seconds`, and a run created once when
the server took the request but its answer was lost. The restart of a real server during an
exploration is tests/cluster/test_outage.py."""

from __future__ import annotations

import socket

import pytest
from mlflow import MlflowClient

from lamdagent.config import load_config
from lamdagent.errors import UserError
from lamdagent.tracking import Kind, Tracker, tag
from lamdagent.tracking.outage import Patience, TrackingOutage, is_unreachable, reason


@pytest.fixture
def refused(monkeypatch):
    """A real MlflowException from a server that is not there (a closed port on 127.0.0.1)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        MlflowClient(f"http://127.0.0.1:{port}").get_run("0" * 32)
    except Exception as error:  # noqa: BLE001 - the error itself is what the tests need
        return error
    pytest.fail("a closed port answered")


def test_an_unreachable_server_is_an_outage_and_other_errors_are_not(refused, tracking_uri):
    assert is_unreachable(refused) and reason(refused) == "connection refused"
    assert is_unreachable(ConnectionResetError("peer reset"))
    with pytest.raises(Exception) as missing:
        MlflowClient(tracking_uri).get_run("0" * 32)  # the server answered: no such run
    assert not is_unreachable(missing.value)
    assert not is_unreachable(ValueError("bad value"))


def _flaky(error, failures: int):
    calls = []

    def call(x):
        calls.append(x)
        if len(calls) <= failures:
            raise error
        return x * 2

    return call, calls


def test_calls_wait_out_an_outage_and_say_so(refused):
    said, slept = [], []
    patience = Patience("http://tracking:5000", limit=60, announce=said.append, sleep=slept.append)
    call, calls = _flaky(refused, failures=3)
    assert patience.call(call, 21) == 42 and len(calls) == 4
    assert slept == [1.0, 2.0, 4.0]  # exponential backoff
    assert "unreachable (connection refused): retrying for up to 60 s (tracking.max_outage_seconds)" in said[0]
    assert sum("still unreachable" in line for line in said) == 2 and "answers again" in said[-1]
    assert patience.since is None and patience.outages == 1


def test_an_error_that_is_not_an_outage_is_raised_at_once():
    patience = Patience("x", announce=pytest.fail, sleep=pytest.fail)
    call, calls = _flaky(KeyError("no such run"), failures=5)
    with pytest.raises(KeyError):
        patience.call(call, 1)
    assert len(calls) == 1


def test_past_the_limit_the_exploration_stops_with_one_line_and_later_calls_fail_fast(refused):
    said = []
    patience = Patience("http://tracking:5000", limit=0.3, announce=said.append)
    call, calls = _flaky(refused, failures=10**6)
    with pytest.raises(TrackingOutage) as stopped:
        patience.call(call, 1)
    message = str(stopped.value)
    assert isinstance(stopped.value, UserError) and "\n" not in message
    assert "tracking.max_outage_seconds=0.3" in message and "--resume" in message
    tries = len(calls)
    with pytest.raises(TrackingOutage):
        patience.call(call, 1)
    assert len(calls) == tries + 1  # once: the process is stopping


def test_a_run_whose_answer_was_lost_is_created_once(tracking_uri):
    """The server made the run, then the connection broke before the answer: the retry finds the
    run by its request id instead of making a second one."""
    tracker = Tracker(tracking_uri)
    tracker.patience.sleep = lambda seconds: None
    said = []
    tracker.patience.announce = said.append
    experiment = tracker.experiment("unit")
    create = tracker.client.raw.create_run
    lost = []

    def answer_lost(*args, **kwargs):
        run = create(*args, **kwargs)
        if not lost:
            lost.append(run.info.run_id)
            raise ConnectionAbortedError("Connection aborted: RemoteDisconnected")
        return run

    tracker.client.raw.create_run = answer_lost
    run_id = tracker.start_child("p" * 32, Kind.ACTION, 1, "m1", {}, experiment_id=experiment)
    assert run_id == lost[0]
    runs = tracker.client.search_runs([experiment], f"tags.`{tag('name')}` = 'm1'")
    assert [r.info.run_id for r in runs] == [run_id]
    assert any("answers again" in line for line in said)


def test_max_outage_seconds_is_checked_before_any_work():
    with pytest.raises(UserError, match=r"tracking.max_outage_seconds must be > 0 \(seconds\), got 0"):
        load_config("demo", ["tracking.max_outage_seconds=0"])


def test_a_missing_run_is_named_and_an_unreachable_server_is_never_reported_as_one(tracking_uri, monkeypatch):
    from lamdagent.tracking import RunNotFound

    with pytest.raises(RunNotFound, match=r"^no run '0{32}' in the tracking store sqlite:"):
        Tracker(tracking_uri).run("0" * 32)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    away = Tracker(f"http://127.0.0.1:{port}")
    away.patience.limit, away.patience.sleep = 0.2, lambda seconds: None
    with pytest.raises(TrackingOutage):
        away.run("0" * 32)
