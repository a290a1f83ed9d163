"""Did the tasking work? An evaluation of one tasking (or any intervention) against an untreated
comparison area, with its displacement buffer, in counts and in harm.

The design, for a target (a beat, a district or a location; one or more offence categories) tasked from a
start date, with ``pre_weeks`` before it and ``post_weeks`` from it (12 and 12 by default):

* **Comparison area.** By default the untreated area of the same level whose pre-period weekly series is
  most like the target's in level (mean per week) and trend (slope), measured in units of the target's own
  Poisson noise; the target, its buffer and areas tasked for the same offence in an overlapping window are
  not candidates. It is chosen from pre-period data only (:func:`choose_comparison` sees no later week),
  so it is fixed before the post period is seen; the pages record the choice in the audit log
  (:func:`record_comparisons`) and use the recorded area afterwards. Or one the user names.
* **Displacement buffer.** Beats or districts: the areas sharing a boundary with the target (from the
  areas' GeoJSON, or, without boundaries, areas whose located incidents share grid cells), computed once per
  snapshot. A location: the ring of grid cells (the deployment map's 250 m grid) around the location's
  cell, the location's own incidents left out; its beat when it has no coordinates.
* **Weighted Displacement Difference** (Wheeler & Ratcliffe 2018, "A simple weighted displacement
  difference test to evaluate place based crime interventions", Crime Science 7:11):
  WDD = dT - dC + dD - dCd over the target T, its comparison C, the buffer D and the comparison's buffer
  Cd, each d the after count minus the before count; Poisson variance, the sum of the counts. Pre windows
  longer than the post window are scaled to its length (variance times the scale squared). Harm-weighted:
  per-category WDDs combined with the category's harm weight w, variance se^2 w^2 (Wheeler, ptools
  ``wdd_harm``).
* **Difference in differences**, a quasi-Poisson regression of the weekly counts of target and comparison
  with a fixed effect for each week (which absorbs seasonality and anything else both areas share) and
  the interaction target x post; the ratio is exp(interaction), "the target's counts after, as a share
  of what the comparison says they would have been". The scale is Pearson chi^2 / df (quasi-Poisson),
  the 95% interval uses Student's t on those df. Weeks with no incident in either area carry no
  information about the ratio and are dropped. Harm: the same model on weekly harm.
* **Harm prevented** = expected harm in the target without the tasking (observed / ratio, i.e. the
  comparison-adjusted counterfactual) minus the observed harm, over the post window, with the interval
  from the harm ratio's interval. Negative means harm rose.
* **Caveats, computed**: regression to the mean (the target's last 4 pre weeks against the 52 weeks before
  them: was it at a local peak when tasked?), the pre-period trend difference between target and
  comparison, the minimum detectable effect (80% power, 5% two-sided) against a 30% change, and what the
  buffer did (displacement or diffusion of benefits).

A window the data do not yet cover says so instead of estimating; the comparison and the pre-period
caveats are computed as soon as the pre window is covered. Nothing here imports Streamlit; the pages
call :func:`evaluate` through ``page.analysis`` (cached per snapshot and parameters).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading

import numpy as np
import pandas as pd
from scipy import stats

from ilp.analytics.hotspots import grid_for
from ilp.errors import UserError
from ilp.warehouse import read_meta, run_query

PRE_WEEKS = 12
POST_WEEKS = 12
MIN_WEEKS = 4  # shorter windows are refused: too few weeks for a weekly model
MAX_WEEKS = 156
LEVEL = 0.95
RTM_RECENT_WEEKS = 4
RTM_BASELINE_WEEKS = 52
RTM_MIN_BASELINE_WEEKS = 12
RTM_Z = 1.96
TREND_Z = 1.96
BUFFER_Z = 1.96
MDE_CHANGE = 0.30
MDE_POWER = 0.80
RING_CELLS = 1  # a location's buffer: cells within this many cells (Chebyshev) of its own
MIN_SHARED_CELLS = 3  # neighbours without boundaries: areas whose incidents share at least this many cells
LEVELS = ("beat", "district", "location")
AREA_LEVELS = ("beat", "district")
RECORD_ACTION = "evaluation_comparison"

STATUS_TEXT = {
    "ok": "Evaluated",
    "post_not_covered": "Post window not yet covered",
    "pre_not_covered": "Pre window not covered",
    "not_estimable": "Not estimable",
    "no_comparison": "No comparison area",
    "no_weekly_dates": "No weekly dates",
}


class EvaluationError(UserError, ValueError):
    """An evaluation asked for something the data cannot give (unknown area, bad window, ...)."""


# ------------------------------------------------------------------------------------------ WDD
@dataclasses.dataclass(frozen=True)
class Wdd:
    """A Weighted Displacement Difference: the estimate and its standard error, and its two parts, the
    target's change net of the comparison's (dT - dC) and the buffer's net of its control's (dD - dCd)."""

    estimate: float
    se: float
    target: float
    target_se: float
    buffer: float
    buffer_se: float
    has_buffer: bool = True

    @property
    def z(self) -> float:
        return self.estimate / self.se if self.se > 0 else float("nan")

    @property
    def target_z(self) -> float:
        return self.target / self.target_se if self.target_se > 0 else float("nan")

    @property
    def buffer_z(self) -> float:
        return self.buffer / self.buffer_se if self.buffer_se > 0 else float("nan")

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        half = float(stats.norm.ppf(0.5 + level / 2)) * self.se
        return self.estimate - half, self.estimate + half


def _change(pair, scale: float) -> tuple[float, float]:
    """(after - scale x before, its Poisson variance after + scale^2 x before) for a (before, after) pair."""
    before, after = (float(v) for v in pair)
    return after - scale * before, after + scale * scale * before


def wdd(treated, control, buffer=None, buffer_control=None, *, scale: float = 1.0) -> Wdd:
    """The WDD test (Wheeler & Ratcliffe 2018) from (before, after) counts of the treated area, its control,
    and optionally the displacement buffer and the buffer's control. ``scale`` = post weeks / pre weeks
    puts the before counts on the after window's length. Worked check (the authors' R package): treated
    20 -> 10, control 20 -> 20 gives WDD -10, SE 8.37."""
    d_t, v_t = _change(treated, scale)
    d_c, v_c = _change(control, scale)
    has_buffer = buffer is not None
    d_d, v_d = _change(buffer, scale) if has_buffer else (0.0, 0.0)
    d_cd, v_cd = _change(buffer_control, scale) if buffer_control is not None else (0.0, 0.0)
    target, target_var = d_t - d_c, v_t + v_c
    displaced, displaced_var = d_d - d_cd, v_d + v_cd
    return Wdd(
        estimate=target + displaced,
        se=float(np.sqrt(target_var + displaced_var)),
        target=target,
        target_se=float(np.sqrt(target_var)),
        buffer=displaced,
        buffer_se=float(np.sqrt(displaced_var)),
        has_buffer=has_buffer,
    )


def wdd_harm(parts) -> Wdd:
    """Harm-weighted WDD: ``parts`` is an iterable of (weight, Wdd), one per offence category; the estimate
    is sum(w x WDD) and its variance sum(w^2 x se^2) (Wheeler, ptools ``wdd_harm``)."""
    parts = list(parts)
    if not parts:
        return Wdd(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)

    def combine(value: str, se: str) -> tuple[float, float]:
        total = sum(w * getattr(p, value) for w, p in parts)
        return total, float(np.sqrt(sum((w * getattr(p, se)) ** 2 for w, p in parts)))

    estimate, se = combine("estimate", "se")
    target, target_se = combine("target", "target_se")
    displaced, displaced_se = combine("buffer", "buffer_se")
    return Wdd(estimate, se, target, target_se, displaced, displaced_se, any(p.has_buffer for _, p in parts))


# ------------------------------------------------------------------------------------------ DiD regression
@dataclasses.dataclass(frozen=True)
class RatioEstimate:
    """exp(target x post) from the quasi-Poisson difference-in-differences fit, with its interval."""

    ratio: float
    low: float
    high: float
    log_ratio: float
    se: float  # of log_ratio, quasi-Poisson
    dispersion: float  # Pearson chi^2 / df
    df: int
    p_value: float
    weeks: int  # weeks used (with an incident in target or comparison)
    level: float = LEVEL
    calibration: float = 1.0  # the model's se was multiplied by this (in-space placebos, see placebo_calibration)

    @property
    def significant(self) -> bool:
        """The interval excludes 1 (a change either way)."""
        return self.high < 1.0 or self.low > 1.0

    @property
    def reduction(self) -> bool:
        """A measurable reduction: the whole interval below 1."""
        return self.high < 1.0

    def text(self) -> str:
        return f"{self.ratio:.2f} (95% interval {self.low:.2f} – {self.high:.2f})"


def _week_effects_fit(target: np.ndarray, comparison: np.ndarray, effect: np.ndarray):
    """Quasi-Poisson of the weekly values of target and comparison with a fixed effect for each week and the
    term target x ``effect``: (coefficient of target x effect, its quasi-Poisson se, dispersion, df), or None.

    Fitted in its exact conditional form. With a fixed effect per week, the Poisson likelihood of the week's
    two values given their total n_t is binomial, target_t | n_t ~ Bin(n_t, p_t) with logit p_t = a + b x
    effect_t: b is the Poisson coefficient and the week effects drop out. The estimate, the Pearson chi^2 and
    the residual df (weeks - 2) are those of the Poisson model with week dummies (tests/test_evaluation.py
    checks them against statsmodels' GLM with the dummies); the fit needs two parameters instead of
    weeks + 2. Weeks with no incident in either area carry no information and are left out."""
    total = target + comparison
    keep = total > 0
    y, n, effect = target[keep], total[keep], effect[keep].astype(float)
    df = len(y) - 2
    if df < 1 or np.ptp(effect) == 0:
        return None
    x = np.column_stack([np.ones(len(y)), effect])
    beta = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        weight = n * p * (1 - p)
        if np.any(weight <= 1e-12):
            return None
        information = x.T @ (x * weight[:, None])
        step = np.linalg.solve(information, x.T @ (y - n * p))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(x @ beta)))
    variance = n * p * (1 - p)
    dispersion = float(np.sum((y - n * p) ** 2 / variance) / df)
    covariance = np.linalg.inv(x.T @ (x * variance[:, None]))
    se = float(np.sqrt(covariance[1, 1] * dispersion))
    if not (np.isfinite(beta[1]) and np.isfinite(se)) or se <= 0:
        return None
    return float(beta[1]), se, dispersion, int(df)


def _two_by_two_fit(weekly: pd.DataFrame):
    """The same model without week effects (an intercept, target, post, target x post) with statsmodels:
    its estimate is log((T1/T0) / (C1/C0)) exactly; the scale is Pearson chi^2 / df."""
    import statsmodels.api as sm

    weeks = weekly["week"].to_numpy()
    n = len(weeks)
    y = np.r_[weekly["target"].to_numpy(float), weekly["comparison"].to_numpy(float)]
    treated = np.r_[np.ones(n), np.zeros(n)]
    post = (np.r_[weeks, weeks] >= 0).astype(float)
    x = np.column_stack([treated * post, treated, post, np.ones(2 * n)])
    df = 2 * n - 4
    if df < 1:
        return None
    fit = sm.GLM(y, x, family=sm.families.Poisson()).fit(scale="X2")
    return float(fit.params[0]), float(fit.bse[0]), float(fit.pearson_chi2 / df), int(df)


def did_ratio(
    weekly: pd.DataFrame,
    *,
    week_effects: bool = True,
    level: float = LEVEL,
    calibration: float = 1.0,
    calibration_df: int | None = None,
) -> RatioEstimate | None:
    """The difference-in-differences ratio from ``weekly`` (columns week, target, comparison; week < 0 is
    before, >= 0 after): quasi-Poisson regression of the weekly values with a fixed effect per week
    (:func:`_week_effects_fit`), or, without ``week_effects``, the 2 x 2 model whose estimate is
    (T1/T0) / (C1/C0). The interval uses Student's t on the residual df, the se multiplied by
    ``calibration`` (:func:`placebo_calibration`) when that is over 1; the calibration is then estimated
    from ``calibration_df`` placebos, and t takes the smaller of the two df. None when a cell of the 2 x 2
    table is empty (the ratio is 0 or unbounded) or there are no residual degrees of freedom."""
    weekly = weekly[["week", "target", "comparison"]].astype({"target": float, "comparison": float})
    before, after = weekly[weekly["week"] < 0], weekly[weekly["week"] >= 0]
    if min(before["target"].sum(), after["target"].sum(), before["comparison"].sum(), after["comparison"].sum()) <= 0:
        return None
    if week_effects:
        target, comparison = weekly["target"].to_numpy(), weekly["comparison"].to_numpy()
        fit = _week_effects_fit(target, comparison, (weekly["week"].to_numpy() >= 0).astype(float))
        used = int(np.sum((target + comparison) > 0))
    else:
        fit, used = _two_by_two_fit(weekly), len(weekly)
    if fit is None:
        return None
    beta, se, dispersion, df = fit
    se *= max(float(calibration), 1.0)
    if calibration > 1.0 and calibration_df:
        df = min(df, int(calibration_df))
    t = float(stats.t.ppf(0.5 + level / 2, df))
    return RatioEstimate(
        ratio=float(np.exp(beta)),
        low=float(np.exp(beta - t * se)),
        high=float(np.exp(beta + t * se)),
        log_ratio=beta,
        se=se,
        dispersion=dispersion,
        df=df,
        p_value=float(2 * stats.t.sf(abs(beta / se), df)),
        weeks=used,
        level=level,
        calibration=max(float(calibration), 1.0),
    )


def pre_trend(weekly: pd.DataFrame) -> dict | None:
    """The pre-period trend difference between target and comparison: the week-effects quasi-Poisson model
    with target x week (centred) on the pre weeks of ``weekly``. Returns the difference per week (log
    scale), its z, the implied change over the window, and the pre-period dispersion; None when it cannot be
    fitted."""
    pre = weekly[weekly["week"] < 0].astype({"target": float, "comparison": float})
    if pre["target"].sum() <= 0 or pre["comparison"].sum() <= 0:
        return None
    weeks = pre["week"].to_numpy(dtype=float)
    fit = _week_effects_fit(pre["target"].to_numpy(), pre["comparison"].to_numpy(), weeks - weeks.mean())
    if fit is None:
        return None
    slope, se, dispersion, df = fit
    span = float(weeks.max() - weeks.min())
    return {
        "per_week": slope,
        "se": se,
        "z": slope / se,
        "over_window": float(np.exp(slope * span) - 1.0),
        "weeks": int(span + 1),
        "dispersion": dispersion,
        "df": df,
    }


# ------------------------------------------------------------------------------------------ design checks
def minimum_detectable_effect(
    target_pre: float,
    comparison_pre: float,
    *,
    pre_weeks: int,
    post_weeks: int,
    dispersion: float = 1.0,
    alpha: float = 1 - LEVEL,
    power: float = MDE_POWER,
) -> float:
    """The smallest reduction (a share: 0.3 = 30%) the design detects with ``power`` at two-sided ``alpha``,
    known before the post period: the post counts expected with no change are the pre counts scaled to the
    post window, and se(log ratio) = sqrt(dispersion x sum(1 / expected cell counts)). 1.0 when a pre count is 0."""
    if target_pre <= 0 or comparison_pre <= 0:
        return 1.0
    scale = post_weeks / pre_weeks
    cells = np.array([target_pre, target_pre * scale, comparison_pre, comparison_pre * scale], dtype=float)
    se = float(np.sqrt(max(dispersion, 1.0) * np.sum(1.0 / cells)))
    multiplier = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return float(1.0 - np.exp(-multiplier * se))


def regression_to_mean(target_weekly: pd.Series, *, first_covered_week: int) -> dict | None:
    """Was the target at a local peak when tasked? Its last ``RTM_RECENT_WEEKS`` pre weeks against the
    ``RTM_BASELINE_WEEKS`` weeks before them (as many as the data cover, at least ``RTM_MIN_BASELINE_WEEKS``).
    ``target_weekly`` is indexed by week (negative: before the start), zeros filled. z compares the recent
    count with the baseline rate, both Poisson: (R - E) / sqrt(E + (r/b)^2 B)."""
    recent_weeks = list(range(-RTM_RECENT_WEEKS, 0))
    first = max(-RTM_RECENT_WEEKS - RTM_BASELINE_WEEKS, first_covered_week)
    baseline_weeks = list(range(first, -RTM_RECENT_WEEKS))
    if len(baseline_weeks) < RTM_MIN_BASELINE_WEEKS:
        return None
    recent = float(target_weekly.reindex(recent_weeks, fill_value=0).sum())
    baseline = float(target_weekly.reindex(baseline_weeks, fill_value=0).sum())
    share = RTM_RECENT_WEEKS / len(baseline_weeks)
    expected = baseline * share
    variance = expected + share * share * baseline
    z = (recent - expected) / np.sqrt(variance) if variance > 0 else float("nan")
    return {
        "recent": recent,
        "recent_weeks": RTM_RECENT_WEEKS,
        "recent_per_week": recent / RTM_RECENT_WEEKS,
        "baseline": baseline,
        "baseline_weeks": len(baseline_weeks),
        "baseline_per_week": baseline / len(baseline_weeks),
        "expected": expected,
        "z": float(z),
        "peak": bool(np.isfinite(z) and z >= RTM_Z),
    }


# ------------------------------------------------------------------------------------------ comparison
def choose_comparison(pre: pd.DataFrame, target: str, excluded=()) -> tuple[str | None, pd.DataFrame]:
    """The candidate whose pre-period weekly series is most like the target's: ``pre`` has one row per area
    (index area id) and one column per pre week (counts, zeros filled), and nothing later, so the choice
    cannot depend on the post period. Distance = z(level)^2 + z(trend)^2, the differences in mean per week
    and in OLS slope, each divided by the standard error of a difference between two series with the target's
    Poisson variance. Ties go to the lower area id. Returns (area or None, the candidates ranked)."""
    if target not in pre.index:
        return None, pd.DataFrame(columns=["area_id", "mean", "slope", "level_z", "trend_z", "distance"])
    weeks = np.asarray(pre.columns, dtype=float)
    values = pre.to_numpy(dtype=float)
    n = len(weeks)
    centred = weeks - weeks.mean()
    sxx = float(np.sum(centred**2)) or 1.0
    means = values.mean(axis=1)
    slopes = values @ centred / sxx
    position = list(pre.index).index(target)
    variance = max(means[position], 1.0 / n)  # Poisson: the variance of a week is its mean
    level_se = np.sqrt(2 * variance / n)
    trend_se = np.sqrt(2 * variance / sxx)
    table = pd.DataFrame(
        {
            "area_id": pre.index.astype(str),
            "mean": means,
            "slope": slopes,
            "level_z": (means - means[position]) / level_se,
            "trend_z": (slopes - slopes[position]) / trend_se,
        }
    )
    table["distance"] = table["level_z"] ** 2 + table["trend_z"] ** 2
    excluded = {str(a) for a in excluded} | {str(target)}
    table = table[~table["area_id"].isin(excluded) & (table["mean"] > 0)]
    table = table.sort_values(["distance", "area_id"]).reset_index(drop=True)
    return (table["area_id"].iloc[0] if len(table) else None), table


# ------------------------------------------------------------------------------------------ calibration
MIN_PLACEBOS = 10


def placebo_calibration(table: pd.DataFrame, *, neighbours: dict, exclude=(), pre_weeks: int) -> dict | None:
    """In-space placebos at the target's own dates: every other untreated area with incidents before and
    after is "evaluated" as if it had been tasked on the same day, with its own comparison chosen by the
    same rule from the pre weeks, and its DiD z (log ratio / model se) and WDD z are kept. Nothing happened
    in those areas, so their z's show how far the model's standard errors understate the real spread of
    estimates between areas (slow, shared-within-area drifts that weekly quasi-Poisson residuals do not
    see: found on Chicago's districts, where the weekly model alone gave 14% "significant" placebos).

    ``table``: one row per area, one column per week from -pre_weeks (counts, zeros filled). Returns
    ``calibration`` = max(1, root mean square of the DiD z's), the factor the target's se is multiplied by,
    the placebos' count and the spread of their WDD z's; None with fewer than ``MIN_PLACEBOS``."""
    if table.empty:
        return None
    ids = table.index.astype(str).to_numpy()
    weeks = np.asarray(table.columns, dtype=float)
    values = table.to_numpy(dtype=float)
    before, after = weeks < 0, weeks >= 0
    if not before.any() or not after.any():
        return None
    pre = values[:, before]
    centred = weeks[before] - weeks[before].mean()
    sxx = float(np.sum(centred**2)) or 1.0
    means, slopes = pre.mean(axis=1), pre @ centred / sxx
    post_share = after.sum() / before.sum()
    before_sum, after_sum = pre.sum(axis=1), values[:, after].sum(axis=1)
    index = {area: i for i, area in enumerate(ids)}
    excluded = {str(a) for a in exclude}
    usable = (before_sum > 0) & (after_sum > 0) & ~np.isin(ids, list(excluded))
    did_z, wdd_z = [], []
    for i in np.flatnonzero(usable):
        own = set(neighbours.get(ids[i], ()))
        banned = np.isin(ids, list(own | excluded | {ids[i]})) | (means <= 0)
        if banned.all():
            continue
        variance = max(means[i], 1.0 / pre.shape[1])
        distance = (means - means[i]) ** 2 / (2 * variance / pre.shape[1]) + (slopes - slopes[i]) ** 2 / (
            2 * variance / sxx
        )
        distance[banned] = np.inf
        j = int(np.argmin(distance))
        fit = _week_effects_fit(values[i], values[j], after.astype(float))
        if fit is not None:
            did_z.append(fit[0] / fit[1])
        buffer = [index[a] for a in own if a in index and a != ids[j]]
        control = [
            index[a] for a in neighbours.get(ids[j], ()) if a in index and a not in own and a not in (ids[i], ids[j])
        ]

        def pair(rows):
            return (values[rows][:, before].sum(), values[rows][:, after].sum()) if rows else None

        w = wdd(pair([i]), pair([j]), pair(buffer), pair(control), scale=post_share)
        if np.isfinite(w.z):
            wdd_z.append(w.z)
    if len(did_z) < MIN_PLACEBOS:
        return None
    rms = float(np.sqrt(np.mean(np.square(did_z))))
    return {
        "calibration": max(1.0, rms),
        "placebos": len(did_z),
        "did_z_rms": rms,
        "did_z_beyond": float(np.mean(np.abs(did_z) >= 1.96)),
        "wdd_z_rms": float(np.sqrt(np.mean(np.square(wdd_z)))) if wdd_z else float("nan"),
        "wdd_z_beyond": float(np.mean(np.abs(wdd_z) >= 1.96)) if wdd_z else float("nan"),
    }


# ------------------------------------------------------------------------------------------ neighbours
_neighbours_cache: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
_neighbours_lock = threading.Lock()


def neighbours(con, level: str) -> dict[str, tuple[str, ...]]:
    """Each area's neighbours at ``level`` ('beat' or 'district'), computed once per snapshot: areas whose
    boundaries touch (GeoJSON in the areas table, shapely) when every area with incidents has one, else
    areas whose located incidents share at least ``MIN_SHARED_CELLS`` grid cells."""
    version = read_meta(con).get("version", "?")
    key = (version, level)
    with _neighbours_lock:
        if key in _neighbours_cache:
            return _neighbours_cache[key]
    found = _neighbours_from_boundaries(con, level)
    if found is None:
        found = _neighbours_from_cells(con, level)
    with _neighbours_lock:
        _neighbours_cache[key] = found
        if len(_neighbours_cache) > 32:
            _neighbours_cache.pop(next(iter(_neighbours_cache)))
    return found


def _neighbours_from_boundaries(con, level: str) -> dict[str, tuple[str, ...]] | None:
    import shapely
    from shapely.geometry import shape

    rows = run_query(con, "areas_boundaries")
    rows = rows[rows["level"] == level]
    levels = run_query(con, "evaluation_levels")
    used = set(levels.loc[levels["level"] == level, "area_id"].astype(str))
    if rows.empty or not used <= set(rows["area_id"].astype(str)):
        return None
    ids = rows["area_id"].astype(str).tolist()
    polygons = [shape(json.loads(text)) for text in rows["geometry_geojson"]]
    tree = shapely.STRtree(polygons)
    left, right = tree.query(polygons, predicate="dwithin", distance=1e-5)  # about a metre: shared edges
    found: dict[str, set[str]] = {area: set() for area in ids}
    for i, j in zip(left, right):
        if i != j:
            found[ids[i]].add(ids[j])
    return {area: tuple(sorted(others)) for area, others in found.items()}


def _neighbours_from_cells(con, level: str) -> dict[str, tuple[str, ...]]:
    coverage = run_query(con, "evaluation_coverage").iloc[0]
    grid = grid_for(coverage["mean_latitude"])
    pairs = run_query(con, "evaluation_shared_cells", {"level": level, **grid.params()})
    pairs = pairs[pairs["shared_cells"] >= MIN_SHARED_CELLS]
    found: dict[str, set[str]] = {}
    for a, b in zip(pairs["area_a"].astype(str), pairs["area_b"].astype(str)):
        found.setdefault(a, set()).add(b)
        found.setdefault(b, set()).add(a)
    return {area: tuple(sorted(others)) for area, others in found.items()}


# ------------------------------------------------------------------------------------------ the evaluation
@dataclasses.dataclass(frozen=True)
class Caveat:
    """One computed caveat: what it is about, whether it weakens this evaluation, and the sentence with its
    numbers."""

    kind: str  # 'regression_to_mean', 'pre_trend', 'power', 'displacement', 'comparison'
    flagged: bool
    text: str


@dataclasses.dataclass
class Evaluation:
    """One evaluation: what was asked, what was chosen, the estimates (None until the post window is covered)
    and the computed caveats. ``series`` holds the weekly incidents of target, comparison and buffers."""

    level: str
    area_id: str
    categories: tuple[str, ...]
    start: dt.date
    pre_weeks: int
    post_weeks: int
    status: str
    message: str
    data_version: str
    harm_index: str
    harm_version: str
    data_through: dt.date | None
    tasking_id: int | None = None
    category_labels: tuple[str, ...] = ()
    harm_unit: str = "harm units"
    comparison_area: str | None = None
    comparison_named: bool = False
    comparison_recorded: bool = False
    comparison_in_buffer_or_treated: bool = False
    comparison_distance: float | None = None
    comparison_candidates: int = 0
    buffer: tuple[str, ...] = ()
    buffer_description: str = ""
    comparison_buffer: tuple[str, ...] = ()
    post_weeks_covered: int = 0
    counts: dict = dataclasses.field(default_factory=dict)  # (group, 'before'/'after') -> incidents
    harm_totals: dict = dataclasses.field(default_factory=dict)  # the same, harm
    ratio: RatioEstimate | None = None
    harm_ratio: RatioEstimate | None = None
    wdd: Wdd | None = None
    harm_wdd: Wdd | None = None
    harm_prevented: float | None = None
    harm_prevented_low: float | None = None
    harm_prevented_high: float | None = None
    mde: float | None = None
    regression_to_mean: dict | None = None
    pre_trend: dict | None = None
    calibration: dict | None = None  # in-space placebos (placebo_calibration); None at location level
    caveats: tuple[Caveat, ...] = ()
    series: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    @property
    def evaluated(self) -> bool:
        return self.status == "ok" and self.ratio is not None

    @property
    def pre_start(self) -> dt.date:
        return self.start - dt.timedelta(weeks=self.pre_weeks)

    @property
    def post_end(self) -> dt.date:
        """The last day of the post window."""
        return self.start + dt.timedelta(weeks=self.post_weeks, days=-1)

    @property
    def reduction(self) -> bool:
        """A measurable reduction: the ratio's whole 95% interval is below 1."""
        return self.evaluated and self.ratio.reduction

    @property
    def reading(self) -> str:
        """One line for a table cell."""
        if not self.evaluated:
            return STATUS_TEXT.get(self.status, self.status)
        if self.ratio.reduction:
            return "Measurable reduction"
        if self.ratio.low > 1.0:
            return "Measurable increase"
        return "No measurable change"

    @property
    def wdd_z_calibrated(self) -> float | None:
        """The WDD z divided by the spread of the in-space placebos' WDD z's when that is over 1 (the WDD's
        Poisson variance understates real counts' spread; on Chicago's districts a third of placebo WDDs
        had |z| >= 1.96)."""
        if self.wdd is None:
            return None
        spread = self.calibration.get("wdd_z_rms") if self.calibration else None
        return self.wdd.z / max(1.0, spread) if spread is not None and np.isfinite(spread) else self.wdd.z

    def chosen_text(self) -> str:
        """How the comparison was chosen, for display."""
        if self.comparison_area is None:
            return "No comparison area."
        if self.comparison_named:
            return f"Comparison {self.comparison_area}, named by the user."
        if self.comparison_recorded:
            return (
                f"Comparison {self.comparison_area}: chosen from the {self.pre_weeks} weeks before "
                f"{self.start:%d %b %Y} when this tasking was first evaluated, and recorded then (audit log)."
            )
        return (
            f"Comparison {self.comparison_area}: of {self.comparison_candidates} untreated candidates, the most like "
            f"the target in level and trend over the {self.pre_weeks} weeks before {self.start:%d %b %Y} "
            f"(distance {self.comparison_distance:.2f}; chosen from those weeks only)."
        )

    def to_dict(self) -> dict:
        """The JSON of ``ilp evaluate --json``."""

        def number(value):
            return None if value is None or not np.isfinite(value) else round(float(value), 6)

        ratio, harm_ratio, w, hw = self.ratio, self.harm_ratio, self.wdd, self.harm_wdd
        return {
            "tasking_id": self.tasking_id,
            "level": self.level,
            "area_id": self.area_id,
            "categories": list(self.categories),
            "start": self.start.isoformat(),
            "pre_weeks": self.pre_weeks,
            "post_weeks": self.post_weeks,
            "post_weeks_covered": self.post_weeks_covered,
            "status": self.status,
            "message": self.message,
            "data_version": self.data_version,
            "data_through": self.data_through.isoformat() if self.data_through else None,
            "harm_index": f"{self.harm_index}:{self.harm_version}",
            "comparison_area": self.comparison_area,
            "comparison_named": self.comparison_named,
            "comparison_recorded": self.comparison_recorded,
            "comparison_chosen": self.chosen_text(),
            "buffer": list(self.buffer),
            "buffer_description": self.buffer_description,
            "comparison_buffer": list(self.comparison_buffer),
            "counts": {f"{group}_{when}": int(v) for (group, when), v in self.counts.items()},
            "harm": {f"{group}_{when}": number(v) for (group, when), v in self.harm_totals.items()},
            "ratio": number(ratio.ratio) if ratio else None,
            "ratio_low": number(ratio.low) if ratio else None,
            "ratio_high": number(ratio.high) if ratio else None,
            "ratio_p": number(ratio.p_value) if ratio else None,
            "dispersion": number(ratio.dispersion) if ratio else None,
            "harm_ratio": number(harm_ratio.ratio) if harm_ratio else None,
            "harm_ratio_low": number(harm_ratio.low) if harm_ratio else None,
            "harm_ratio_high": number(harm_ratio.high) if harm_ratio else None,
            "wdd": number(w.estimate) if w else None,
            "wdd_se": number(w.se) if w else None,
            "wdd_z": number(w.z) if w else None,
            "wdd_target": number(w.target) if w else None,
            "wdd_target_z": number(w.target_z) if w else None,
            "wdd_buffer": number(w.buffer) if w else None,
            "wdd_buffer_z": number(w.buffer_z) if w else None,
            "wdd_z_calibrated": number(self.wdd_z_calibrated),
            "harm_wdd": number(hw.estimate) if hw else None,
            "harm_wdd_se": number(hw.se) if hw else None,
            "harm_wdd_z": number(hw.z) if hw else None,
            "harm_prevented": number(self.harm_prevented),
            "harm_prevented_low": number(self.harm_prevented_low),
            "harm_prevented_high": number(self.harm_prevented_high),
            "mde": number(self.mde),
            "regression_to_mean": self.regression_to_mean,
            "pre_trend": self.pre_trend,
            "calibration": self.calibration,
            "caveats": [dataclasses.asdict(c) for c in self.caveats],
        }


def _weeks_text(n: int) -> str:
    return f"{n} week{'s' if n != 1 else ''}"


def _post_weeks(start: dt.date, end: dt.date | None, post_weeks: int | None) -> int:
    if end is None:
        return POST_WEEKS if post_weeks is None else int(post_weeks)
    if post_weeks is not None:
        raise EvaluationError("give the post window either as an end date or as --post-weeks, not both")
    if end <= start:
        raise EvaluationError(f"the end date {end} is not after the start date {start}")
    return (end - start).days // 7


def _default_harm(con, harm_index: str | None, harm_version: str | None) -> tuple[str, str, str]:
    """(index, version, unit) of the harm index asked for, or of the snapshot's default."""
    indices = run_query(con, "snapshot_harm_indices")
    if harm_index is None and harm_version is None:
        if indices.empty:
            raise EvaluationError("this snapshot holds no harm index")
        first = indices.iloc[0]
        return str(first["index_name"]), str(first["version"]), str(first["unit"])
    matches = indices[
        (indices["index_name"] == harm_index) & ((harm_version is None) | (indices["version"] == harm_version))
    ]
    if matches.empty:
        raise EvaluationError(f"no harm index {harm_index}:{harm_version} in this snapshot (see `ilp status`)")
    chosen = matches.sort_values("version").iloc[-1]
    return str(harm_index), str(chosen["version"]), str(chosen["unit"])


class _Series:
    """Weekly incidents and harm per (group, category, week), from the named queries."""

    def __init__(self, weeks: range, categories: tuple[str, ...]):
        self.weeks = weeks
        self.categories = categories
        self.counts: dict[str, pd.DataFrame] = {}
        self.harm: dict[str, pd.DataFrame] = {}

    def add(self, group: str, rows: pd.DataFrame, *, sign: float = 1.0) -> None:
        """Add the query ``rows`` (offense_category, week, incidents, harm) to ``group`` (times ``sign``)."""
        for measure, store in (("incidents", self.counts), ("harm", self.harm)):
            table = rows.groupby(["week", "offense_category"])[measure].sum().unstack() if len(rows) else pd.DataFrame()
            table = table.reindex(index=list(self.weeks), columns=list(self.categories)).fillna(0.0).astype(float)
            store[group] = store[group] + sign * table if group in store else sign * table

    def has(self, group: str) -> bool:
        return group in self.counts

    def total(self, group: str, measure: str = "incidents") -> pd.Series:
        return (self.counts if measure == "incidents" else self.harm)[group].sum(axis=1)

    def window(self, group: str, when: str, measure: str = "incidents", *, pre: int, post: int) -> float:
        total = self.total(group, measure)
        weeks = range(-pre, 0) if when == "before" else range(0, post)
        return float(total.reindex(list(weeks), fill_value=0.0).sum())

    def by_category(self, group: str, category: str, when: str, *, pre: int, post: int) -> float:
        column = self.counts[group][category]
        weeks = range(-pre, 0) if when == "before" else range(0, post)
        return float(column.reindex(list(weeks), fill_value=0.0).sum())


def evaluate(
    con,
    *,
    level: str,
    area_id: str,
    categories,
    start: dt.date,
    end: dt.date | None = None,
    pre_weeks: int = PRE_WEEKS,
    post_weeks: int | None = None,
    comparison: str | None = None,
    treated=(),
    harm_index: str | None = None,
    harm_version: str | None = None,
    data_through: dt.date | None = None,
    tasking_id: int | None = None,
    comparison_recorded: bool = False,
) -> Evaluation:
    """Evaluate an intervention on ``categories`` in ``area_id`` (a ``level`` area) from ``start``: see the
    module docstring. ``treated`` names other areas of the level tasked for the same offences in an
    overlapping window (never a comparison); ``data_through`` caps the data used (a brief of an earlier
    week); ``comparison`` names the comparison instead of choosing one (``comparison_recorded``: it is the
    one chosen for this tasking earlier and recorded, not the user's)."""
    if level not in LEVELS:
        raise EvaluationError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    categories = tuple(dict.fromkeys([categories] if isinstance(categories, str) else categories))
    if not categories:
        raise EvaluationError("name at least one offence category")
    start = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start)[:10])
    if isinstance(start, dt.datetime):
        start = start.date()
    post_weeks = _post_weeks(start, end, post_weeks)
    pre_weeks = int(pre_weeks)
    for name, weeks in (("pre", pre_weeks), ("post", post_weeks)):
        if not MIN_WEEKS <= weeks <= MAX_WEEKS:
            raise EvaluationError(f"the {name} window must be {MIN_WEEKS} to {MAX_WEEKS} weeks, not {weeks}")
    area_id = str(area_id)
    harm_index, harm_version, harm_unit = _default_harm(con, harm_index, harm_version)
    coverage = run_query(con, "evaluation_coverage").iloc[0]
    known = run_query(
        con,
        "evaluation_category_weights",
        {"categories": list(categories), "harm_index": harm_index, "harm_version": harm_version},
    )
    unknown = sorted(set(categories) - set(known["category"]))
    if unknown:
        raise EvaluationError(f"unknown offence categories: {', '.join(unknown)} (see the taskings page for the list)")
    weights = dict(zip(known["category"], known["harm_weight"].astype(float)))
    labels = dict(zip(known["category"], known["label"]))
    last_day = None if pd.isna(coverage["last_day"]) else pd.Timestamp(coverage["last_day"]).date()
    if last_day is not None and data_through is not None:
        last_day = min(last_day, data_through)
    first_day = None if pd.isna(coverage["first_day"]) else pd.Timestamp(coverage["first_day"]).date()
    result = Evaluation(
        level=level,
        area_id=area_id,
        categories=categories,
        start=start,
        pre_weeks=pre_weeks,
        post_weeks=post_weeks,
        status="ok",
        message="",
        data_version=read_meta(con).get("version", "?"),
        harm_index=harm_index,
        harm_version=harm_version,
        data_through=last_day,
        tasking_id=tasking_id,
        category_labels=tuple(labels[c] for c in categories),
        harm_unit=harm_unit.split(" (")[0].strip() or "harm units",
    )
    if first_day is None:
        return _stop(result, "not_estimable", "The snapshot holds no incidents.")
    if coverage["month_only"] > coverage["incidents"] / 2:
        return _stop(
            result,
            "no_weekly_dates",
            "This source dates offences to the month only, so there is no weekly series to evaluate with.",
        )
    if result.pre_start < first_day:
        return _stop(
            result,
            "pre_not_covered",
            f"The data start on {first_day:%d %b %Y}: the {pre_weeks}-week pre window from "
            f"{result.pre_start:%d %b %Y} is not covered. Shorten it (--pre-weeks) or load older data.",
        )
    covered = max(0, min(post_weeks, ((last_day + dt.timedelta(days=1)) - start).days // 7))
    result.post_weeks_covered = covered
    if level in AREA_LEVELS:
        levels = run_query(con, "evaluation_levels")
        names = set(levels.loc[levels["level"] == level, "area_id"].astype(str))
        if area_id not in names:
            raise EvaluationError(f"no {level} {area_id!r} in the incidents of snapshot {result.data_version}")
        if comparison is not None and str(comparison) not in names:
            raise EvaluationError(f"no {level} {comparison!r} in the incidents to compare with")
    place = _Places(con, level, coverage["mean_latitude"])
    if level == "location":
        place.locate([area_id] + ([str(comparison)] if comparison is not None else []))
        if area_id not in place.cells:
            raise EvaluationError(f"no location {area_id!r} in the incidents of snapshot {result.data_version}")
    buffer = place.buffer(area_id)
    result.buffer, result.buffer_description = buffer.areas, buffer.description

    # The comparison: from the pre weeks only.
    query = {
        "level": level,
        "categories": list(categories),
        "start": start,
        "harm_index": harm_index,
        "harm_version": harm_version,
    }
    # Every area's series over the windows (beats and districts: for the in-space placebos too); the choice
    # itself is given the pre weeks only.
    every_area_to = covered if level in AREA_LEVELS else 0
    window_rows = run_query(
        con, "evaluation_weekly_series", {**query, "first_week": -pre_weeks, "last_week": every_area_to, "areas": None}
    )
    pre = _area_weeks(window_rows[window_rows["week"] < 0], range(-pre_weeks, 0))
    if area_id not in pre.index:
        pre.loc[area_id] = 0.0
    excluded = set(treated) | set(buffer.areas if level in AREA_LEVELS else ())
    chosen, ranked = choose_comparison(pre, area_id, excluded)
    chosen = place.first_apart(area_id, ranked) if level == "location" and chosen is not None else chosen
    result.comparison_candidates = len(ranked)
    if comparison is not None:
        chosen = str(comparison)
        if chosen == area_id:
            raise EvaluationError("the comparison area is the target itself")
        result.comparison_named, result.comparison_recorded = not comparison_recorded, bool(comparison_recorded)
        result.comparison_in_buffer_or_treated = chosen in excluded
    if chosen is not None:
        result.comparison_area = chosen
        row = ranked[ranked["area_id"] == chosen]
        result.comparison_distance = float(row["distance"].iloc[0]) if len(row) else None
    if result.comparison_area is None:
        return _stop(
            result,
            "no_comparison",
            f"No untreated {level} outside the target's buffer had any of these offences in the pre window.",
        )
    comparison_buffer = place.buffer(result.comparison_area, avoid={area_id, *buffer.areas})
    result.comparison_buffer = comparison_buffer.areas

    # The weekly series: target and comparison from the longer baseline on, buffers over the windows.
    first_week = -max(pre_weeks, min(RTM_RECENT_WEEKS + RTM_BASELINE_WEEKS, (start - first_day).days // 7))
    last_week = max(covered, 0)
    series = _Series(range(first_week, last_week), categories)
    pair = run_query(
        con,
        "evaluation_weekly_series",
        {**query, "first_week": first_week, "last_week": last_week, "areas": [area_id, result.comparison_area]},
    )
    series.add("target", pair[pair["area_id"] == area_id])
    series.add("comparison", pair[pair["area_id"] == result.comparison_area])
    for group, spec in (("buffer", buffer), ("comparison_buffer", comparison_buffer)):
        place.add_buffer_series(series, group, spec, query, first_week, last_week)
    result.series = _chart_frame(series, start, -pre_weeks)

    # Pre-period checks (known before the post period).
    target_weekly = series.total("target")
    weekly = pd.DataFrame(
        {
            "week": list(series.weeks),
            "target": target_weekly.to_numpy(),
            "comparison": series.total("comparison").to_numpy(),
        }
    )
    in_window = weekly[weekly["week"] >= -pre_weeks]
    result.regression_to_mean = regression_to_mean(target_weekly, first_covered_week=first_week)
    result.pre_trend = pre_trend(in_window)
    t0 = series.window("target", "before", pre=pre_weeks, post=post_weeks)
    c0 = series.window("comparison", "before", pre=pre_weeks, post=post_weeks)
    dispersion = result.pre_trend["dispersion"] if result.pre_trend else 1.0
    result.mde = minimum_detectable_effect(t0, c0, pre_weeks=pre_weeks, post_weeks=post_weeks, dispersion=dispersion)
    groups = [g for g in ("target", "comparison", "buffer", "comparison_buffer") if series.has(g)]
    for group in groups:
        for when in ("before", "after"):
            if when == "after" and covered < post_weeks:
                continue
            result.counts[(group, when)] = series.window(group, when, pre=pre_weeks, post=post_weeks)
            result.harm_totals[(group, when)] = series.window(group, when, "harm", pre=pre_weeks, post=post_weeks)

    if covered < post_weeks:
        result.status = "post_not_covered"
        through = f"{last_day:%d %b %Y}" if last_day else "?"
        result.message = (
            f"The data run to {through}: {_weeks_text(covered)} of the {post_weeks}-week post window are covered. "
            f"The estimate is made once the window ends on {result.post_end:%d %b %Y}; the comparison, chosen from "
            "the pre weeks only, and the pre-period checks stand already."
        )
        result.caveats = _caveats(result)
        return result

    # The estimates.
    scale = post_weeks / pre_weeks
    if level in AREA_LEVELS:
        result.calibration = placebo_calibration(
            _area_weeks(window_rows, range(-pre_weeks, post_weeks)),
            neighbours=place.adjacent,
            exclude={area_id, *buffer.areas, *map(str, treated)},
            pre_weeks=pre_weeks,
        )
    calibration = result.calibration["calibration"] if result.calibration else 1.0
    placebos = result.calibration["placebos"] if result.calibration else None
    result.ratio = did_ratio(in_window, calibration=calibration, calibration_df=placebos)
    harm_weekly = pd.DataFrame(
        {
            "week": list(series.weeks),
            "target": series.total("target", "harm").to_numpy(),
            "comparison": series.total("comparison", "harm").to_numpy(),
        }
    )
    result.harm_ratio = did_ratio(
        harm_weekly[harm_weekly["week"] >= -pre_weeks], calibration=calibration, calibration_df=placebos
    )
    parts = []
    for category in categories:

        def pair_of(group: str, category: str = category):
            return (
                series.by_category(group, category, "before", pre=pre_weeks, post=post_weeks),
                series.by_category(group, category, "after", pre=pre_weeks, post=post_weeks),
            )

        parts.append(
            (
                weights.get(category, 0.0),
                wdd(
                    pair_of("target"),
                    pair_of("comparison"),
                    pair_of("buffer") if series.has("buffer") else None,
                    pair_of("comparison_buffer") if series.has("comparison_buffer") else None,
                    scale=scale,
                ),
            )
        )
    result.wdd = wdd(
        (result.counts[("target", "before")], result.counts[("target", "after")]),
        (result.counts[("comparison", "before")], result.counts[("comparison", "after")]),
        (result.counts[("buffer", "before")], result.counts[("buffer", "after")]) if series.has("buffer") else None,
        (result.counts[("comparison_buffer", "before")], result.counts[("comparison_buffer", "after")])
        if series.has("comparison_buffer")
        else None,
        scale=scale,
    )
    result.harm_wdd = wdd_harm(parts)
    if result.harm_ratio is not None:
        observed = result.harm_totals[("target", "after")]
        h = result.harm_ratio
        result.harm_prevented = observed * (1.0 / h.ratio - 1.0)
        result.harm_prevented_low = observed * (1.0 / h.high - 1.0)
        result.harm_prevented_high = observed * (1.0 / h.low - 1.0)
    if result.ratio is None:
        result.status = "not_estimable"
        result.message = (
            "No ratio: the target or the comparison had no incidents before or after, so the ratio is 0 or "
            "unbounded. The WDD and the counts are shown."
        )
    result.caveats = _caveats(result)
    return result


def _stop(result: Evaluation, status: str, message: str) -> Evaluation:
    result.status, result.message = status, message
    return result


def _area_weeks(rows: pd.DataFrame, weeks: range) -> pd.DataFrame:
    """Query rows -> one row per area, one column per week (counts summed over categories, zeros filled)."""
    if rows.empty:
        return pd.DataFrame(columns=list(weeks), dtype=float)
    table = rows.groupby(["area_id", "week"])["incidents"].sum().unstack()
    table.index = table.index.astype(str)
    return table.reindex(columns=list(weeks)).fillna(0.0).astype(float)


def _chart_frame(series: _Series, start: dt.date, first_week: int) -> pd.DataFrame:
    weeks = [w for w in series.weeks if w >= first_week]
    frame = pd.DataFrame({"week": weeks})
    frame["week_start"] = [start + dt.timedelta(weeks=w) for w in weeks]
    for group in ("target", "comparison", "buffer", "comparison_buffer"):
        if series.has(group):
            frame[group] = series.total(group).reindex(weeks).to_numpy()
    return frame


# ------------------------------------------------------------------------------------------ places and buffers
@dataclasses.dataclass(frozen=True)
class _Buffer:
    areas: tuple[str, ...]  # neighbouring areas, or cells as 'x:y', or the beat
    description: str
    kind: str  # 'areas', 'cells', 'beat', 'none'
    exclude: tuple[str, ...] = ()  # locations whose own incidents are left out


class _Places:
    """Where the target and the candidates are, and what their buffers are, at one level."""

    def __init__(self, con, level: str, latitude):
        self.con, self.level = con, level
        self.grid = grid_for(None if pd.isna(latitude) else float(latitude))
        self.cells: dict[str, tuple[int, int] | None] = {}
        self.beats: dict[str, str | None] = {}
        self.adjacent = neighbours(con, level) if level in AREA_LEVELS else {}

    def locate(self, locations) -> None:
        wanted = [loc for loc in locations if loc not in self.cells]
        if not wanted:
            return
        rows = run_query(self.con, "evaluation_location_cells", {"locations": wanted, **self.grid.params()})
        for row in rows.itertuples():
            has_cell = not pd.isna(row.cell_x)
            self.cells[row.location_text] = (int(row.cell_x), int(row.cell_y)) if has_cell else None
            self.beats[row.location_text] = None if pd.isna(row.beat) else str(row.beat)

    def buffer(self, area: str, avoid=frozenset()) -> _Buffer:
        if self.level in AREA_LEVELS:
            areas = tuple(a for a in self.adjacent.get(area, ()) if a not in avoid and a != area)
            if not areas:
                return _Buffer((), f"no neighbouring {self.level} found", "none")
            return _Buffer(areas, f"the {len(areas)} {self.level}s sharing a boundary: {', '.join(areas)}", "areas")
        self.locate([area])
        cell = self.cells.get(area)
        if cell is not None:
            x, y = cell
            ring = [
                (x + i, y + j) for i in range(-RING_CELLS, RING_CELLS + 1) for j in range(-RING_CELLS, RING_CELLS + 1)
            ]
            metres = int(self.grid.cell_m)
            return _Buffer(
                tuple(f"{cx}:{cy}" for cx, cy in ring),
                f"the {len(ring)} grid cells of {metres} m around the location's cell, its own incidents left out",
                "cells",
                exclude=(area,),
            )
        beat = self.beats.get(area)
        if beat is None or beat in avoid:
            return _Buffer((), "none: the location has no coordinates and no beat", "none")
        return _Buffer(
            (beat,), f"beat {beat}, the location's own incidents left out (it has no coordinates)", "beat", (area,)
        )

    def first_apart(self, target: str, ranked: pd.DataFrame, look_at: int = 40) -> str | None:
        """The best-ranked candidate location whose buffer does not touch the target's."""
        candidates = ranked["area_id"].head(look_at).tolist()
        self.locate([target, *candidates])
        home, home_beat = self.cells.get(target), self.beats.get(target)
        for candidate in candidates:
            cell = self.cells.get(candidate)
            if home is not None and cell is not None:
                if max(abs(cell[0] - home[0]), abs(cell[1] - home[1])) > 2 * RING_CELLS:
                    return candidate
            elif self.beats.get(candidate) != home_beat:
                return candidate
        return None

    def add_buffer_series(self, series: _Series, group: str, spec: _Buffer, query: dict, first: int, last: int) -> None:
        if spec.kind == "none":
            return
        window = {**query, "first_week": first, "last_week": last}
        if spec.kind == "areas":
            rows = run_query(self.con, "evaluation_weekly_series", {**window, "areas": list(spec.areas)})
            series.add(group, rows)
        elif spec.kind == "cells":
            xs, ys = zip(*(tuple(int(v) for v in cell.split(":")) for cell in spec.areas))
            rows = run_query(
                self.con,
                "evaluation_cell_series",
                {
                    **window,
                    "cell_groups": [group] * len(xs),
                    "cell_xs": list(xs),
                    "cell_ys": list(ys),
                    "exclude_locations": list(spec.exclude),
                    **self.grid.params(),
                },
            )
            series.add(group, rows)
        else:  # the location's beat, less the location's own incidents
            beat_rows = run_query(
                self.con, "evaluation_weekly_series", {**window, "level": "beat", "areas": list(spec.areas)}
            )
            own = run_query(self.con, "evaluation_weekly_series", {**window, "areas": list(spec.exclude)})
            series.add(group, beat_rows)
            series.add(group, own, sign=-1.0)


# ------------------------------------------------------------------------------------------ caveats
def _caveats(result: Evaluation) -> tuple[Caveat, ...]:
    found: list[Caveat] = []
    rtm = result.regression_to_mean
    if rtm is not None:
        words = (
            "was at a local peak when tasked, so part of any fall afterwards is regression to the mean"
            if rtm["peak"]
            else "was not at a local peak when tasked"
        )
        found.append(
            Caveat(
                "regression_to_mean",
                rtm["peak"],
                f"Regression to the mean: the target had {rtm['recent']:.0f} incidents in the {rtm['recent_weeks']} "
                f"weeks before the start ({rtm['recent_per_week']:.1f} a week) against {rtm['baseline_per_week']:.1f} a "
                f"week in the {rtm['baseline_weeks']} weeks before those (z = {rtm['z']:+.1f}): it {words}.",
            )
        )
    else:
        found.append(
            Caveat(
                "regression_to_mean",
                True,
                "Regression to the mean cannot be checked: the data do not cover the weeks before the pre window.",
            )
        )
    trend = result.pre_trend
    if trend is not None:
        flagged = abs(trend["z"]) >= TREND_Z
        found.append(
            Caveat(
                "pre_trend",
                flagged,
                f"Pre-trend: over the {trend['weeks']} pre weeks the target's counts moved {trend['over_window']:+.0%} "
                f"relative to the comparison's ({100 * (np.exp(trend['per_week']) - 1):+.1f}% a week, z = {trend['z']:+.1f}); "
                + (
                    "the two were not moving in parallel, so the comparison may not show what the target would have done."
                    if flagged
                    else "parallel within noise."
                ),
            )
        )
    else:
        found.append(Caveat("pre_trend", True, "Pre-trend cannot be checked: too few incidents in the pre weeks."))
    if result.mde is not None:
        flagged = result.mde > MDE_CHANGE
        found.append(
            Caveat(
                "power",
                flagged,
                (
                    f"Too few incidents to detect a {MDE_CHANGE:.0%} change: the smallest reduction this design "
                    f"detects reliably (80% power, 5% two-sided) is {result.mde:.0%}."
                    if flagged
                    else f"Power: a reduction of {result.mde:.0%} or more would be detected reliably (80% power, 5% "
                    f"two-sided); a {MDE_CHANGE:.0%} change is within reach."
                ),
            )
        )
    w = result.wdd
    if w is not None and w.has_buffer:
        z = w.buffer_z
        if np.isfinite(z) and z >= BUFFER_Z:
            text = f"Displacement: the buffer rose by {w.buffer:+.0f} incidents net of its control (z = {z:+.1f})."
        elif np.isfinite(z) and z <= -BUFFER_Z:
            text = f"Diffusion of benefits: the buffer fell by {w.buffer:+.0f} incidents net of its control (z = {z:+.1f})."
        else:
            text = f"No sign of displacement: the buffer changed by {w.buffer:+.0f} incidents net of its control (z = {z:+.1f})."
        found.append(Caveat("displacement", bool(np.isfinite(z) and z >= BUFFER_Z), text))
    elif result.evaluated:
        found.append(Caveat("displacement", True, f"No displacement buffer: {result.buffer_description}."))
    calibration = result.calibration
    if calibration is not None:
        widened = calibration["calibration"] > 1.0
        found.append(
            Caveat(
                "inference",
                False,
                f"Checked against {calibration['placebos']} untreated {result.level}s evaluated as if tasked on the "
                f"same day: their ratio z's spread {calibration['did_z_rms']:.2f} times what the model expects"
                + (
                    f", so the interval is widened {calibration['calibration']:.2f} times."
                    if widened
                    else "; the model's interval stands."
                )
                + f" Their WDD z's spread {calibration['wdd_z_rms']:.2f} times (Poisson assumes 1)"
                + (
                    f": read the WDD z against that (calibrated z = {result.wdd_z_calibrated:+.1f})."
                    if calibration["wdd_z_rms"] > 1.0 and result.wdd is not None
                    else "."
                ),
            )
        )
    elif result.evaluated:
        found.append(
            Caveat(
                "inference",
                True,
                "No in-space placebo check (fewer than 10 untreated areas of this level, or a location): the interval "
                "rests on the weekly quasi-Poisson model alone.",
            )
        )
    if result.comparison_named:
        inside = result.comparison_in_buffer_or_treated
        found.append(
            Caveat(
                "comparison",
                inside,
                f"The comparison {result.comparison_area} was named by the user, not chosen from the pre-period data"
                + (
                    ", and it lies in the target's buffer or was itself tasked for these offences: it is not untreated."
                    if inside
                    else "."
                ),
            )
        )
    return tuple(found)


# ------------------------------------------------------------------------------------------ taskings
def tasking_start(created_at) -> dt.date:
    """A tasking's start: the day it was created (the app state's created_at, UTC)."""
    return pd.Timestamp(str(created_at)[:19]).date()


def treated_areas(
    taskings: pd.DataFrame,
    *,
    level: str,
    categories,
    start: dt.date,
    pre_weeks: int = PRE_WEEKS,
    post_weeks: int = POST_WEEKS,
    exclude_id: int | None = None,
) -> tuple[str, ...]:
    """Areas of ``level`` tasked (not cancelled) for any of ``categories`` with an evaluation window that
    overlaps this one's: they are not untreated, so never a comparison."""
    if taskings is None or taskings.empty:
        return ()
    span = dt.timedelta(weeks=pre_weeks + post_weeks)
    rows = taskings[
        (taskings["status"] != "cancelled")
        & (taskings["area_level"] == level)
        & taskings["offense_category"].isin(list(categories))
    ]
    if exclude_id is not None:
        rows = rows[rows["id"] != exclude_id]
    found = {str(row.area_id) for row in rows.itertuples() if abs(tasking_start(row.created_at) - start) < span}
    return tuple(sorted(found))


def comparison_key(tasking_id, level, area_id, categories, start, pre_weeks) -> str:
    """What a recorded comparison belongs to: the tasking as it was evaluated (an edited tasking, or another
    pre window, chooses again)."""
    return json.dumps([int(tasking_id), level, str(area_id), sorted(categories), str(start), int(pre_weeks)])


def recorded_comparisons(state) -> dict[str, str]:
    """The comparisons recorded in the audit log (action ``evaluation_comparison``), the first per key."""
    rows = state.audit_log(limit=None, action=RECORD_ACTION)
    found: dict[str, str] = {}
    for text in reversed(rows["parameters"].tolist()):  # oldest first
        try:
            values = json.loads(text or "{}")
            key = values["key"]
        except (ValueError, KeyError, TypeError):
            continue
        found.setdefault(key, values.get("comparison_area"))
    return found


def record_comparisons(state, evaluations, *, user: str, role: str | None, recorded: dict | None = None) -> int:
    """Record in the audit log each chosen (not named) comparison not yet recorded, with the pre window it was
    chosen from and the data version, so a later look shows what was chosen before the post period was seen.
    Returns how many were recorded."""
    recorded = recorded_comparisons(state) if recorded is None else recorded
    written = 0
    for evaluation in evaluations:
        if evaluation.tasking_id is None or evaluation.comparison_area is None or evaluation.comparison_named:
            continue
        if evaluation.comparison_recorded or evaluation.status in ("pre_not_covered", "no_weekly_dates"):
            continue
        key = comparison_key(
            evaluation.tasking_id,
            evaluation.level,
            evaluation.area_id,
            evaluation.categories,
            evaluation.start,
            evaluation.pre_weeks,
        )
        if key in recorded:
            continue
        state.record(
            user=user,
            role=role,
            action=RECORD_ACTION,
            page="taskings",
            parameters={
                "key": key,
                "tasking_id": int(evaluation.tasking_id),
                "comparison_area": evaluation.comparison_area,
                "chosen_from": f"{evaluation.pre_start} to {evaluation.start - dt.timedelta(days=1)}",
                "distance": round(float(evaluation.comparison_distance or 0.0), 4),
                "candidates": evaluation.comparison_candidates,
                "post_weeks_seen": evaluation.post_weeks_covered,
            },
            data_version=evaluation.data_version,
        )
        recorded[key] = evaluation.comparison_area
        written += 1
    return written


def tasking_parameters(
    tasking,
    taskings: pd.DataFrame | None = None,
    *,
    recorded: dict | None = None,
    pre_weeks: int = PRE_WEEKS,
    post_weeks: int = POST_WEEKS,
    comparison: str | None = None,
    harm_index: str | None = None,
    harm_version: str | None = None,
    data_through: dt.date | None = None,
) -> dict:
    """The keyword arguments of :func:`evaluate` for one row of ``State.taskings()``: its area and offence,
    its start (the day it was created), the areas other taskings treated, and the comparison recorded for
    it (unless ``comparison`` names one). Hashable values only, so ``page.analysis`` can cache on them."""
    start = tasking_start(tasking["created_at"])
    categories = (str(tasking["offense_category"]),)
    level = str(tasking["area_level"])
    from_record = False
    if comparison is None and recorded:
        comparison = recorded.get(
            comparison_key(tasking["id"], level, tasking["area_id"], categories, start, pre_weeks)
        )
        from_record = comparison is not None
    return {
        "level": level,
        "area_id": str(tasking["area_id"]),
        "categories": categories,
        "start": start,
        "pre_weeks": int(pre_weeks),
        "post_weeks": int(post_weeks),
        "comparison": comparison,
        "treated": treated_areas(
            taskings,
            level=level,
            categories=categories,
            start=start,
            pre_weeks=pre_weeks,
            post_weeks=post_weeks,
            exclude_id=int(tasking["id"]),
        ),
        "harm_index": harm_index,
        "harm_version": harm_version,
        "data_through": data_through,
        "tasking_id": int(tasking["id"]),
        "comparison_recorded": from_record,
    }


def evaluate_taskings(
    analysis,
    taskings: pd.DataFrame,
    rows: pd.DataFrame | None = None,
    *,
    quarter_before: dt.date | None = None,
    **options,
) -> list[Evaluation]:
    """Evaluate ``rows`` (default: the done taskings of ``taskings``) through ``analysis`` (a
    ``SnapshotReader.analysis`` or the page's cached ``PageContext.analysis``); with ``quarter_before``, only
    those whose post window ended in the latest complete quarter before that day (what Outcomes sums). A
    tasking whose area or offence the snapshot does not know comes back as an evaluation saying so, not as
    an error."""
    rows = taskings[taskings["status"] == "done"] if rows is None else rows
    if quarter_before is not None and len(rows):
        first, end = latest_complete_quarter(quarter_before - dt.timedelta(days=1))
        weeks = dt.timedelta(weeks=int(options.get("post_weeks", POST_WEEKS)), days=-1)
        ends = rows["created_at"].map(tasking_start) + weeks
        rows = rows[(ends >= first) & (ends < end)]
    found = []
    for _, tasking in rows.iterrows():
        parameters = tasking_parameters(tasking, taskings, **options)
        try:
            found.append(analysis(evaluate, **parameters))
        except EvaluationError as error:
            found.append(_failed(parameters, str(error)))
    return found


def _failed(parameters: dict, message: str) -> Evaluation:
    return Evaluation(
        level=parameters["level"],
        area_id=parameters["area_id"],
        categories=parameters["categories"],
        start=parameters["start"],
        pre_weeks=parameters["pre_weeks"],
        post_weeks=parameters["post_weeks"],
        status="not_estimable",
        message=message[:1].upper() + message[1:] + ".",
        data_version="?",
        harm_index=parameters.get("harm_index") or "?",
        harm_version=parameters.get("harm_version") or "?",
        data_through=None,
        tasking_id=parameters.get("tasking_id"),
    )


def summary_frame(evaluations: list[Evaluation]) -> pd.DataFrame:
    """One row per evaluation for tables: tasking id, start, comparison, counts, ratio and interval, WDD and
    z, harm prevented and interval, MDE, reading, flagged caveats."""
    records = []
    for e in evaluations:
        r, w = e.ratio, e.wdd
        records.append(
            {
                "tasking_id": e.tasking_id,
                "start": e.start,
                "status": e.status,
                "reading": e.reading,
                "comparison": e.comparison_area,
                "target_before": e.counts.get(("target", "before")),
                "target_after": e.counts.get(("target", "after")),
                "ratio": r.ratio if r else None,
                "ratio_low": r.low if r else None,
                "ratio_high": r.high if r else None,
                "wdd": w.estimate if w else None,
                "wdd_z": w.z if w else None,
                "harm_prevented": e.harm_prevented,
                "harm_prevented_low": e.harm_prevented_low,
                "harm_prevented_high": e.harm_prevented_high,
                "mde": e.mde,
                "flags": "; ".join(_FLAG_WORDS[c.kind] for c in e.caveats if c.flagged and c.kind in _FLAG_WORDS),
                "message": e.message,
                "ratio_text": interval_text(r.ratio, r.low, r.high, ".2f") if r else "",
                "harm_prevented_text": interval_text(
                    e.harm_prevented, e.harm_prevented_low, e.harm_prevented_high, ",.0f"
                ),
            }
        )
    frame = pd.DataFrame.from_records(records, columns=_SUMMARY_COLUMNS)
    numbers = _SUMMARY_COLUMNS[_SUMMARY_COLUMNS.index("target_before") : _SUMMARY_COLUMNS.index("mde") + 1]
    frame[numbers] = frame[numbers].astype(float)  # missing estimates as NaN, shown blank
    return frame


def interval_text(value, low, high, spec: str) -> str:
    """'0.62 (0.43 – 0.89)'; '' without an estimate."""
    if value is None or not np.isfinite(value):
        return ""
    return f"{value:{spec}} ({low:{spec}} – {high:{spec}})"


_SUMMARY_COLUMNS = [
    "tasking_id",
    "start",
    "status",
    "reading",
    "comparison",
    "target_before",
    "target_after",
    "ratio",
    "ratio_low",
    "ratio_high",
    "wdd",
    "wdd_z",
    "harm_prevented",
    "harm_prevented_low",
    "harm_prevented_high",
    "mde",
    "flags",
    "message",
    "ratio_text",
    "harm_prevented_text",
]
_FLAG_WORDS = {
    "regression_to_mean": "tasked at a peak",
    "pre_trend": "trends not parallel before",
    "power": "too few incidents for a 30% change",
    "displacement": "displacement into the buffer",
    "inference": "no placebo check",
}


# ------------------------------------------------------------------------------------------ for city leaders
def latest_complete_quarter(last_day: dt.date) -> tuple[dt.date, dt.date]:
    """(first day, exclusive end) of the latest calendar quarter the data cover to its last day: the quarter
    before the one holding the day after ``last_day``."""
    following = last_day + dt.timedelta(days=1)
    end = dt.date(following.year, 3 * ((following.month - 1) // 3) + 1, 1)
    start = (pd.Timestamp(end) - pd.DateOffset(months=3)).date()
    return start, end


def quarter_label(start: dt.date) -> str:
    """'Q3 2026 (Jul – Sep)'."""
    end = (pd.Timestamp(start) + pd.DateOffset(months=2)).date()
    return f"Q{(start.month - 1) // 3 + 1} {start.year} ({start:%b} – {end:%b})"


@dataclasses.dataclass(frozen=True)
class QuarterSummary:
    """Harm prevented by the taskings whose evaluation window ended in a quarter: the sum of their estimates
    with an approximate 95% interval, and how many showed a measurable reduction."""

    start: dt.date
    end: dt.date  # exclusive
    taskings: int  # done taskings whose post window ended in the quarter
    evaluated: int  # of those, with a ratio
    reductions: int  # of those, with the ratio's whole interval below 1
    harm_prevented: float
    harm_prevented_low: float
    harm_prevented_high: float

    @property
    def label(self) -> str:
        return quarter_label(self.start)

    @property
    def reduction_share(self) -> float | None:
        return self.reductions / self.evaluated if self.evaluated else None


def quarter_summary(evaluations: list[Evaluation], start: dt.date, end: dt.date) -> QuarterSummary:
    """Sum the harm prevented by the evaluations whose post window ended in [start, end). The interval adds
    the taskings' uncertainties as independent normals, each se read from its own interval (half-width /
    1.96): an approximation, since the taskings' intervals are asymmetric."""
    inside = [e for e in evaluations if start <= e.post_end < end]
    done = [e for e in inside if e.evaluated and e.harm_prevented is not None]
    total = float(sum(e.harm_prevented for e in done))
    z = float(stats.norm.ppf(0.5 + LEVEL / 2))
    se = float(np.sqrt(sum(((e.harm_prevented_high - e.harm_prevented_low) / (2 * z)) ** 2 for e in done)))
    return QuarterSummary(
        start=start,
        end=end,
        taskings=len(inside),
        evaluated=len(done),
        reductions=sum(e.reduction for e in done),
        harm_prevented=total,
        harm_prevented_low=total - z * se,
        harm_prevented_high=total + z * se,
    )


def harm_rate_against_last_year(monthly: pd.DataFrame, population: float | None, start: dt.date, end: dt.date) -> dict:
    """Citywide harm per 1,000 residents in the quarter [start, end) and in the same quarter a year earlier,
    each with a 95% interval (harm is a weighted sum of Poisson counts: variance = sum of squared incident
    harms, the ``harm_variance`` column of queries/outcomes_harm_monthly.sql), and the change with its z.
    Without a population the totals are given instead (``per_thousand`` False)."""
    months = monthly.assign(month=pd.to_datetime(monthly["month"]).dt.date)
    z95 = float(stats.norm.ppf(0.5 + LEVEL / 2))
    per = 1000.0 / population if population else 1.0

    def window(first: dt.date, stop: dt.date) -> tuple[float, float, float]:
        rows = months[(months["month"] >= first) & (months["month"] < stop)]
        harm, se = float(rows["harm"].sum()) * per, float(np.sqrt(rows["harm_variance"].sum())) * per
        return harm, harm - z95 * se, harm + z95 * se

    def year_before(day: dt.date) -> dt.date:
        return day.replace(year=day.year - 1)

    now, now_lo, now_hi = window(start, end)
    then, then_lo, then_hi = window(year_before(start), year_before(end))
    se_now, se_then = (now_hi - now) / z95, (then_hi - then) / z95
    change = now - then
    z = change / np.sqrt(se_now**2 + se_then**2) if (se_now + se_then) > 0 else float("nan")
    return {
        "per_thousand": bool(population),
        "value": now,
        "low": now_lo,
        "high": now_hi,
        "last_year": then,
        "last_year_low": then_lo,
        "last_year_high": then_hi,
        "change": change,
        "change_share": change / then if then else float("nan"),
        "z": float(z),
        "within_noise": bool(not np.isfinite(z) or abs(z) < z95),
    }


# ------------------------------------------------------------------------------------------ in words
def target_text(e: Evaluation) -> str:
    """'Residential burglary in beat 4C from 18 May 2026'."""
    where = f"location {e.area_id}" if e.level == "location" else f"{e.level} {e.area_id}"
    return f"{' and '.join(e.category_labels or e.categories)} in {where} from {e.start:%d %b %Y}"


def ratio_sentence(e: Evaluation) -> str:
    """'0.62 (95% interval 0.43 – 0.89): measurable reduction' or the status in words."""
    if e.ratio is None:
        return STATUS_TEXT.get(e.status, e.status)
    return f"{e.ratio.text()}: {e.reading.lower()}"


def harm_sentence(e: Evaluation) -> str:
    if e.harm_prevented is None:
        return "not estimated"
    return (
        f"{e.harm_prevented:,.0f} {e.harm_unit} (95% interval {e.harm_prevented_low:,.0f} – "
        f"{e.harm_prevented_high:,.0f}; negative = harm rose)"
    )


def format_text(e: Evaluation) -> str:
    """The evaluation for a terminal (``ilp evaluate``)."""
    head = f"Tasking {e.tasking_id}: " if e.tasking_id is not None else ""
    lines = [
        f"{head}{target_text(e)}",
        f"  windows: {e.pre_weeks} weeks before, {e.post_weeks} after ({e.pre_start:%d %b %Y} – {e.post_end:%d %b %Y}); "
        f"data to {e.data_through:%d %b %Y} (snapshot {e.data_version}); harm: {e.harm_index.upper()} {e.harm_version}"
        if e.data_through
        else f"  snapshot {e.data_version}",
    ]
    if e.status != "ok":
        lines.append(f"  {STATUS_TEXT.get(e.status, e.status)}: {e.message}")
    if e.comparison_area is not None:
        lines.append(f"  {e.chosen_text()}")
    if e.buffer_description:
        lines.append(f"  Buffer: {e.buffer_description}.")
    if e.counts:
        lines.append(f"  {'incidents':<20}{'before':>8}{'after':>8}")
        for group in ("target", "comparison", "buffer", "comparison_buffer"):
            if (group, "before") in e.counts:
                after = e.counts.get((group, "after"))
                lines.append(
                    f"  {group.replace('_', ' '):<20}{e.counts[(group, 'before')]:>8,.0f}"
                    + (f"{after:>8,.0f}" if after is not None else f"{'—':>8}")
                )
    if e.ratio is not None:
        lines.append(f"  Effect (difference in differences, quasi-Poisson): ratio {ratio_sentence(e)}")
    if e.wdd is not None:
        w = e.wdd
        lines.append(
            f"  WDD: {w.estimate:+,.1f} incidents (SE {w.se:,.1f}, z {w.z:+.2f}); target net of comparison "
            f"{w.target:+,.1f} (z {w.target_z:+.2f}), buffer net of its control {w.buffer:+,.1f} (z {w.buffer_z:+.2f})"
        )
    if e.harm_wdd is not None:
        lines.append(f"  Harm-weighted WDD: {e.harm_wdd.estimate:+,.0f} {e.harm_unit} (z {e.harm_wdd.z:+.2f})")
    if e.harm_prevented is not None:
        lines.append(f"  Harm prevented: {harm_sentence(e)}")
    if e.caveats:
        lines.append("  Caveats (! weakens this evaluation):")
        lines += [f"  {'!' if c.flagged else '-'} {c.text}" for c in e.caveats]
    return "\n".join(lines)


SERIES_LABELS = {
    "target": "Target",
    "comparison": "Comparison",
    "buffer": "Buffer (displacement area)",
    "comparison_buffer": "Comparison's buffer",
}


def chart_series(e: Evaluation, groups=("target", "buffer", "comparison")) -> pd.DataFrame:
    """Long form for a line chart: one row per (week, series) with the week's first day, the series' label
    ('Target', 'Buffer (displacement area)', 'Comparison') and its incidents."""
    frame = e.series
    shown = [g for g in groups if g in frame.columns]
    if frame.empty or not shown:
        return pd.DataFrame(columns=["week_start", "series", "incidents"])
    long = frame.melt(id_vars=["week", "week_start"], value_vars=shown, var_name="group", value_name="incidents")
    long["series"] = long["group"].map(SERIES_LABELS)
    long["week_start"] = pd.to_datetime(long["week_start"])
    return long[["week_start", "series", "incidents"]]


# ------------------------------------------------------------------------------------------ the Outcomes page
def taskings_outcome(
    evaluations: list[Evaluation],
    query,
    *,
    role: str | None,
    month_to: dt.date,
    harm_index: str,
    harm_version: str,
    harm_unit: str,
    harm_unit_short: str,
):
    """The Outcomes page's last measure, for every role: harm prevented by the taskings whose 12-week window
    ended in the latest complete quarter before ``month_to`` (the sum of their estimates, with an interval),
    the share with a measurable reduction, and beside it citywide harm per 1,000 residents against the same
    quarter a year earlier, with intervals. ``query`` runs named queries (``PageContext.query``). Aggregate-only
    roles (city leaders) see the totals; the per-tasking table, which names places, is for the others. No
    arrest is counted anywhere in it."""
    from ilp import access
    from ilp.analytics import outcome_measures as om

    start, end = latest_complete_quarter(month_to - dt.timedelta(days=1))
    summary = quarter_summary(evaluations, start, end)
    last_year = start.replace(year=start.year - 1)
    monthly = query(
        "outcomes_harm_monthly",
        month_from=last_year,
        month_to=end,
        district=None,
        category=None,
        harm_index=harm_index,
        harm_version=harm_version,
    )
    population_row = query("areas_population", district=None).iloc[0]
    population = population_row["population"]
    has_population = bool(
        pd.notna(population) and population > 0 and population_row["districts_without_population"] == 0
    )
    city = harm_rate_against_last_year(monthly, float(population) if has_population else None, start, end)
    view = om.MeasureView(
        key="taskings",
        title=f"Harm prevented by taskings, {summary.label}",
        definition=(
            f"For each done tasking whose {POST_WEEKS} weeks after it ended in the quarter: the harm its area "
            "would have had without it (its offence's trend in an untreated comparison area applied to the "
            "target) minus the harm recorded, in "
            f"{harm_unit}; summed over the taskings. A measurable reduction is a ratio whose whole 95% interval is "
            "below 1. Beside it, all recorded harm citywide against the same quarter a year earlier. No arrest "
            "count is a measure of success here."
        ),
    )
    metrics = []
    if summary.evaluated:
        metrics.append(
            om.MetricView(
                f"Harm prevented by {summary.evaluated} tasking{'s' if summary.evaluated != 1 else ''}",
                f"{summary.harm_prevented:,.0f} {harm_unit_short}",
                help=f"{harm_unit}; negative means harm rose",
            )
        )
        metrics.append(
            om.MetricView(
                "Harm prevented: 95% interval",
                f"{summary.harm_prevented_low:,.0f} to {summary.harm_prevented_high:,.0f}",
                help="The sum is only as sure as this: an interval that includes 0 cannot tell prevention from chance",
            )
        )
        metrics.append(
            om.MetricView(
                "Taskings with a measurable reduction",
                f"{summary.reductions} of {summary.evaluated} ({summary.reduction_share:.0%})",
                help="The ratio's whole 95% interval below 1",
            )
        )
    per = "per 1,000 residents" if city["per_thousand"] else "in total (no population loaded)"
    noise = " (within noise)" if city["within_noise"] else ""
    metrics.append(
        om.MetricView(
            f"Citywide harm {per}, {summary.label}",
            f"{city['value']:,.1f}",
            delta=f"{city['change']:+,.1f} vs {last_year.year}{noise}",
            delta_color="off" if city["within_noise"] else "inverse",
            help=f"{harm_unit}; 95% interval {city['low']:,.1f} – {city['high']:,.1f}; a year earlier "
            f"{city['last_year']:,.1f} ({city['last_year_low']:,.1f} – {city['last_year_high']:,.1f})",
        )
    )
    view.metrics = metrics
    pending = summary.taskings - summary.evaluated
    caption = (
        (
            f"Harm prevented: 95% interval {summary.harm_prevented_low:,.0f} – {summary.harm_prevented_high:,.0f} "
            f"{harm_unit_short} (the taskings' intervals added as independent). "
            if summary.evaluated
            else f"No done tasking's {POST_WEEKS}-week window ended in {summary.label}, so no harm prevented is "
            "estimated for it. "
        )
        + (f"{pending} more could not be estimated (see the Taskings page). " if pending else "")
        + f"Citywide harm {per}: {city['value']:,.1f} (95% interval {city['low']:,.1f} – {city['high']:,.1f}) against "
        f"{city['last_year']:,.1f} ({city['last_year_low']:,.1f} – {city['last_year_high']:,.1f}) a year earlier, "
        f"{city['change_share']:+.0%} (z = {city['z']:+.1f}{', within noise' if city['within_noise'] else ''})."
    )
    view.caption = caption
    view.notice_beside = True
    view.notice = (
        "How each tasking is judged: the comparison area is chosen from the weeks before the tasking only; the "
        "interval is checked against untreated areas evaluated as if tasked the same day. The sum counts only "
        "the taskings' own areas: harm displaced into neighbouring areas is shown per tasking on the Taskings page."
    )
    if not access.Audience(role).aggregate_only and summary.taskings:
        inside = [e for e in evaluations if start <= e.post_end < end]
        frame = summary_frame(inside).assign(
            target=[target_text(e) for e in inside],
            window_end=[f"{e.post_end:%d %b %Y}" for e in inside],
        )
        columns = {
            "tasking_id": om.ColumnView("Tasking", "number", "%d"),
            "target": om.ColumnView("Offence, area, start", "text"),
            "window_end": om.ColumnView("Window ended", "text"),
            "reading": om.ColumnView("Evaluation", "text"),
            "ratio_text": om.ColumnView("Ratio (95% interval)", "text"),
            "harm_prevented_text": om.ColumnView(f"Harm prevented, {harm_unit_short} (95% interval)", "text"),
        }
        view.table = om.TableView(frame, columns, monthly=False)  # the numbers stay in the frame, unshown
    return view


# ------------------------------------------------------------------------------------------ the printed brief
def previous_month(day: dt.date) -> tuple[dt.date, dt.date]:
    """(first day, exclusive end) of the calendar month before the one holding ``day``."""
    end = day.replace(day=1)
    return (pd.Timestamp(end) - pd.DateOffset(months=1)).date(), end


def last_month_taskings(
    analysis,
    taskings: pd.DataFrame,
    *,
    as_of: dt.date,
    harm_index: str | None = None,
    harm_version: str | None = None,
    recorded: dict | None = None,
) -> tuple[dt.date, pd.DataFrame]:
    """ "Last month's taskings: what happened", for the brief as of ``as_of``: every tasking (not cancelled)
    created in the calendar month before ``as_of``'s, with its owner, status and result note and what the
    data to ``as_of`` say so far. Fewer than ``POST_WEEKS`` weeks after it are covered, so the estimate is
    an interim one over the weeks there are (at least ``MIN_WEEKS``; none before), and says so. Returns
    (the month's first day, one row per tasking)."""
    from ilp import taskings as rules
    from ilp.snapshot import area_label

    first, end = previous_month(as_of)
    columns = [
        "id",
        "offense_category",
        "category_label",
        "place",
        "owner",
        "status",
        "status_text",
        "result_note",
        "start",
        "weeks_after",
        "interim",
        "reading",
        "ratio",
        "ratio_low",
        "ratio_high",
        "wdd",
        "wdd_z",
        "harm_prevented",
        "harm_prevented_low",
        "harm_prevented_high",
        "comparison",
        "flags",
        "message",
        "ratio_text",
        "harm_prevented_text",
    ]
    if taskings is None or taskings.empty:
        return first, pd.DataFrame(columns=columns)
    starts = taskings["created_at"].map(tasking_start)
    rows = taskings[(taskings["status"] != "cancelled") & (starts >= first) & (starts < end)]
    records = []
    for _, tasking in rows.iterrows():
        start = tasking_start(tasking["created_at"])
        covered = max(0, ((as_of + dt.timedelta(days=1)) - start).days // 7)
        post = POST_WEEKS if covered >= POST_WEEKS or covered < MIN_WEEKS else covered
        parameters = tasking_parameters(
            tasking,
            taskings,
            recorded=recorded,
            post_weeks=post,
            harm_index=harm_index,
            harm_version=harm_version,
            data_through=as_of,
        )
        try:
            e = analysis(evaluate, **parameters)
        except EvaluationError as error:
            e = _failed(parameters, str(error))
        summary = summary_frame([e]).iloc[0].to_dict()
        interim = e.evaluated and post < POST_WEEKS
        records.append(
            {
                **summary,
                "id": int(tasking["id"]),
                "offense_category": tasking["offense_category"],
                "category_label": (e.category_labels or (tasking["offense_category"],))[0],
                "place": area_label(tasking["area_level"], tasking["area_id"]),
                "owner": tasking["owner"],
                "status": tasking["status"],
                "status_text": rules.status_text(tasking["status"]),
                "result_note": tasking["result_note"],
                "start": start,
                "weeks_after": min(covered, POST_WEEKS),
                "interim": interim,
                "reading": (
                    f"{summary['reading']} (interim, {post} of {POST_WEEKS} weeks)" if interim else summary["reading"]
                )
                if e.evaluated
                else (
                    f"Too early: {_weeks_text(covered)} of data after it; an interim estimate from {MIN_WEEKS} weeks"
                    if covered < MIN_WEEKS
                    else summary["reading"]
                ),
            }
        )
    return first, pd.DataFrame.from_records(records, columns=columns)
