"""The long-lived process's objects are frozen out of the collector once, after a first step."""

from __future__ import annotations

import gc

from lamdagent.exploration import heap


class Cycle:
    def __init__(self):
        self.me = self  # only the collector could free it


def _tracked(obj) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_settle_freezes_what_lives_once_per_process(monkeypatch):
    monkeypatch.setattr(heap, "_settled", False)
    before = Cycle()
    assert _tracked(before)
    heap.settle()
    assert not _tracked(before) and gc.get_freeze_count() > 0  # out of the collector's reach
    frozen = gc.get_freeze_count()
    after = Cycle()
    heap.settle()
    # once per process: the new object stays with the collector; the frozen count can only shrink
    # (frozen objects that other threads free leave the permanent generation)
    assert _tracked(after) and gc.get_freeze_count() <= frozen
