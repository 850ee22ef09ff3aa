"""Statistics for comparing teachers over seeds.

Which test to use:

- every teacher of a benchmark runs on the same seeds (the seed fixes the student's initial weights and
  the validation and test sets), so two teachers' final accuracies are *paired* by seed; the paired
  tests (:func:`paired_test`, Student's t on the per-seed differences or Wilcoxon's signed-rank test)
  remove the seed-to-seed variation both teachers share and are the ones to report;
- :func:`welch` (Welch's unequal-variance t-test) treats the two samples as independent; it is kept for
  unpaired comparisons (different seeds, or results from different benchmarks) and is conservative when
  the samples are in fact paired;
- :func:`holm` corrects a family of p-values (all the teachers of one table against one baseline) for
  multiple comparisons.

Summaries of one sample: :func:`mean_ci` (t interval), :func:`bootstrap_ci` (percentile bootstrap),
:func:`iqm` (interquartile mean with fractional boundary weights), :func:`km_median` (Kaplan-Meier
median of a right-censored time, such as examples until a threshold that some episodes never reach).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_choice

__all__ = [
    "PAIRED_METHODS",
    "PairedTest",
    "KMMedian",
    "mean_ci",
    "bootstrap_ci",
    "iqm",
    "welch",
    "paired_test",
    "holm",
    "km_median",
    "seed_order",
]

PAIRED_METHODS = ("t", "wilcoxon")

# Differences are rounded to this many decimals before testing, so that differences which are equal
# as rationals (accuracies are counts over a fixed number of test items) but differ in their last
# floating-point bits count as ties (Wilcoxon) or as a constant (t), and 0.3 - 0.3 computed two ways
# counts as zero.
_DECIMALS = 12


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


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 10_000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: ``(low, high)``.

    ``n_resamples`` resamples of ``len(values)`` values drawn with replacement from a generator
    seeded with ``seed`` (so the interval is the same on every run); ``low`` and ``high`` are the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means
    (numpy's default linear quantile). ``(nan, nan)`` with fewer than 2 values.

    This is the plain (not stratified) bootstrap: rliable's stratified bootstrap resamples runs
    within each task and matters when one score aggregates several tasks; a leaderboard row is one
    env, i.e. one stratum, where the two are the same."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_resamples, len(x)))].mean(axis=1)
    a = (1 - confidence) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50% of the empirical distribution.

    Definition: sort the ``n`` values ``x_(1) <= ... <= x_(n)``; give each the interval
    ``[(i-1)/n, i/n]`` of the unit line (its probability mass), and weight it by the length of that
    interval's overlap with ``[0.25, 0.75]``; IQM = sum of weight * value / 0.5. So every value wholly
    inside the middle half counts fully and the two boundary values count fractionally; this equals
    the mean of the empirical quantile function over ``[0.25, 0.75]`` and is the interquartile mean of
    Agarwal et al. 2021 ("the mean of the middle 50% of runs") at any ``n``. At ``n = 10``:
    ``(x_(3)/2 + x_(4) + x_(5) + x_(6) + x_(7) + x_(8)/2) / 5``; at ``n = 9``:
    ``(0.75 x_(3) + x_(4) + x_(5) + x_(6) + 0.75 x_(7)) / 4.5``.

    How this differs from rliable: rliable's ``metrics.aggregate_iqm`` (google-research/rliable,
    ``rliable/metrics.py`` at commit 3ccd9f4) is ``scipy.stats.trim_mean(scores, 0.25)``, which cuts
    ``floor(0.25 n)`` values from each end and averages the rest with equal weights: the same as this
    function when ``n`` is a multiple of 4, but at ``n = 10`` it averages the middle 6 values (60% of
    the distribution) and at ``n = 9`` the middle 5 (56%). NaN when ``values`` is empty."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    # Overlap of [(i-1)/n, i/n] with [1/4, 3/4], in units of 1/(4n): integers, so the weights are exact.
    overlap = np.clip(np.minimum(4 * i, 3 * n) - np.maximum(4 * (i - 1), n), 0, None)
    return float(np.dot(overlap, x) / (2 * n))


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's unequal-variance t-test of ``mean(a) != mean(b)`` for *unpaired* samples: ``(t, two-sided p)``.

    Use :func:`paired_test` when the two samples share seeds. Fewer than two values in either sample
    gives ``(nan, nan)``. Two constant samples (every seed scored the same, which happens on tiny
    benchmarks) have no variance to test against: equal means give ``(nan, nan)``, different ones
    ``(+-inf, 0.0)``. One constant sample is tested as usual, without scipy's precision-loss warning,
    which there only reflects rounding in the mean of identical values."""
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


@dataclass(frozen=True)
class PairedTest:
    """Result of :func:`paired_test`.

    Attributes:
        method: ``"t"`` or ``"wilcoxon"``.
        n_pairs: seeds present in both samples (the only ones compared).
        mean_diff: mean over those seeds of ``a - b`` (nan when ``n_pairs`` is 0).
        statistic: Student's t of the differences, or Wilcoxon's W (the smaller of the positive and
            negative rank sums, as scipy reports it for a two-sided test).
        pvalue: two-sided p-value.
    """

    method: str
    n_pairs: int
    mean_diff: float
    statistic: float
    pvalue: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_order(seed: Any) -> tuple[int, Any]:
    """Sort key for seeds: integers in numeric order, then anything else by its repr."""
    return (0, seed) if isinstance(seed, int) and not isinstance(seed, bool) else (1, repr(seed))


