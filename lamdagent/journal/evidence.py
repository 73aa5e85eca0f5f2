"""Evidence about the candidate training data, measured before iterations are spent on it (the data
screening): per dataset and target task, how much a short fine-tune on a sample of the data lowered
the loss on the task's validation answers. Plain data the journal holds and the policies read.

A screening may repeat each short fine-tune (`screening.repeats`) on other samples in other orders:
then an effect counts only where every repeat moved the loss the same way; where they disagree in
sign it is unclear, read as no effect, and no verdict rests on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean


@dataclass
class Evidence:
    """dataset -> task -> effect (the loss drop on the task's validation targets, nats per token: > 0 helps),
    the mean over the repeats in `samples` when the screening repeated."""

    effects: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0  # the compute it took
    screened_from: str = ""  # the model the short fine-tunes started from
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # dataset -> task -> each repeat's effect

    @classmethod
    def of_repeats(cls, samples: dict[str, dict[str, list[float]]], seconds: float = 0.0, screened_from: str = "") -> Evidence:
        """The evidence of repeated screenings: each effect the mean of its repeats."""
        return cls({d: {t: fmean(v) for t, v in tasks.items()} for d, tasks in samples.items()}, seconds, screened_from, samples)

    def __bool__(self) -> bool:
        return bool(self.effects)

    def clear(self, dataset: str, task: str) -> bool:
        """Every repeat moved the task's loss the same way (so, with one repeat, always: no spread is known)."""
        values = self.samples.get(dataset, {}).get(task, [])
        return len(values) < 2 or all(v < 0 for v in values) or all(v > 0 for v in values)

    def effect(self, dataset: str, task: str) -> float:
        """The effect on `task` as the policies read it: 0.0 where the repeats disagree in sign."""
        return self.effects[dataset][task] if self.clear(dataset, task) else 0.0

    def harmful(self, dataset: str) -> bool:
        """Predicted to hurt every target (a dataset never to try blind)."""
        effects = self.effects.get(dataset)
        return bool(effects) and all(self.effect(dataset, t) < 0 for t in effects)

    def benefit(self, dataset: str) -> float | None:
        """Its predicted value in [-1, 1]: each task's effect relative to the largest effect any dataset
        had on that task, averaged over the tasks (None: not screened)."""
        effects = self.effects.get(dataset)
        if not effects:
            return None
        scale = {t: max(abs(self.effect(d, t)) for d in self.effects) or 1.0 for t in effects}
        return sum(self.effect(dataset, t) / scale[t] for t in effects) / len(effects)

    def table(self) -> str:
        """The evidence as text for the agent's prompt: a row per dataset, best first."""
        if not self.effects:
            return "(no data screening)"
        tasks = list(next(iter(self.effects.values())))
        rows = sorted(self.effects, key=lambda d: -(self.benefit(d) or 0.0))
        return "\n".join(f"- {d}: " + ", ".join(self._cell(d, t) for t in tasks) + (" (harmful to every target)" if self.harmful(d) else "")
                         for d in rows)

    def _cell(self, dataset: str, task: str) -> str:
        text = f"{task} {self.effects[dataset][task]:+.3f}"
        if not self.clear(dataset, task):
            text += f" (unclear: its {len(self.samples[dataset][task])} repeats disagree in sign)"
        return text
