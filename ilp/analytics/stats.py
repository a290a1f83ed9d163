"""Honest change statistics: is a change in a count signal or noise?

Pure, vectorised functions (numpy/scipy only; no warehouse, no Streamlit), each from its published
source:

* :func:`poisson_z` — z = 2 * (sqrt(current) - sqrt(baseline)); |z| > 3 is worth a look
  (Wheeler 2023, "Percent change is a horrible metric", crimede-coder.com).
* :func:`poisson_e_test` — the E-test for the ratio of two Poisson rates (Krishnamoorthy & Thomson
  2004, "A more powerful test for comparing two Poisson means", J. Statistical Planning and Inference
  119:23-35), recommended for short-run crime changes by Wheeler (2018).
* :func:`benjamini_hochberg` — false discovery rate control across the many beat x offence tests made
  each week (Benjamini & Hochberg 1995, JRSS B 57:289-300).
* :func:`control_limits` — the weekly control band: mean of the prior 8 weeks, limits
  (sqrt(mean) +/- z/2)^2 with z = 3 (Wheeler, crimepy ``time.py`` ``weekly_data``).
"""

from __future__ import annotations

import numpy as np
from scipy import special as _special

ALTERNATIVES = ("larger", "smaller", "two-sided")
STATISTICS = ("wald", "score")

# The E-test sums the null distribution of the first count over mean +/- this many standard deviations
# (plus a margin for small means); the mass left out is below 1e-15, far under any p-value that matters.
_TAIL_SD = 9.0
_TAIL_MARGIN = 10
# T(k1, k2) is compared with the observed statistic with this tolerance, so that ties (pairs of counts
# with exactly the observed statistic) are counted despite floating-point rounding.
_TIE_TOLERANCE = 1e-9


# ------------------------------------------------------------------------------------------------ z
def poisson_z(current, baseline):
    """Poisson z for two counts: ``2 * (sqrt(current) - sqrt(baseline))`` (vectorised).

    ``baseline`` is the count expected over the same length of time as ``current`` (e.g. a 12-week
    total scaled to 28 days). The square root is the variance-stabilising transform of a Poisson
    count, so z is roughly standard normal when nothing changed; |z| > 3 is worth a look (Wheeler,
    "Percent change is a horrible metric", crimede-coder.com 2023). Negative inputs are treated as 0;
    NaN stays NaN.
    """
    current = np.asarray(current, dtype=float)
    baseline = np.asarray(baseline, dtype=float)
    return 2.0 * (np.sqrt(np.clip(current, 0, None)) - np.sqrt(np.clip(baseline, 0, None)))


# ------------------------------------------------------------------------------------------ E-test
def _coefficients(k1, n1, n2, ratio, statistic):
    """(a, b, c, d) with T(k1, u) = (a - b u) / sqrt(c + d u) for the second count u.

    'wald' (Krishnamoorthy & Thomson 2004): T = (k1/n1 - c u/n2) / sqrt(k1/n1^2 + c^2 u/n2^2).
    'score' (Gu, Ng, Tang & Schucany 2008; statsmodels' default E-test statistic), variance under H0:
    T = (k1 - u r) / sqrt((k1 + u) r) with r = c n1 / n2.
    """
    if statistic == "wald":
        return k1 / n1, ratio / n2, k1 / n1**2, ratio**2 / n2**2
    r = ratio * n1 / n2
    return k1, r, k1 * r, r


def _statistic(k1, k2, n1, n2, ratio, statistic):
    """T(k1, k2) for the chosen statistic; T(0, 0) = 0."""
    a, b, c, d = _coefficients(k1, n1, n2, ratio, statistic)
    var = c + d * k2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, (a - b * k2) / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)


