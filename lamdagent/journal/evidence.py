"""Evidence about the candidate training data, measured before iterations are spent on it (the data
screening): per dataset and target task, how much a short fine-tune on a sample of the data lowered
the loss on the task's validation answers. Plain data the journal holds and the policies read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Evidence:
    """dataset -> task -> effect (the loss drop on the task's validation targets, nats per token: > 0 helps)."""

    effects: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0  # the compute it took
    screened_from: str = ""  # the model the short fine-tunes started from

    def __bool__(self) -> bool:
        return bool(self.effects)

    def harmful(self, dataset: str) -> bool:
        """Predicted to hurt every target (a dataset never to try blind)."""
        effects = self.effects.get(dataset)
        return bool(effects) and all(value < 0 for value in effects.values())

    def benefit(self, dataset: str) -> float | None:
        """Its predicted value in [-1, 1]: each task's effect relative to the largest effect any dataset
        had on that task, averaged over the tasks (None: not screened)."""
        effects = self.effects.get(dataset)
        if not effects:
            return None
        scale = {t: max(abs(e.get(t, 0.0)) for e in self.effects.values()) or 1.0 for t in effects}
        return sum(value / scale[t] for t, value in effects.items()) / len(effects)

    def table(self) -> str:
        """The evidence as text for the agent's prompt: a row per dataset, best first."""
        if not self.effects:
            return "(no data screening)"
        tasks = list(next(iter(self.effects.values())))
        rows = sorted(self.effects, key=lambda d: -(self.benefit(d) or 0.0))
        lines = [f"- {d}: " + ", ".join(f"{t} {self.effects[d][t]:+.3f}" for t in tasks) + (" (harmful to every target)" if self.harmful(d) else "")
                 for d in rows]
        return "\n".join(lines)
