"""Statistics for comparing teachers: t confidence intervals and Welch's t-test."""

from __future__ import annotations

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
    """Welch's unequal-variance t-test of ``mean(a) != mean(b)``: ``(t, two-sided p)``."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    res = stats.ttest_ind(np.asarray(a, float), np.asarray(b, float), equal_var=False)
    return float(res.statistic), float(res.pvalue)
