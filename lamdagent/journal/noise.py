"""How far a validation score may move by chance. Each task's score is the mean of n rewards in
[0, 1]; a mean r of such rewards has variance at most r(1 - r)/n (the bound is exact for right/wrong
rewards), so the weighted score sum_t w_t r_t has a standard error of at most
sqrt(sum_t w_t^2 r_t (1 - r_t) / n). Two models whose scores differ by less than the standard error of
their difference are not told apart by the validation set: which of them is "the best" is chance. (The
difference's error is taken as of independent scores; two related models answering the same questions
vary together, so for them it is an overstatement.)"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lamdagent.space.objects import ModelObject


@dataclass
class ScoreNoise:
    """The task weights and the validation examples per task that a score was computed from (no
    weights: every score is taken as exact)."""

    weights: dict[str, float] = field(default_factory=dict)
    examples: int = 0  # validation examples per task

    def error(self, model: ModelObject) -> float:
        """The standard error of the model's validation score (an upper bound; 0 when unknown)."""
        if not self.weights or self.examples <= 0:
            return 0.0
        variance = sum(w * w * _bernoulli(model.scores.get(task, 0.0)) for task, w in self.weights.items())
        return math.sqrt(variance / self.examples)

    def tied(self, a: ModelObject, b: ModelObject) -> bool:
        """Whether the two scores differ by no more than one standard error of their difference."""
        if a.score is None or b.score is None:
            return False
        return abs(a.score - b.score) <= math.hypot(self.error(a), self.error(b))


def _bernoulli(r: float) -> float:
    r = min(max(r, 0.0), 1.0)
    return r * (1.0 - r)
