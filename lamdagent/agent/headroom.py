"""An action's effect measured against the room its input had, and predicted for another model.

On each target an action closes a share of its input's headroom (the ceiling minus the score) or
loses a share of what the input held. A kind of action is predicted to do the same to another model,
scaled by that model's own room: a fine-tune that taught a target the best model already solves
predicts nothing on it, and the search turns to the targets where the room is. Scores are shares in
[0, 1]; a plugin metric above 1 raises its target's ceiling to the highest score seen.
"""

from __future__ import annotations

from typing import Iterable

from lamdagent.space import ModelObject

Scores = dict[str, float]


def ceilings(models: Iterable[ModelObject], tasks: list[str]) -> Scores:
    """Each target's ceiling: 1, or the highest score any model reached when that is above 1."""
    scored = [m.scores for m in models if m.scores]
    return {t: max([1.0] + [s[t] for s in scored if t in s]) for t in tasks}


def shares(before: Scores, after: Scores, ceiling: Scores) -> Scores:
    """Per target, the share of `before`'s room that `after` closed (> 0), or of its score it lost (< 0)."""
    found = {}
    for task, a in before.items():
        if task not in after or task not in ceiling:
            continue
        change = after[task] - a
        room = ceiling[task] - a if change >= 0 else a
        found[task] = change / room if room > 0 else 0.0
    return found


def predicted_gain(share: Scores, scores: Scores, weights: Scores, ceiling: Scores) -> float:
    """The weighted score a model with per-task `scores` gains from an action of profile `share`."""
    return sum(weights.get(t, 1.0) * s * ((ceiling[t] - scores[t]) if s >= 0 else scores[t])
               for t, s in share.items() if t in scores and t in ceiling)