def _by_seed(x: Any, name: str) -> dict[Any, float]:
    if not isinstance(x, Mapping):
        raise ConfigError(
            f"paired_test: {name} must map each seed to a value (e.g. {{0: 0.31, 1: 0.29}}), got {type(x).__name__}; "
            "pairing by position would silently compare different seeds"
        )
    return {k: float(v) for k, v in x.items()}


def paired_test(a: Mapping[Any, float], b: Mapping[Any, float], method: str = "t") -> PairedTest:
    """Paired two-sided test of ``a`` against ``b`` on the per-seed differences ``a[s] - b[s]``.

    Args:
        a, b: seed -> value (e.g. final test accuracy). Only seeds present in both count; their number
            is ``n_pairs`` in the result.
        method: ``"t"``: Student's paired t-test (``scipy.stats.ttest_rel``); ``"wilcoxon"``: Wilcoxon's
            signed-rank test (``scipy.stats.wilcoxon``, zero differences discarded, ``method="auto"``:
            with ties or zeros and up to 13 pairs scipy >= 1.13 enumerates all sign flips, otherwise the
            exact distribution up to 50 pairs and the normal approximation beyond).

    Differences are rounded to 12 decimals first (see ``_DECIMALS``). Defined edge cases, the same for
    both methods:

    - fewer than 2 pairs: statistic and p are nan (nothing to test);
    - every difference zero (identical results on every shared seed): statistic 0, p = 1 (no
      evidence of a difference; scipy's t-test would give nan and its Wilcoxon test warns);
    - t only: every difference equal and nonzero (no variance): t = +-inf, p = 0 (as scipy).

    Returns a :class:`PairedTest`."""
    check_choice("paired_test method", method, PAIRED_METHODS)
    x, y = _by_seed(a, "a"), _by_seed(b, "b")
    common = sorted(set(x) & set(y), key=seed_order)
    d = np.round(np.array([x[s] - y[s] for s in common], dtype=float), _DECIMALS)
    n = len(d)
    mean_diff = float(d.mean()) if n else float("nan")
    if n < 2:
        return PairedTest(method, n, mean_diff, float("nan"), float("nan"))
    if not np.any(d):
        return PairedTest(method, n, 0.0, 0.0, 1.0)
    from scipy import stats

    if method == "t":
        if np.ptp(d) == 0:
            return PairedTest(method, n, mean_diff, math.copysign(math.inf, d[0]), 0.0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
            res = stats.ttest_1samp(d, 0.0)  # the same as ttest_rel(a, b) on the rounded differences
    else:
        res = stats.wilcoxon(d, zero_method="wilcox", method="auto")
    return PairedTest(method, n, mean_diff, float(res.statistic), float(res.pvalue))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error rate).

    With the ``m`` finite p-values sorted ``p_(1) <= ... <= p_(m)``, the adjusted value of ``p_(k)`` is
    ``max_{j <= k} min(1, (m - j + 1) p_(j))``; it is returned in the input's order. NaN entries (no
    test, e.g. a reference row or too few seeds) are passed through as NaN and not counted in ``m``.
    Reject at level alpha where the adjusted value is <= alpha."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok) == 0:
        return out.tolist()
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ConfigError(f"holm: p-values must lie in [0, 1] (or be nan), got {p[ok].tolist()}")
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out.tolist()


@dataclass(frozen=True)
class KMMedian:
    """Result of :func:`km_median`.

    Attributes:
        median: Kaplan-Meier median, ``min {t : S(t) <= 0.5}``; nan when the survival curve never
            falls to 0.5 (fewer than half the episodes reached the event before being censored).
        reached: fraction of the episodes whose event was observed (not censored).
        n: number of episodes.
        max_time: the largest time (event or censoring) observed; the median is at least this when
            it is nan and ``n > 0``.
    """

    median: float
    reached: float
    n: int
    max_time: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def km_median(times: Sequence[float], observed: Sequence[bool]) -> KMMedian:
    """Kaplan-Meier median of right-censored times.

    Args:
        times: per episode, the time of the event (e.g. examples spent when validation accuracy first
            reached a threshold) or, where it never happened, the time it was censored at (the
            episode's total examples).
        observed: per episode, True when the event happened at ``times[i]``, False when censored.

    The survival function is ``scipy.stats.ecdf(CensoredData(...)).sf`` (an episode censored at the
    same time as an event is still at risk at that time, the usual convention); the median is the
    first time at which it is <= 0.5 (with a 1e-12 tolerance for the rounding of the product-limit
    estimate), the convention of lifelines' ``median_survival_time_``. When no episode is censored
    this is the lower sample median (``x_(n/2)`` for even ``n``), not the midpoint. Unlike a mean over
    the episodes that reached the threshold, it does not reward a teacher whose failed episodes are
    left out."""
    t = np.asarray(times, dtype=float)
    e = np.asarray(observed, dtype=bool)
    if t.shape != e.shape or t.ndim != 1:
        raise ConfigError(f"km_median: times and observed must be 1-d and of equal length, got {t.shape} and {e.shape}")
    n = len(t)
    if n == 0:
        return KMMedian(float("nan"), float("nan"), 0, float("nan"))
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ConfigError(f"km_median: times must be finite and >= 0 (examples spent, or the total an episode was "
                          f"censored at), got {t.tolist()}")
    reached = float(e.mean())
    if not e.any():
        return KMMedian(float("nan"), 0.0, n, float(t.max()))
    from scipy import stats

    sf = stats.ecdf(stats.CensoredData(uncensored=t[e], right=t[~e])).sf
    below = np.flatnonzero(sf.probabilities <= 0.5 + 1e-12)
    median = float(sf.quantiles[below[0]]) if len(below) else float("nan")
    return KMMedian(median, reached, n, float(t.max()))
