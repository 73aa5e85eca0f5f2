"""Lineage: the graph of models and the steps that made them, walked in one place (`walk`), and the
questions asked of it: depth, ancestors, whether two models are related, the common ancestor of a merge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Hashable, Iterable, TypeVar

if TYPE_CHECKING:
    from lamdagent.space.objects import ModelObject

Node = TypeVar("Node")


def walk(starts: Iterable[Node], parents_of: Callable[[Node], Iterable[Node]], key: Callable[[Node], Hashable] = id) -> list[Node]:
    """Every node reachable from `starts` through `parents_of`, each once (by `key`), parents before
    children: the order in which a pipeline's steps can be run. Model objects, run records and model
    ids alike (retention, replays, workers' copies, merges)."""
    order: list[Node] = []
    seen: set = set()

    def visit(node: Node) -> None:
        if key(node) in seen:
            return
        seen.add(key(node))
        for parent in parents_of(node):
            visit(parent)
        order.append(node)

    for start in starts:
        visit(start)
    return order


def depth(model: ModelObject) -> int:
    """Length of the longest path from a root (a model with no parents) to `model`."""
    depths: dict[str, int] = {}
    for m in walk([model], lambda m: m.parents, key=lambda m: m.fingerprint):
        depths[m.fingerprint] = 1 + max((depths[p.fingerprint] for p in m.parents), default=-1)
    return depths[model.fingerprint]


def ancestors(model: ModelObject) -> dict[str, ModelObject]:
    """`model` and every model it descends from, by fingerprint."""
    return {m.fingerprint: m for m in walk([model], lambda m: m.parents, key=lambda m: m.fingerprint)}


def related(a: ModelObject, b: ModelObject) -> bool:
    """One descends from the other (a merge of the two stays on the path that made the younger)."""
    return a.fingerprint in ancestors(b) or b.fingerprint in ancestors(a)


class Kinship:
    """`related` asked of many pairs of one pool (a decision's candidate merges): each model's
    ancestors are walked once, not once per pair."""

    def __init__(self) -> None:
        self._lines: dict[int, set[str]] = {}

    def related(self, a: ModelObject, b: ModelObject) -> bool:
        return a.fingerprint in self._line(b) or b.fingerprint in self._line(a)

    def _line(self, model: ModelObject) -> set[str]:
        if id(model) not in self._lines:
            self._lines[id(model)] = set(ancestors(model))
        return self._lines[id(model)]


def outside(model: ModelObject, models: list[ModelObject]) -> list[ModelObject]:
    """The models of `models` (in their order) that are neither `model`'s ancestor nor its descendant."""
    return [m for m in models if not related(model, m)]


def common_ancestor(models: list[ModelObject]) -> ModelObject | None:
    """The deepest model every one of `models` descends from (or is): the base that task vectors
    of a merge are taken against. None when they share no ancestor."""
    lines = [ancestors(m) for m in models]
    shared = set(lines[0]).intersection(*lines[1:])
    if not shared:
        return None
    return max((lines[0][fp] for fp in shared), key=depth)