def _largest_k2_at_or_above(k1, n1, n2, ratio, t, statistic):
    """For each k1, the largest k2 >= -1 with T(k1, k2) >= t (T falls as k2 rises; -1 means none).

    With T = (a - b u) / sqrt(c + d u) and a, b, c, d >= 0, dT/du < 0, so the set is {u <= limit}.
    Solves (a - b u) = t sqrt(c + d u) in closed form, then corrects the floor by evaluating T exactly.
    """
    a, b, c, d = _coefficients(k1, n1, n2, ratio, statistic)
    # quadratic b^2 u^2 - (2ab + t^2 d) u + (a^2 - t^2 c) = 0
    qa = b * b
    qb = -(2 * a * b + t * t * d)
    qc = a * a - t * t * c
    disc = np.sqrt(np.clip(qb * qb - 4 * qa * qc, 0, None))
    small, large = (-qb - disc) / (2 * qa), (-qb + disc) / (2 * qa)
    # t >= 0: the region is a - b u >= 0 and below the smaller root; t < 0: up to the larger root.
    root = np.where(t >= 0, small, large)
    limit = np.floor(np.clip(np.nan_to_num(root, nan=-1.0, posinf=1e12), -1, 1e12))
    for _ in range(3):  # exact correction of rounding in the closed form
        up = _statistic(k1, limit + 1, n1, n2, ratio, statistic) >= t - _TIE_TOLERANCE
        limit = np.where(up, limit + 1, limit)
        down = (limit >= 0) & (_statistic(k1, np.maximum(limit, 0), n1, n2, ratio, statistic) < t - _TIE_TOLERANCE)
        limit = np.where(down, limit - 1, limit)
    return limit


def _poisson_pmf(k, mean):
    """P(X = k) for X ~ Poisson(mean), elementwise (scipy.special, without scipy.stats' overhead)."""
    return np.exp(_special.xlogy(k, mean) - mean - _special.gammaln(k + 1.0))


def _poisson_cdf(k, mean):
    """P(X <= k); 0 for k < 0. Computed only where it is neither ~0 nor ~1 (beyond 9 sd it is 0 or 1)."""
    spread = _TAIL_SD * np.sqrt(mean) + _TAIL_MARGIN
    out = np.where(k >= mean + spread, 1.0, 0.0)
    middle = (k >= 0) & (k > mean - spread) & (k < mean + spread)
    out[middle] = _special.pdtr(k[middle], mean[middle])
    return out


def _poisson_sf(k, mean):
    """P(X > k); 1 for k < 0. Evaluated only where it is neither ~0 nor ~1."""
    spread = _TAIL_SD * np.sqrt(mean) + _TAIL_MARGIN
    out = np.where(k <= mean - spread, 1.0, 0.0)
    out = np.where(k < 0, 1.0, out)
    middle = (k >= 0) & (k > mean - spread) & (k < mean + spread)
    out[middle] = _special.pdtrc(k[middle], mean[middle])
    return out


def _upper_tail(k1_grid, idx, w1, mean2, n1, n2, ratio, t, size, statistic):
    """sum over k1 of P(K1 = k1) P(T(k1, K2) >= t), per test."""
    limit = _largest_k2_at_or_above(k1_grid, n1[idx], n2[idx], ratio[idx], t[idx], statistic)
    return np.bincount(idx, weights=w1 * _poisson_cdf(limit, mean2[idx]), minlength=size)


def _lower_tail(k1_grid, idx, w1, mean2, n1, n2, ratio, t, size, statistic):
    """sum over k1 of P(K1 = k1) P(T(k1, K2) <= t), per test: T <= t is the complement of T > t."""
    above = t[idx] + 2 * _TIE_TOLERANCE
    limit = _largest_k2_at_or_above(k1_grid, n1[idx], n2[idx], ratio[idx], above, statistic)
    return np.bincount(idx, weights=w1 * _poisson_sf(limit, mean2[idx]), minlength=size)


