"""Statistics for teacher comparisons, each checked against scipy or a hand-computed case at n = 10."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.harness.stats import bootstrap_ci, holm, iqm, km_median, mean_ci, paired_test, welch


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


# ---------------------------------------------------------------------------- IQM
def test_iqm_hand_computed_at_n_10():
    """At n = 10 the middle half is x_(3)/2 + x_(4..7) + x_(8)/2 over 5 (not the middle 6 of trim_mean)."""
    x = [0.1, 0.5, 0.2, 0.9, 0.3, 0.35, 0.8, 0.05, 0.6, 0.4]  # sorted: .05 .1 .2 .3 .35 .4 .5 .6 .8 .9
    want = (0.2 / 2 + 0.3 + 0.35 + 0.4 + 0.5 + 0.6 / 2) / 5  # = 0.39
    assert iqm(x) == pytest.approx(want, abs=1e-15) and want == pytest.approx(0.39)
    assert sps.trim_mean(x, 0.25) == pytest.approx((0.2 + 0.3 + 0.35 + 0.4 + 0.5 + 0.6) / 6)  # what rliable does
    assert iqm(x) != pytest.approx(sps.trim_mean(x, 0.25))


def test_iqm_other_sizes():
    nine = [9, 1, 8, 2, 7, 3, 6, 4, 50]  # sorted 1 2 3 4 6 7 8 9 50: 0.75 x3 + x4..x6 + 0.75 x7, over 4.5
    assert iqm(nine) == pytest.approx((0.75 * 3 + 4 + 6 + 7 + 0.75 * 8) / 4.5)
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(np.mean([3, 4, 5, 6]))  # n % 4 == 0: the trimmed mean
    rng = np.random.default_rng(3)
    for n in (4, 12, 20):
        v = rng.normal(size=n)
        assert iqm(v) == pytest.approx(sps.trim_mean(v, 0.25))
    assert iqm([0.7]) == 0.7 and iqm([0.2, 0.4]) == pytest.approx(0.3) and math.isnan(iqm([]))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 7, 10, 11, 13, 30])
def test_iqm_is_the_mean_of_the_quantile_function_over_the_middle_half(n):
    """The definition: the integral of the empirical quantile function over [0.25, 0.75], over 0.5."""
    x = np.random.default_rng(n).exponential(size=n)
    q = np.linspace(0.25, 0.75, 200_001)[1:-1]
    want = np.quantile(x, q, method="inverted_cdf").mean()
    assert iqm(x) == pytest.approx(want, rel=2e-4)


# ---------------------------------------------------------------------------- bootstrap
def test_bootstrap_ci_reproducible_and_close_to_scipy():
    x = [0.417, 0.424, 0.366, 0.281, 0.319, 0.437, 0.317, 0.352, 0.181, 0.301]
    lo, hi = bootstrap_ci(x)
    assert lo < np.mean(x) < hi and bootstrap_ci(x) == (lo, hi) and bootstrap_ci(x, seed=1) != (lo, hi)
    ref = sps.bootstrap((np.array(x),), np.mean, method="percentile", n_resamples=10_000,
                        rng=np.random.default_rng(5)).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.006) and hi == pytest.approx(ref.high, abs=0.006)
    assert all(math.isnan(v) for v in bootstrap_ci([0.3]))


# ---------------------------------------------------------------------------- paired tests
U = [0.417, 0.424, 0.366, 0.281, 0.319, 0.437, 0.317, 0.352, 0.181, 0.301]
D = [0.05, 0.07, 0.02, 0.09, -0.01, 0.04, 0.06, 0.03, 0.08, 0.10]  # distinct |d|; the one negative has rank 1


def test_paired_t_hand_computed_and_scipy_at_n_10():
    a = {s: U[s] + D[s] for s in range(10)}
    b = dict(enumerate(U))
    res = paired_test(a, b, "t")
    d = np.array(D)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(10))
    assert res.n_pairs == 10 and res.mean_diff == pytest.approx(d.mean())
    assert res.statistic == pytest.approx(t, rel=1e-9)
    assert res.pvalue == pytest.approx(2 * sps.t.sf(abs(t), 9), rel=1e-8)
    ref = sps.ttest_rel([a[s] for s in range(10)], U)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-9) and res.pvalue == pytest.approx(ref.pvalue, rel=1e-8)
    assert paired_test(b, a, "t").statistic == pytest.approx(-t, rel=1e-9)


def test_wilcoxon_hand_computed_at_n_10():
    """W = 1 (the negative difference has the smallest |d|): of the 2^10 sign patterns, 2 have a negative
    rank sum <= 1 ({} and {1}), so the exact two-sided p is 2 * 2 / 1024."""
    a = {s: U[s] + D[s] for s in range(10)}
    res = paired_test(a, dict(enumerate(U)), "wilcoxon")
    assert res.statistic == 1.0 and res.pvalue == pytest.approx(4 / 1024)
    # negative at rank 3 (|d| = 0.03): sums <= 3 are {}, {1}, {2}, {3}, {1,2}: p = 2 * 5 / 1024
    d3 = [0.05, 0.07, 0.02, 0.09, 0.01, 0.04, 0.06, -0.03, 0.08, 0.10]
    res = paired_test({s: U[s] + d3[s] for s in range(10)}, dict(enumerate(U)), "wilcoxon")
    assert res.statistic == 3.0 and res.pvalue == pytest.approx(10 / 1024)
    assert res.pvalue == pytest.approx(sps.wilcoxon(np.array(d3)).pvalue)


def test_wilcoxon_with_ties_and_a_zero_matches_enumerating_all_sign_flips():
    d = np.array([0.05, 0.05, 0.1, -0.05, 0.2, 0.2, -0.1, 0.3, 0.0, 0.15])
    res = paired_test({s: 0.3 + d[s] for s in range(10)}, {s: 0.3 for s in range(10)}, "wilcoxon")
    nz = d[d != 0]  # zeros dropped (zero_method="wilcox")
    r = sps.rankdata(np.abs(nz))
    obs = r[nz > 0].sum()
    sums = np.array([r[[i for i in range(len(nz)) if m >> i & 1]].sum() for m in range(2 ** len(nz))])
    want = min(1.0, 2 * min((sums <= obs + 1e-9).mean(), (sums >= obs - 1e-9).mean()))
    assert res.n_pairs == 10 and res.pvalue == pytest.approx(want)


def test_paired_tests_match_by_seed():
    a = {s: U[s] + D[s] for s in range(10)}
    a[42] = 0.99  # a seed the baseline never ran: ignored
    b = {s: U[s] for s in reversed(range(2, 10))}  # other order, seeds 0 and 1 missing
    for method in ("t", "wilcoxon"):
        res = paired_test(a, b, method)
        assert res.n_pairs == 8
        ref = (sps.ttest_rel if method == "t" else lambda x, y: sps.wilcoxon(np.subtract(x, y)))(
            [U[s] + D[s] for s in range(2, 10)], U[2:])
        assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-8)
        assert res.mean_diff == pytest.approx(np.mean(D[2:]))


@pytest.mark.parametrize("method", ["t", "wilcoxon"])
def test_paired_edge_cases(method):
    import warnings

    base = dict(enumerate(U))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = paired_test(dict(base), base, method)
        # equal as rationals, different in the last bits: still "no difference"
        noisy = paired_test({s: (U[s] * 3) / 3 + 0.1 - 0.1 for s in range(10)}, base, method)
    assert (same.statistic, same.pvalue, same.mean_diff, same.n_pairs) == (0.0, 1.0, 0.0, 10)
    assert noisy.pvalue == 1.0
    one = paired_test({0: 0.5, 1: 0.2}, {0: 0.3, 5: 0.1}, method)
    assert one.n_pairs == 1 and math.isnan(one.pvalue) and math.isnan(one.statistic) and one.mean_diff == pytest.approx(0.2)
    none = paired_test({0: 0.5}, {1: 0.3}, method)
    assert none.n_pairs == 0 and math.isnan(none.pvalue) and math.isnan(none.mean_diff)
    shifted = paired_test({s: U[s] + 0.1 for s in range(10)}, base, method)
    if method == "t":
        assert shifted.statistic == math.inf and shifted.pvalue == 0.0
    else:
        assert shifted.pvalue == pytest.approx(2 / 1024)  # all ten differences positive (tied |d|)


def test_paired_test_bad_input():
    with pytest.raises(ConfigError, match="map each seed"):
        paired_test([0.1, 0.2], [0.3, 0.4])
    with pytest.raises(UnknownNameError, match="wilcoxon"):
        paired_test({0: 0.1}, {0: 0.2}, "wilcoxn")


# ---------------------------------------------------------------------------- Holm
def test_holm_hand_computed():
    # sorted: .005 * 4 = .02; .01 * 3 = .03; .03 * 2 = .06; .04 * 1 = .04 -> max(.06, .04) = .06
    got = holm([0.01, 0.04, 0.03, 0.005, float("nan")])
    assert got[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(got[4])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])
    assert all(math.isnan(p) for p in holm([float("nan")] * 2)) and holm([]) == []
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        holm([0.1, 1.5])


def test_holm_ten_teachers_and_statsmodels_if_present():
    p = [0.3534, 0.9417, 0.1907, 0.0729, 0.0004, 0.0002, 0.0001, 1e-5, 1e-7, 1e-8]
    got = holm(p)
    order = np.argsort(p)
    want = np.maximum.accumulate([min(1.0, (10 - k) * p[i]) for k, i in enumerate(order)])
    assert np.allclose(np.array(got)[order], want)
    assert all(g >= q for g, q in zip(got, p, strict=True))
    try:
        from statsmodels.stats.multitest import multipletests
    except ImportError:
        return
    assert np.allclose(got, multipletests(p, method="holm")[1])


# ---------------------------------------------------------------------------- Kaplan-Meier median
def test_km_median_hand_computed_censored_case_at_n_10():
    """Events at 100, 200, 300, 400, 500; censored at 200, 350, 600, 600, 600. Product-limit:
    100: 9/10 = .9; 200: .9 * 8/9 = .8 (the one censored at 200 still at risk); 300: .8 * 6/7 = .686;
    400: .686 * 4/5 = .549; 500: .549 * 3/4 = .411 <= .5, so the median is 500, where the mean over the
    episodes that reached the threshold says 300."""
    times = [100, 200, 200, 300, 350, 400, 500, 600, 600, 600]
    observed = [1, 1, 0, 1, 0, 1, 1, 0, 0, 0]
    km = km_median(times, observed)
    assert km.median == 500 and km.reached == 0.5 and km.n == 10 and km.max_time == 600
    assert np.mean([t for t, o in zip(times, observed, strict=True) if o]) == 300


def test_km_median_other_cases():
    ten = list(range(100, 1100, 100))
    assert km_median(ten, [True] * 10).median == 500  # no censoring: the lower median x_(5)
    few = km_median([100, 200, 700, 700, 700, 700, 700, 700, 700, 700], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert math.isnan(few.median) and few.reached == 0.2 and few.max_time == 700
    assert math.isnan(km_median([5, 6], [False, False]).median)
    assert km_median([0, 10], [True, True]).median == 0  # reached at the start
    empty = km_median([], [])
    assert empty.n == 0 and math.isnan(empty.median) and math.isnan(empty.reached)
    with pytest.raises(ConfigError, match="equal length"):
        km_median([1, 2], [True])
    with pytest.raises(ConfigError, match=">= 0"):
        km_median([-1, 2], [True, True])


def test_km_median_refuses_infinite_and_nan_times():
    """An infinite time reached scipy's bare ValueError before issue 20 (item 10); now a ConfigError."""
    for bad in ([1.0, float("inf")], [float("-inf"), 2.0], [float("nan"), 1.0], [-1.0, 2.0]):
        with pytest.raises(ConfigError, match="finite and >= 0"):
            km_median(bad, [True, False])
