"""Lineage questions over models' parents: depth, ancestors, the common ancestor of a merge."""

from __future__ import annotations

from lamdagent.space.objects import ModelObject


def depth(model: ModelObject) -> int:
    """Length of the longest path from a root (a model with no parents) to `model`."""
    return 1 + max((depth(p) for p in model.parents), default=-1)


def ancestors(model: ModelObject) -> dict[str, ModelObject]:
    """`model` and every model it descends from, by fingerprint."""
    found = {model.fingerprint: model}
    for parent in model.parents:
        found.update(ancestors(parent))
    return found


def common_ancestor(models: list[ModelObject]) -> ModelObject | None:
    """The deepest model every one of `models` descends from (or is): the base that task vectors
    of a merge are taken against. None when they share no ancestor."""
    lines = [ancestors(m) for m in models]
    shared = set(lines[0]).intersection(*lines[1:])
    if not shared:
        return None
    return max((lines[0][fp] for fp in shared), key=depth)
