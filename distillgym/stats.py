"""Statistics for comparing teachers: t confidence intervals and Welch's t-test."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["mean_ci", "welch"]


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t confidence interval ``(mean, low, high)``.

    With fewer than two values the interval is ``(nan, nan)``."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    m = float(x.mean()) if len(x) else float("nan")
    if len(x) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.sem(x) * stats.t.ppf((1 + confidence) / 2, len(x) - 1))
    return m, m - half, m + half


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's unequal-variance t-test of ``mean(a) != mean(b)``: ``(t, two-sided p)``.

    Fewer than two values in either sample gives ``(nan, nan)``. Two constant samples (every
    seed scored the same, which happens on tiny suites) have no variance to test against: equal
    means give ``(nan, nan)``, different ones ``(+-inf, 0.0)``. One constant sample is tested
    as usual, without scipy's precision-loss warning, which there only reflects rounding in
    the mean of identical values."""
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or len(y) < 2:
        return float("nan"), float("nan")
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        if x[0] == y[0]:
            return float("nan"), float("nan")
        return (float("inf") if x[0] > y[0] else float("-inf")), 0.0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    return float(res.statistic), float(res.pvalue)
