"""Each policy of a search benchmark judged against the bar a search must clear to be worth running:
tuned full fine-tuning (its 95% interval), random search and the base model, on the test split."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lamdagent.experiments.intervals import mean_ci

TARGET = "above full fine-tuning's interval, above random, never below the base"


@dataclass
class Verdict:
    """A policy's top-1 test scores against the bar. `met`: its interval's lower bound is above tuned
    full fine-tuning's interval, its mean above random's, and no seed below the base (a part is None
    when the benchmark did not run that bar; without full fine-tuning nothing is met)."""

    policy: str
    text: str
    above_full: bool | None
    above_random: bool | None
    never_below_base: bool | None

    @property
    def met(self) -> bool:
        return self.above_full is True and self.above_random is not False and self.never_below_base is not False

    def as_dict(self) -> dict:
        return {**asdict(self), "met": self.met}


def _interval(scores: list[float]) -> str:
    mean, low, high = mean_ci(scores)
    return f"{mean:.3f}" if len(scores) < 2 else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _against(scores: list[float], bar: list[float], name: str) -> tuple[str, bool, bool]:
    """(what to say, above on the mean, intervals apart) of `scores` against another method's `bar`."""
    mean, low, _ = mean_ci(scores)
    bar_mean, _, bar_high = mean_ci(bar)
    apart = low > bar_high
    where = "above, the intervals apart" if apart else "above on the mean, the intervals overlap" if mean > bar_mean else "not above on the mean"
    return f"{name} {_interval(bar)}: {where}", mean > bar_mean, apart


def verdicts(policies: dict[str, list[float]], full: list[float], base: float | None) -> list[Verdict]:
    """One verdict per policy, from each policy's top-1 test scores over seeds, full fine-tuning's over
    its seeds (empty: not run) and the base's; a policy named `random` is the random bar (itself
    judged against full fine-tuning and the base only)."""
    random_scores = policies.get("random", [])
    found = []
    for policy, scores in policies.items():
        if not scores:
            continue
        parts, above_full, above_random, never_below = [], None, None, None
        if full:
            said, _, above_full = _against(scores, full, "tuned full fine-tuning")
            parts.append(said)
        if random_scores and policy != "random":
            said, above_random, _ = _against(scores, random_scores, "random")
            parts.append(said)
        if base is not None:
            below = sum(s < base for s in scores)
            never_below = not below
            parts.append(f"the base {base:.3f}: " + ("no seed below it" if never_below else f"{below} of {len(scores)} seeds below it"))
        verdict = Verdict(policy, "", above_full, above_random, never_below)
        unrun = [bar for bar, part in (("random", above_random), ("the base", never_below)) if part is None and bar != policy]
        if above_full is None:
            outcome = "not judged (no full fine-tuning)"
        elif verdict.met:
            outcome = "met" + (f" ({' and '.join(unrun)} not run)" if unrun else "")
        else:
            outcome = "missed"
        verdict.text = f"{policy} {_interval(scores)} against " + "; ".join(parts or ["no baseline"]) + f". Target ({TARGET}): {outcome}"
        found.append(verdict)
    return found
