"""ilp.analytics.stats: Poisson z, the E-test, Benjamini-Hochberg and the weekly control band.

Every expected value here is computed independently of the module: by hand, by a brute-force double
sum written out in the test (the E-test's definition, Krishnamoorthy & Thomson 2004), or by statsmodels.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ilp.analytics.stats import (
    benjamini_hochberg,
    control_limits,
    poisson_e_test,
    poisson_z,
    rolling_control_band,
)


# ---------------------------------------------------------------------------------------------- z
def test_poisson_z_for_20_against_10():
    # 2 * (4.47214 - 3.16228) = 2.61972 (the "about 2.6491" is a slip: the formula gives 2.6197)
    assert poisson_z(20, 10) == pytest.approx(2 * (math.sqrt(20) - math.sqrt(10)))
    assert poisson_z(20, 10) == pytest.approx(2.6197, abs=1e-4)


def test_poisson_z_is_vectorised_and_symmetric():
    z = poisson_z([20, 10, 0], [10, 20, 4])
    assert z == pytest.approx([2.6197, -2.6197, -4.0], abs=1e-4)


# ------------------------------------------------------------------------------------------ E-test
def brute_force_e_test(k1, n1, k2, n2, alternative, statistic="wald"):
    """The E-test p-value straight from its definition: a double sum over a wide grid of both counts.

    Null means from the pooled rate (K&T 2004, ratio 1): lambda = (k1 + k2) / (n1 + n2). Ties in the
    statistic are counted (>= with a 1e-9 tolerance).
    """
    lam = (k1 + k2) / (n1 + n2)
    mean1, mean2 = lam * n1, lam * n2
    x1 = np.arange(0, int(mean1 + 15 * math.sqrt(mean1) + 40))[:, None].astype(float)
    x2 = np.arange(0, int(mean2 + 15 * math.sqrt(mean2) + 40))[None, :].astype(float)

    def stat(a, b):
        if statistic == "wald":
            num, var = a / n1 - b / n2, a / n1**2 + b / n2**2
        else:
            r = n1 / n2
            num, var = a - b * r, (a + b) * r
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(var > 0, num / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)

    observed = float(stat(np.float64(k1), np.float64(k2)))
    grid = stat(x1, x2)
    weight = scipy_stats.poisson.pmf(x1, mean1) * scipy_stats.poisson.pmf(x2, mean2)
    if alternative == "larger":
        mask = grid >= observed - 1e-9
    elif alternative == "smaller":
        mask = grid <= observed + 1e-9
    else:
        mask = np.abs(grid) >= abs(observed) - 1e-9
    return float(weight[mask].sum())


CASES = [
    (20, 28, 30, 84),
    (16, 28, 12, 84),
    (1, 28, 0, 84),
    (0, 28, 5, 84),
    (5, 7, 20, 84),
    (74, 28, 123, 84),
    (10, 1, 3, 2.5),
    (400, 28, 1100, 84),
]


@pytest.mark.parametrize("statistic", ["wald", "score"])
@pytest.mark.parametrize("alternative", ["larger", "smaller", "two-sided"])
def test_e_test_matches_its_definition(alternative, statistic):
    for k1, n1, k2, n2 in CASES:
        _, p = poisson_e_test(k1, n1, k2, n2, alternative=alternative, statistic=statistic)
        assert p == pytest.approx(brute_force_e_test(k1, n1, k2, n2, alternative, statistic), rel=1e-9, abs=1e-13), (
            k1,
            n1,
            k2,
            n2,
        )


@pytest.mark.parametrize("alternative", ["larger", "smaller", "two-sided"])
def test_e_test_matches_statsmodels_etest_wald(alternative):
    rates = pytest.importorskip("statsmodels.stats.rates")
    for k1, n1, k2, n2 in [*CASES, (60, 51477.5, 30, 54308.7)]:
        for ratio in (1.0, 1.5):
            _, p = poisson_e_test(k1, n1, k2, n2, ratio=ratio, alternative=alternative)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # statsmodels divides 0 by 0 for k2 = 0
                expected = rates.test_poisson_2indep(
                    k1, n1, k2, n2, value=ratio, method="etest-wald", alternative=alternative
                ).pvalue
            assert p == pytest.approx(expected, rel=1e-8, abs=1e-12), (k1, n1, k2, n2, ratio)


def test_e_test_known_values():
    # 74 incidents in 28 days against 123 in the 84 days before (Chicago district 005 burglary, July 2017)
    statistic, p = poisson_e_test(74, 28, 123, 84, alternative="larger")
    assert statistic == pytest.approx((74 / 28 - 123 / 84) / math.sqrt(74 / 28**2 + 123 / 84**2))
    assert p == pytest.approx(4.814e-5, rel=1e-3)
    # the Wald statistic's two-sided region is lopsided at unequal exposures; the score statistic's is not
    assert poisson_e_test(74, 28, 123, 84)[1] == pytest.approx(7.617e-4, rel=1e-3)
    assert poisson_e_test(74, 28, 123, 84, statistic="score")[1] == pytest.approx(5.503e-5, rel=1e-3)


def test_e_test_edge_cases_and_vectorisation():
    assert poisson_e_test(0, 28, 0, 84) == (0.0, 1.0)
    assert poisson_e_test(0, 28, 0, 84, alternative="larger")[1] == 1.0
    k1 = np.array([[3, 0], [40, 12]])
    k2 = np.array([[9, 6], [30, 12]])
    statistic, p = poisson_e_test(k1, 28, k2, 84, alternative="larger")
    assert statistic.shape == p.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            single = poisson_e_test(int(k1[i, j]), 28, int(k2[i, j]), 84, alternative="larger")[1]
            assert p[i, j] == pytest.approx(single)
    with pytest.raises(ValueError):
        poisson_e_test(1, 0, 1, 84)
    with pytest.raises(ValueError):
        poisson_e_test(-1, 28, 1, 84)
    with pytest.raises(ValueError):
        poisson_e_test(1, 28, 1, 84, alternative="up")
    with pytest.raises(ValueError):
        poisson_e_test(1, 28, 1, 84, statistic="lr")


def test_e_test_size_does_not_exceed_nominal_level():
    """K&T: the E-test's size seldom exceeds the nominal level. Simulate 20,000 null pairs (rate 3 a
    week; 4 weeks against 12) and check the one-sided rejection rate at 5%."""
    rng = np.random.default_rng(20261115)
    k1 = rng.poisson(12.0, 20_000)
    k2 = rng.poisson(36.0, 20_000)
    _, p = poisson_e_test(k1, 28, k2, 84, alternative="larger")
    rate = float(np.mean(p <= 0.05))
    assert 0.03 <= rate <= 0.055


# ------------------------------------------------------------------------------- Benjamini-Hochberg
def test_benjamini_hochberg_hand_worked():
    # sorted: 0.005, 0.01, 0.03, 0.04, 0.2 against i q / m = 0.01, 0.02, 0.03, 0.04, 0.05 (q = 0.05, m = 5):
    # the largest i with p(i) <= i q / m is 4, so the four smallest are rejected.
    # adjusted p(i) = min_{j >= i} m p(j) / j = 0.025, 0.025, 0.05, 0.05, 0.2
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    adjusted, rejected = benjamini_hochberg(p, 0.05)
    assert adjusted == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.2])
    assert rejected.tolist() == [True, True, True, True, False]
    # at q = 0.04 the thresholds are 0.008, 0.016, 0.024, 0.032, 0.04: only 0.005 and 0.01 pass
    _, rejected = benjamini_hochberg(p, 0.04)
    assert rejected.tolist() == [True, False, False, True, False]


def test_benjamini_hochberg_matches_statsmodels_and_skips_nan():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 1e-3, size=20)])
    adjusted, rejected = benjamini_hochberg(p, 0.10)
    expected_reject, expected_adjusted, _, _ = multitest.multipletests(p, alpha=0.10, method="fdr_bh")
    assert adjusted == pytest.approx(expected_adjusted)
    assert rejected.tolist() == expected_reject.tolist()

    with_nan = np.array([0.01, np.nan, 0.04, 0.03, 0.005, 0.2])
    adjusted, rejected = benjamini_hochberg(with_nan, 0.05)
    assert np.isnan(adjusted[1]) and not rejected[1]
    assert adjusted[[0, 2, 3, 4, 5]] == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.2])
    assert benjamini_hochberg([], 0.1)[1].size == 0
    with pytest.raises(ValueError):
        benjamini_hochberg([0.5], 1.5)


# ------------------------------------------------------------------------------- control band
def test_control_limits_for_a_known_mean():
    mean, lower, upper = control_limits([12, 20, 14, 18, 16, 16, 15, 17])  # mean 16, sqrt 4
    assert mean == 16
    assert lower == pytest.approx((4 - 1.5) ** 2)  # 6.25
    assert upper == pytest.approx((4 + 1.5) ** 2)  # 30.25
    mean, lower, upper = control_limits([1] * 8)  # sqrt(1) - 3/2 < 0: the lower limit is 0
    assert (mean, lower, upper) == (1, 0, pytest.approx(6.25))
    mean, lower, upper = control_limits(np.array([[16] * 8, [1] * 8]), z=2)
    assert upper == pytest.approx([25.0, 4.0])
    assert lower == pytest.approx([9.0, 0.0])


def test_rolling_control_band_marks_weeks_outside():
    counts = [4, 4, 4, 4, 4, 4, 4, 4, 4, 20, 4, 0]
    mean, lower, upper, outside = rolling_control_band(counts)
    assert np.isnan(mean[:8]).all() and (outside[:8] == 0).all()
    assert mean[8] == 4 and upper[8] == pytest.approx(12.25) and lower[8] == pytest.approx(0.25)
    assert outside[9] == 1  # 20 against an upper limit of 12.25
    assert mean[10] == pytest.approx(6.0)
    assert outside[10] == 0
    # mean 6: lower (sqrt(6) - 1.5)^2 = 0.90, and 0 incidents (probability 0.25%) is below it
    assert lower[11] == pytest.approx((math.sqrt(6) - 1.5) ** 2)
    assert outside[11] == -1
    # mean 2.375: lower 0.0017; a week with 0 (probability 9%) is within half a count of it: not flagged
    _, lower, _, outside = rolling_control_band([2, 3, 2, 3, 2, 3, 2, 2, 0])
    assert lower[8] == pytest.approx((math.sqrt(2.375) - 1.5) ** 2)
    assert outside[8] == 0
    _, lower, _, outside = rolling_control_band([10] * 8 + [0])  # mean 10: lower (3.16 - 1.5)^2 = 2.77
    assert lower[8] == pytest.approx((math.sqrt(10) - 1.5) ** 2)
    assert outside[8] == -1
