"""Means over seeds with their 95% confidence intervals (Student t)."""

from __future__ import annotations

import math
import statistics


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95% confidence interval, mean +- t * sd / sqrt(n) with t the
    exact two-sided 95% quantile of Student's t at n - 1 degrees of freedom (scipy; 2.201 at df=11).
    Missing values are left out; one value has no interval."""
    from scipy.stats import t as student_t

    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan"), float("nan")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = float(student_t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half