def poisson_e_test(k1, n1, k2, n2, ratio: float = 1.0, alternative: str = "two-sided", statistic: str = "wald"):
    """E-test p-values for the ratio of two Poisson rates (Krishnamoorthy & Thomson 2004).

    ``k1`` events over exposure ``n1`` (e.g. the last 28 days: n1 = 28) against ``k2`` events over
    exposure ``n2`` (e.g. the 12 weeks before: n2 = 84). H0: rate1 / rate2 = ``ratio`` (default 1).
    ``alternative``: ``'larger'`` (rate1 is higher: an increase), ``'smaller'`` or ``'two-sided'``.
    Arguments broadcast, so thousands of tests run in one call. Returns ``(statistic, p_value)`` arrays
    (scalars for scalar input).

    The method, from the paper: the statistic is the standardised difference of the two rates,

        T(k1, k2) = (k1/n1 - c k2/n2) / sqrt(k1/n1^2 + c^2 k2/n2^2),      T(0, 0) = 0,

    and the p-value is its exact probability under H0 with the nuisance rate replaced by its
    restricted maximum-likelihood estimate lambda2 = (k1 + k2) / (c n1 + n2), lambda1 = c lambda2:

        p = sum_{x1, x2} Poisson(x1; n1 lambda1) Poisson(x2; n2 lambda2) 1[T(x1, x2) >= T(k1, k2)]

    for 'larger' (<= for 'smaller', |T| >= |T_obs| for 'two-sided'). For c = 1 this is K&T's E-test
    with d = 0 (their Fortran ``pois2pval``); it equals statsmodels'
    ``test_poisson_2indep(..., method='etest-wald')``.

    ``statistic='score'`` swaps in the score statistic T = (x1 - x2 r) / sqrt((x1 + x2) r), r = c n1/n2
    (variance under H0; Gu, Ng, Tang & Schucany 2008, Biometrical Journal 50:283-298; statsmodels'
    ``method='etest'``), same E-test machinery. Use it for two-sided tests when the exposures differ a
    lot (a 7- or 28-day window against an 84-day baseline): the Wald statistic's null distribution is
    then strongly skewed and its |T| region spends most of the test's size on falls (74 in 28 days vs
    123 in 84: one-sided 4.8e-5 with either statistic, two-sided 7.6e-4 Wald vs 5.5e-5 score).

    Because T falls as x2 rises (for both statistics), the inner sum is a Poisson CDF at a threshold
    found in closed form, so each test costs O(range of x1), not a 2-D grid.
    (K&T's Fortran sets T to 0 when the observed difference is not positive in a one-sided test, which
    only matters when there is no increase at all; here the statistic is used as is.) When
    k1 = k2 = 0 the p-value is 1.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, not {alternative!r}")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, not {statistic!r}")
    k1, n1, k2, n2, ratio = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (k1, n1, k2, n2, ratio)))
    shape = k1.shape
    k1, n1, k2, n2, ratio = (v.ravel() for v in (k1, n1, k2, n2, ratio))
    if np.any((n1 <= 0) | (n2 <= 0)) or np.any(ratio <= 0):
        raise ValueError("exposures and the null ratio must be positive")
    if np.any((k1 < 0) | (k2 < 0)):
        raise ValueError("counts must not be negative")
    size = k1.size
    t_obs = _statistic(k1, k2, n1, n2, ratio, statistic)
    lam2 = (k1 + k2) / (ratio * n1 + n2)
    mean1, mean2 = ratio * lam2 * n1, lam2 * n2

    # ragged grid of x1 values per test: mean1 +/- 9 sd, plus a margin (the mass outside is < 1e-15)
    spread = _TAIL_SD * np.sqrt(mean1) + _TAIL_MARGIN
    lo = np.floor(np.clip(mean1 - spread, 0, None)).astype(np.int64)
    hi = np.ceil(mean1 + spread).astype(np.int64)
    lengths = hi - lo + 1
    idx = np.repeat(np.arange(size), lengths)
    offsets = np.arange(idx.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    x1 = (lo[idx] + offsets).astype(float)
    w1 = _poisson_pmf(x1, mean1[idx])
    keep = w1 > 1e-18  # terms that cannot move a p-value
    idx, x1, w1 = idx[keep], x1[keep], w1[keep]

    if alternative == "larger":
        p = _upper_tail(x1, idx, w1, mean2, n1, n2, ratio, t_obs, size, statistic)
    elif alternative == "smaller":
        p = _lower_tail(x1, idx, w1, mean2, n1, n2, ratio, t_obs, size, statistic)
    else:
        magnitude = np.abs(t_obs)
        p = _upper_tail(x1, idx, w1, mean2, n1, n2, ratio, magnitude, size, statistic) + _lower_tail(
            x1, idx, w1, mean2, n1, n2, ratio, -magnitude, size, statistic
        )
        # T = 0 lies in both tails when T_obs = 0; the p-value is then 1
        p = np.where(magnitude <= _TIE_TOLERANCE, 1.0, p)
    p = np.where((k1 + k2) == 0, 1.0, np.clip(p, 0.0, 1.0))
    if shape == ():
        return float(t_obs[0]), float(p[0])
    return t_obs.reshape(shape), p.reshape(shape)


# ------------------------------------------------------------------------------ false discovery rate
def benjamini_hochberg(p_values, q: float = 0.10):
    """Benjamini-Hochberg step-up: ``(adjusted_p, rejected)`` for a family of tests at FDR ``q``.

    With m tests and sorted p-values p(1) <= ... <= p(m), reject the k smallest where k is the largest
    i with p(i) <= i q / m (Benjamini & Hochberg 1995). The adjusted p-value ("q-value") of p(i) is
    min over j >= i of m p(j) / j, capped at 1, so ``rejected == (adjusted <= q)``. NaN p-values (no
    test made) are left out of m and come back NaN / False. The expected share of false discoveries
    among the rejections is at most q m0 / m for independent (or positively dependent) tests.
    """
    p = np.asarray(p_values, dtype=float)
    if not 0 < q < 1:
        raise ValueError(f"q must be between 0 and 1, not {q}")
    adjusted = np.full(p.shape, np.nan)
    flat = p.ravel()
    valid = np.flatnonzero(~np.isnan(flat))
    m = valid.size
    if m:
        order = valid[np.argsort(flat[valid], kind="stable")]
        ranked = flat[order] * m / np.arange(1, m + 1)
        stepped = np.minimum.accumulate(ranked[::-1])[::-1]
        out = adjusted.ravel()
        out[order] = np.clip(stepped, 0.0, 1.0)
        adjusted = out.reshape(p.shape)
    rejected = np.where(np.isnan(adjusted), False, adjusted <= q)
    return adjusted, rejected


# ------------------------------------------------------------------------------- control chart band
def control_limits(prior_counts, z: float = 3.0):
    """Weekly control band from the prior weeks' counts: ``(mean, lower, upper)``.

    mean = the mean of ``prior_counts`` (the prior 8 weeks in Wheeler's charts; the last axis is
    time, so a 2-D array gives one band per row); limits ``(sqrt(mean) -/+ z/2)^2``, the lower one
    floored at 0 before squaring (Wheeler, crimepy ``time.py`` ``weekly_data``: the square root of a
    Poisson count has standard deviation about 1/2, so z/2 on that scale is z standard deviations).
    A week above ``upper`` or below ``lower`` is outside the band.
    """
    counts = np.asarray(prior_counts, dtype=float)
    mean = counts.mean(axis=-1)
    root = np.sqrt(np.clip(mean, 0, None))
    lower = np.clip(root - z / 2.0, 0, None) ** 2
    upper = (root + z / 2.0) ** 2
    return mean, lower, upper


def rolling_control_band(counts, window: int = 8, z: float = 3.0):
    """The band for every week of a weekly series: ``(prior_mean, lower, upper, outside)`` arrays.

    Week i's band comes from weeks i-window .. i-1 (NaN for the first ``window`` weeks, which have no
    full history); ``outside`` is +1 above the upper limit, -1 below the lower one, 0 otherwise.
    Counts are whole numbers, so a week is outside only when it is beyond the limit by more than half
    a count (count - 1/2 > upper, count + 1/2 < lower): without that, a week with 0 incidents would sit
    "below" a lower limit of 0.002 (prior mean 2.4), which happens one week in ten.
    """
    values = np.asarray(counts, dtype=float)
    n = values.size
    mean = np.full(n, np.nan)
    if n > window:
        sums = np.convolve(values, np.ones(window), mode="valid")[:-1]
        mean[window:] = sums / window
    root = np.sqrt(np.clip(mean, 0, None))
    lower = np.clip(root - z / 2.0, 0, None) ** 2
    upper = (root + z / 2.0) ** 2
    with np.errstate(invalid="ignore"):
        outside = np.where(values - 0.5 > upper, 1, np.where(values + 0.5 < lower, -1, 0))
    outside = np.where(np.isnan(mean), 0, outside)
    return mean, lower, upper, outside
