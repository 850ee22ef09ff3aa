"""Statistics for teacher comparisons, and the runner's summary built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from distillgym.stats import mean_ci, welch


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99])
def test_mean_ci_matches_a_hand_computed_t_interval(confidence):
    x = np.array([0.31, 0.42, 0.38, 0.29, 0.45, 0.40])
    n = len(x)
    m = x.sum() / n
    sd = math.sqrt(((x - m) ** 2).sum() / (n - 1))
    half = sps.t.ppf(1 - (1 - confidence) / 2, df=n - 1) * sd / math.sqrt(n)
    got = mean_ci(list(x), confidence)
    assert got == pytest.approx((m, m - half, m + half), rel=1e-12, abs=1e-12)


def test_mean_ci_widens_with_confidence_and_narrows_with_n():
    x = [0.1, 0.5, 0.3, 0.7]
    _, lo90, hi90 = mean_ci(x, 0.90)
    _, lo99, hi99 = mean_ci(x, 0.99)
    assert lo99 < lo90 < hi90 < hi99
    _, lo, hi = mean_ci(x * 4)
    _, lo4, hi4 = mean_ci(x)
    assert hi - lo < hi4 - lo4


def test_mean_ci_degenerate_inputs():
    m, lo, hi = mean_ci([0.5])
    assert m == 0.5 and math.isnan(lo) and math.isnan(hi)
    m, lo, hi = mean_ci([])
    assert math.isnan(m) and math.isnan(lo) and math.isnan(hi)
    assert mean_ci([0.2, 0.2, 0.2]) == (pytest.approx(0.2), pytest.approx(0.2), pytest.approx(0.2))


def test_welch_matches_the_formula():
    a = np.array([0.52, 0.55, 0.49, 0.58, 0.51])
    b = np.array([0.40, 0.47, 0.35, 0.44])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p = 2 * sps.t.sf(abs(t), df)
    got_t, got_p = welch(list(a), list(b))
    assert got_t == pytest.approx(t, rel=1e-10)
    assert got_p == pytest.approx(p, rel=1e-8)


def test_welch_p_small_for_different_and_large_for_equal_samples():
    rng = np.random.default_rng(0)
    low, high = rng.normal(0.3, 0.02, 10), rng.normal(0.6, 0.02, 10)
    t, p = welch(high, low)
    assert p < 1e-6 and t > 0
    assert welch(low, high)[0] < 0
    same = [0.4, 0.5, 0.45, 0.55]
    t, p = welch(same, list(reversed(same)))
    assert t == pytest.approx(0.0, abs=1e-12) and p == pytest.approx(1.0)
    _, p = welch(rng.normal(0.5, 0.05, 12), rng.normal(0.5, 0.05, 12))
    assert p > 0.05
    assert all(math.isnan(v) for v in welch([0.1], [0.2, 0.3]))


def test_welch_constant_samples():
    """Tiny suites often give every seed the same score: no spurious warning, and a defined answer."""
    import warnings

    const = [1 / 28] * 3  # the mean of identical values is not exactly the value in floating point
    other = [0.1, 0.2, 0.15]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t, p = welch(other, const)
    # With the constant sample's variance 0, Welch's t reduces to a one-sample t on ``other``.
    want = (np.mean(other) - 1 / 28) / (np.std(other, ddof=1) / math.sqrt(3))
    from scipy import stats

    assert t == pytest.approx(want) and p == pytest.approx(stats.ttest_1samp(other, 1 / 28).pvalue)
    assert all(math.isnan(v) for v in welch([0.25, 0.25], [0.25, 0.25, 0.25]))
    assert welch([0.3, 0.3], [0.2, 0.2]) == (math.inf, 0.0)
    assert welch([0.2, 0.2], [0.3, 0.3]) == (-math.inf, 0.0)
