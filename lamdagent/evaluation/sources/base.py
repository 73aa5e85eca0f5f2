"""A task source: where a task's rows come from, named `kind:<ref>` in the task's YAML."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from lamdagent.registry import Registry


def _any_ref(ref: str) -> None:
    """Every reference is accepted at load time (a missing file or dataset fails when read)."""


@dataclass(frozen=True)
class Defined:
    """A task that its source defines whole (lm-eval): the spec completed from the source (templates
    over the source's rows, generation settings), its scoring, and a digest of the source's definition."""

    spec: Any
    score: Callable[[str, Any], tuple[str, float]]  # (generation, gold) -> (extracted answer, reward)
    key: str  # part of Task.definition_key: editing the source's definition re-evaluates


@dataclass(frozen=True)
class Source:
    usage: str  # how a task names it, e.g. `synthetic:<generator>`
    rows: Callable[[str, Any, str, int, int], list[dict]]  # (ref, task spec, split, n, seed) -> up to n rows of the split
    check: Callable[[str], None] = _any_ref  # a one-line UserError for a bad ref, when the task is loaded
    define: Callable[[str, Any], Defined] | None = None  # (ref, task spec) -> the task as the source defines it; checked at load


SOURCES: Registry[Source] = Registry("task source")
