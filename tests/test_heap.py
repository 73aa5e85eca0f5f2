"""The long-lived process's objects are frozen out of the collector once, after a first step."""

from __future__ import annotations

import gc

from lamdagent import heap


def test_settle_collects_then_freezes_once(monkeypatch):
    monkeypatch.setattr(heap, "_settled", False)
    collections = []
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(a) or 0)

    class Cycle:
        pass

    alive = Cycle()
    alive.me = alive  # tracked by the collector until frozen
    heap.settle()
    assert collections == [()] and gc.get_freeze_count() > 0
    assert not any(o is alive for o in gc.get_objects())  # out of the collector's reach
    heap.settle()
    assert collections == [()]  # once per process
