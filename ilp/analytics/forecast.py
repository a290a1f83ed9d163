"""Weekly forecasts with prediction intervals, and the rolling-origin backtest that measures them.

The model
---------
A quasi-Poisson generalised linear model of the weekly value y_t (an incident count, or a harm total)::

    log E[y_t] = b0 + b1 * years_t + sum_{k=1..K} (a_k sin(2 pi k d_t / 365.2425) + c_k cos(2 pi k d_t / 365.2425))
    Var[y_t]   = phi * E[y_t]

fitted by IRLS (statsmodels ``GLM``, Poisson family, ``scale="X2"``) on at most the last 156 weeks, where
``years_t`` is the time in years from the forecast origin (a linear trend on the log scale) and ``d_t`` the
day number of week t's Monday (annual Fourier terms, K = 3 with two or more years of history).

Why this model rather than SARIMAX, ETS or an unobserved-components model:

* Weekly crime figures are counts: the variance grows with the mean and small areas have zero weeks. A
  log-link count model handles both; Gaussian models on raw counts give negative lower limits for small
  series, and models on log counts cannot take a zero week.
* Harm is a compound Poisson sum, H = sum_c w_c N_c, whose variance sum_c w_c^2 lambda_c is proportional
  to its mean with factor phi = sum w^2 lambda / sum w lambda (hundreds of days for the CCHI, because a
  homicide weighs 5475). That is exactly the quasi-Poisson assumption, so one model serves counts
  (phi near 1, or the measured over-dispersion) and harm (phi estimated from the Pearson residuals).
* A year at weekly resolution is 52.18 weeks. Seasonal ARIMA and ETS need an integer period (52, which
  drifts a day and a quarter a year) and estimate 52 seasonal states from two or three cycles; three
  Fourier harmonics need six parameters and follow the calendar exactly.
* Speed: an IRLS fit on 156 rows takes milliseconds, so the backtest can refit at every origin and the
  whole report (forecast + 13-origin backtest) stays well under half a second per series. A state-space
  maximum-likelihood fit is 10-100 times slower.

Prediction intervals combine the observation noise with the uncertainty of the fitted mean (delta
method on the log scale): V = phi * mu + mu^2 * Var(x' b_hat). Quantiles come from a negative binomial
with mean mu and variance V (counts), or phi times a negative binomial with mean mu/phi and variance
V/phi^2 (harm), so limits are never negative, are skewed the way small counts are, and a week with no
harm stays possible for rare, heavy offences.

The model's claim to be useful is measured, not assumed: :func:`backtest` refits at each of the last
weeks' origins, forecasts 8 weeks ahead, and counts how often the 80% and 95% intervals contained the
week that happened, beside the error of two naive forecasts (same week last year, mean of the last 4
weeks). Nothing here imports Streamlit; results are cached with ``functools.lru_cache`` keyed on the
series values and the parameters (the series already reflects the data version).
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

HORIZON = 8
LEVELS = (0.80, 0.95)
TRAIN_WEEKS = 156  # at most three years of history per fit
MIN_TRAIN_WEEKS = 26  # fewer than this: no forecast
BACKTEST_WEEKS = 26  # target weeks scored in the rolling-origin backtest (half a year)
DAYS_PER_YEAR = 365.2425
_EPOCH = np.datetime64("1970-01-05", "D")  # a Monday: day numbers for the Fourier terms
KINDS = ("count", "harm")


@dataclass(frozen=True)
class ModelSpec:
    """What was fitted: reported beside every forecast so a number can say which model produced it."""

    harmonics: int
    trend: bool
    train_weeks: int
    dispersion: float
    name: str = "quasi-Poisson GLM, linear trend + annual Fourier terms"

    def describe(self) -> str:
        season = (
            f"{self.harmonics} annual harmonic{'s' if self.harmonics != 1 else ''}"
            if self.harmonics
            else "no seasonality"
        )
        trend = "linear trend" if self.trend else "no trend"
        return (
            f"{self.name.split(',')[0]} ({trend}, {season}) on {self.train_weeks} weeks; "
            f"dispersion phi = {self.dispersion:,.1f}"
        )


@dataclass
class ForecastReport:
    """Everything the trends page draws: history, forecast, backtest rows and their summary."""

    history: pd.DataFrame  # week, value
    forecast: pd.DataFrame  # week, horizon, mean, lower_80, upper_80, lower_95, upper_95, same_week_last_year
    backtest: pd.DataFrame  # see backtest()
    summary: dict  # see summarise_backtest()
    spec: ModelSpec | None
    seconds: float  # wall time of the fit + backtest (uncached)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ design
def _day_numbers(weeks) -> np.ndarray:
    return (np.asarray(weeks, dtype="datetime64[D]") - _EPOCH).astype(float)


def choose_harmonics(n_weeks: int) -> int:
    """Annual harmonics the history can support: seasonality needs at least a year, three need two."""
    if n_weeks >= 104:
        return 3
    if n_weeks >= 78:
        return 2
    if n_weeks >= 52:
        return 1
    return 0


def choose_terms(n_weeks: int, nonzero_weeks: int) -> tuple[int, bool]:
    """(harmonics, trend) for a history of ``n_weeks`` of which ``nonzero_weeks`` had any event.

    A sparse series (an event in fewer than 52 of the weeks: homicide in one district, say) cannot
    support a season or a trend; it gets a constant rate, whose interval is then mostly noise -- which
    is the honest answer.
    """
    if nonzero_weeks < 52:
        return 0, False
    return choose_harmonics(n_weeks), True


def design_matrix(weeks, origin, harmonics: int, trend: bool) -> np.ndarray:
    """Intercept, trend (years from ``origin``) and annual sine/cosine pairs for each week's Monday."""
    days = _day_numbers(weeks)
    columns = [np.ones_like(days)]
    if trend:
        columns.append((days - _day_numbers([origin])[0]) / DAYS_PER_YEAR)
    for k in range(1, harmonics + 1):
        angle = 2 * np.pi * k * days / DAYS_PER_YEAR
        columns += [np.sin(angle), np.cos(angle)]
    return np.column_stack(columns)


# ------------------------------------------------------------------------------------------ fit + predict
def _fit_predict(
    weeks: np.ndarray, values: np.ndarray, horizon: int, kind: str, levels=LEVELS
) -> tuple[pd.DataFrame, ModelSpec]:
    """Fit on (weeks, values) and forecast the next ``horizon`` weeks with intervals at ``levels``."""
    weeks = np.asarray(weeks, dtype="datetime64[D]")
    future = weeks[-1] + np.arange(1, horizon + 1) * np.timedelta64(7, "D")
    mean, limits, spec = _fit_predict_arrays(weeks, values, horizon, kind, levels)
    frame = pd.DataFrame({"week": pd.to_datetime(future), "horizon": np.arange(1, horizon + 1), "mean": mean})
    for level in levels:
        frame[_col("lower", level)], frame[_col("upper", level)] = limits[level]
    return frame, spec


def _fit_predict_arrays(weeks: np.ndarray, values: np.ndarray, horizon: int, kind: str, levels=LEVELS):
    """The fit itself, on numpy arrays (the backtest calls it once per origin, so no DataFrames here)."""
    weeks = np.asarray(weeks, dtype="datetime64[D]")[-TRAIN_WEEKS:]
    values = np.asarray(values, dtype=float)[-TRAIN_WEEKS:]
    n = len(values)
    if n < MIN_TRAIN_WEEKS or not np.isfinite(values).all():
        raise ValueError(f"need at least {MIN_TRAIN_WEEKS} complete weeks of history to forecast (have {n})")
    if values.sum() <= 0:
        zeros = np.zeros(horizon)
        return zeros, {level: (zeros, zeros) for level in levels}, ModelSpec(0, False, n, 1.0)

    future = weeks[-1] + np.arange(1, horizon + 1) * np.timedelta64(7, "D")
    harmonics, trend = choose_terms(n, int(np.count_nonzero(values)))
    X = design_matrix(weeks, weeks[-1], harmonics, trend)
    Xf = design_matrix(future, weeks[-1], harmonics, trend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-integer harm totals and near-separation are expected here
        result = sm.GLM(values, X, family=sm.families.Poisson()).fit(scale="X2")
    phi = max(float(result.scale), 1.0)  # never claim less noise than Poisson
    # cov_params() is already scaled by the estimated phi; rescale if the floor lifted it.
    covariance = np.asarray(result.cov_params()) * (phi / max(float(result.scale), 1e-12))
    eta = Xf @ np.asarray(result.params)
    eta_variance = np.einsum("ij,jk,ik->i", Xf, covariance, Xf)
    mean = np.exp(eta)
    variance = phi * mean + mean**2 * eta_variance
    limits = {level: predictive_interval(mean, variance, level, kind, phi) for level in levels}
    return mean, limits, ModelSpec(harmonics=harmonics, trend=trend, train_weeks=n, dispersion=phi)


def predictive_interval(
    mean, variance, level: float, kind: str, dispersion: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` interval of a distribution with this mean and variance.

    Counts: negative binomial (Poisson when the variance does not exceed the mean), so limits are whole
    numbers. Harm: ``dispersion`` (phi) times a negative binomial count with mean mu / phi and variance
    V / phi^2 -- the scaled count that the quasi-Poisson model describes. Like real harm it has a point
    mass at zero (a week without a homicide has no homicide harm) and steps of about one typical weight,
    which a continuous distribution gets wrong for rare, heavy offences. Harm limits are widened by half
    a step (phi / 2) each side, a continuity correction for weights that are not multiples of phi.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    scale = float(dispersion) if kind == "harm" else 1.0
    if not scale > 0:
        raise ValueError("dispersion must be positive")
    mean = np.asarray(mean, dtype=float) / scale
    variance = np.maximum(np.asarray(variance, dtype=float) / scale**2, mean)
    tail = (1 - level) / 2
    quantiles = np.array([tail, 1 - tail])[:, None]
    positive = mean > 0
    safe_mean = np.where(positive, mean, 1.0)
    excess = np.where(positive, variance, 1.0) - safe_mean
    overdispersed = excess > 1e-9 * safe_mean
    size = np.where(overdispersed, safe_mean**2 / np.where(overdispersed, excess, 1.0), 1.0)
    negative_binomial = stats.nbinom.ppf(quantiles, size, size / (size + safe_mean))
    poisson = stats.poisson.ppf(quantiles, safe_mean)
    counts = np.where(overdispersed, negative_binomial, poisson)
    if kind == "harm":
        # Real harm moves in steps of the offences' own weights, not of phi: widen by half a step each
        # side (a continuity correction) so that, e.g., one burglary (273.5 days) is not missed for
        # falling between grid points 0 and phi = 319.
        counts = np.maximum(counts + np.array([-0.5, 0.5])[:, None], 0.0)
    limits = np.where(positive, counts, 0.0) * scale
    return limits[0], limits[1]


def _col(side: str, level: float) -> str:
    return f"{side}_{round(level * 100)}"


# ------------------------------------------------------------------------------------------ public API
def forecast(series: pd.Series, kind: str = "count", horizon: int = HORIZON) -> pd.DataFrame:
    """Forecast the ``horizon`` weeks after a weekly series (index: Mondays, consecutive).

    Returns one row per future week: ``week, horizon, mean, lower_80, upper_80, lower_95, upper_95``.
    """
    weeks, values = _as_arrays(series)
    frame, _ = _cached_fit(weeks, values, horizon, kind)
    return frame.copy()


def backtest(
    series: pd.Series, kind: str = "count", horizon: int = HORIZON, weeks: int = BACKTEST_WEEKS
) -> pd.DataFrame:
    """Rolling-origin backtest: each of the last ``weeks`` weeks forecast ``horizon`` weeks ahead.

    For target week j the model is refitted on the weeks up to j - horizon (never seeing the 8 weeks
    before the target) and its ``horizon``-step forecast is compared with what happened. Two naive
    forecasts made at the same origin are scored beside it: the same week 52 weeks before the target,
    and the mean of the 4 weeks ending at the origin. One row per target week: ``week, actual,
    forecast, lower_80, upper_80, lower_95, upper_95, in_80, in_95, naive_last_year, naive_last_4_weeks``.
    Targets whose origin has fewer than 52 weeks of history are skipped.
    """
    week_array, values = _as_arrays(series)
    return _cached_backtest(week_array, values, kind, horizon, weeks).copy()


def backtest_rows(weeks: np.ndarray, values: np.ndarray, kind: str, horizon: int, n_targets: int) -> pd.DataFrame:
    """The rows of :func:`backtest` (arrays in, DataFrame out)."""
    weeks = np.asarray(weeks, dtype="datetime64[D]")
    values = np.asarray(values, dtype=float)
    rows = []
    for target in range(max(len(values) - n_targets, 0), len(values)):
        origin = target - horizon  # the last week the model may see
        if origin + 1 < 52:
            continue
        mean, limits, _ = _fit_predict_arrays(weeks[: origin + 1], values[: origin + 1], horizon, kind)
        row = [weeks[target], values[target], mean[horizon - 1]]
        for level in LEVELS:
            row += [limits[level][0][horizon - 1], limits[level][1][horizon - 1]]
        row += [values[target - 52] if target >= 52 else np.nan, values[origin - 3 : origin + 1].mean()]
        rows.append(row)
    frame = pd.DataFrame(
        rows,
        columns=[
            "week",
            "actual",
            "forecast",
            "lower_80",
            "upper_80",
            "lower_95",
            "upper_95",
            "naive_last_year",
            "naive_last_4_weeks",
        ],
    )
    frame["week"] = pd.to_datetime(frame["week"])
    return add_coverage(frame)


def add_coverage(frame: pd.DataFrame) -> pd.DataFrame:
    """``in_80`` / ``in_95``: whether each actual lay inside its interval (limits inclusive)."""
    frame = frame.copy()
    for level in LEVELS:
        lower, upper = frame[_col("lower", level)], frame[_col("upper", level)]
        frame[f"in_{round(level * 100)}"] = (frame["actual"] >= lower) & (frame["actual"] <= upper)
    return frame


def summarise_backtest(frame: pd.DataFrame) -> dict:
    """Measured accuracy of the backtest rows.

    ``weeks``: targets scored; ``covered_80`` / ``covered_95``: how many actuals fell inside the interval;
    ``coverage_80`` / ``coverage_95`` the same as shares; ``mae`` the model's mean absolute error;
    ``mae_naive_last_year`` and ``mae_naive_last_4_weeks`` the naive forecasts' (on the weeks where they
    exist); ``relative_mae``: the model's MAE over the mean actual (a percentage-error measure that does
    not explode on zero weeks); ``skill_vs_best_naive``: 1 - model MAE / best naive MAE (positive = the
    model earns its place).
    """
    n = len(frame)
    if n == 0:
        return {"weeks": 0}
    error = (frame["forecast"] - frame["actual"]).abs()
    summary = {
        "weeks": n,
        "covered_80": int(frame["in_80"].sum()),
        "covered_95": int(frame["in_95"].sum()),
        "coverage_80": float(frame["in_80"].mean()),
        "coverage_95": float(frame["in_95"].mean()),
        "mae": float(error.mean()),
        "mean_actual": float(frame["actual"].mean()),
    }
    summary["relative_mae"] = summary["mae"] / summary["mean_actual"] if summary["mean_actual"] > 0 else float("nan")
    for naive in ("naive_last_year", "naive_last_4_weeks"):
        valid = frame[naive].notna()
        summary[f"mae_{naive}"] = (
            float((frame.loc[valid, naive] - frame.loc[valid, "actual"]).abs().mean()) if valid.any() else float("nan")
        )
    naive_maes = [summary[k] for k in ("mae_naive_last_year", "mae_naive_last_4_weeks") if np.isfinite(summary[k])]
    best = min(naive_maes) if naive_maes else float("nan")
    summary["best_naive_mae"] = best
    summary["skill_vs_best_naive"] = 1 - summary["mae"] / best if np.isfinite(best) and best > 0 else float("nan")
    return summary


def verdict(summary: dict, unit: str) -> str:
    """One sentence a commander can act on: does the model beat the naive forecasts on the backtest?"""
    if not summary.get("weeks"):
        return "Not enough history to backtest the forecast (needs a year before the first scored week)."
    n = summary["weeks"]
    model = f"{summary['mae']:,.0f} {unit}"
    naives = []
    if np.isfinite(summary["mae_naive_last_year"]):
        naives.append(f"{summary['mae_naive_last_year']:,.0f} for 'same week last year'")
    if np.isfinite(summary["mae_naive_last_4_weeks"]):
        naives.append(f"{summary['mae_naive_last_4_weeks']:,.0f} for 'mean of the last 4 weeks'")
    comparison = f"Typical 8-week-ahead error {model} a week, against " + " and ".join(naives) + "."
    skill = summary["skill_vs_best_naive"]
    if not np.isfinite(skill):
        return comparison
    if skill > 0.05:
        judgement = f"The model beats the better naive forecast by {skill:.0%} on these {n} weeks."
    elif skill >= -0.05:
        judgement = (
            f"On these {n} weeks the model is no better than the better naive forecast: "
            "use it for its intervals, not its point forecast."
        )
    else:
        judgement = (
            f"On these {n} weeks the model does worse than a naive forecast ({-skill:.0%} larger "
            "error): do not rely on its point forecast."
        )
    return f"{comparison} {judgement}"


def forecast_report(
    series: pd.Series, kind: str = "count", horizon: int = HORIZON, backtest_weeks: int = BACKTEST_WEEKS
) -> ForecastReport:
    """History, forecast (with last year's same weeks beside it), backtest and its summary in one call.

    Cached on the series' weeks and values and the parameters; ``seconds`` is the uncached compute time.
    """
    weeks, values = _as_arrays(series)
    report = _cached_report(weeks, values, kind, horizon, backtest_weeks)
    return ForecastReport(
        history=report.history.copy(),
        forecast=report.forecast.copy(),
        backtest=report.backtest.copy(),
        summary=dict(report.summary),
        spec=report.spec,
        seconds=report.seconds,
        notes=list(report.notes),
    )


# ------------------------------------------------------------------------------------------ caching
def _as_arrays(series: pd.Series) -> tuple[tuple, tuple]:
    if not isinstance(series, pd.Series):
        raise TypeError("series must be a pandas Series indexed by week (Monday)")
    series = series.sort_index()
    weeks = pd.to_datetime(series.index).values.astype("datetime64[D]")
    if len(weeks) > 1 and not (np.diff(weeks) == np.timedelta64(7, "D")).all():
        raise ValueError("series must have one value for every consecutive week (fill missing weeks with 0)")
    return tuple(weeks.astype("int64").tolist()), tuple(series.astype(float).tolist())


def _unpack(weeks: tuple, values: tuple) -> tuple[np.ndarray, np.ndarray]:
    return np.array(weeks, dtype="int64").astype("datetime64[D]"), np.array(values, dtype=float)


@functools.lru_cache(maxsize=256)
def _cached_fit(weeks: tuple, values: tuple, horizon: int, kind: str):
    return _fit_predict(*_unpack(weeks, values), horizon, kind)


@functools.lru_cache(maxsize=256)
def _cached_backtest(weeks: tuple, values: tuple, kind: str, horizon: int, n_targets: int) -> pd.DataFrame:
    return backtest_rows(*_unpack(weeks, values), kind, horizon, n_targets)


@functools.lru_cache(maxsize=128)
def _cached_report(weeks: tuple, values: tuple, kind: str, horizon: int, backtest_weeks: int) -> ForecastReport:
    started = time.perf_counter()
    week_array, value_array = _unpack(weeks, values)
    history = pd.DataFrame({"week": pd.to_datetime(week_array), "value": value_array})
    notes: list[str] = []
    try:
        frame, spec = _fit_predict(week_array, value_array, horizon, kind)
    except ValueError as error:
        empty = pd.DataFrame(
            columns=["week", "horizon", "mean", "lower_80", "upper_80", "lower_95", "upper_95", "same_week_last_year"]
        )
        return ForecastReport(
            history, empty, pd.DataFrame(), {"weeks": 0}, None, time.perf_counter() - started, [str(error)]
        )
    lookup = dict(zip(week_array.tolist(), value_array.tolist()))
    last_year = (frame["week"].values.astype("datetime64[D]") - np.timedelta64(364, "D")).tolist()
    frame["same_week_last_year"] = [lookup.get(day, np.nan) for day in last_year]
    rows = backtest_rows(week_array, value_array, kind, horizon, backtest_weeks)
    summary = summarise_backtest(rows)
    if summary["weeks"] < backtest_weeks:
        notes.append(
            f"Backtest scored {summary['weeks']} of {backtest_weeks} weeks: each needs a year of history "
            "before its forecast origin."
        )
    if spec.harmonics < 3:
        notes.append(
            "Less than two years of history: the annual seasonal pattern is estimated coarsely "
            f"({spec.harmonics} harmonic{'s' if spec.harmonics != 1 else ''})."
        )
    return ForecastReport(history, frame, rows, summary, spec, time.perf_counter() - started, notes)


# ------------------------------------------------------------------------------------------ display tables
def _interval_text(lower, upper) -> list[str]:
    return [f"{lo:,.0f} – {hi:,.0f}" for lo, hi in zip(lower, upper)]


def interval_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A forecast as a display table: week, mean, '80% interval' and '95% interval' as 'a – b' text,
    and the same week last year."""
    return pd.DataFrame(
        {
            "week": pd.to_datetime(frame["week"]).dt.date,
            "mean": frame["mean"].round(0),
            "interval_80": _interval_text(frame["lower_80"], frame["upper_80"]),
            "interval_95": _interval_text(frame["lower_95"], frame["upper_95"]),
            "same_week_last_year": frame.get("same_week_last_year", pd.Series(np.nan, index=frame.index)).round(0),
        }
    )


def backtest_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Backtest rows as a display table (intervals as 'a – b' text beside whether the actual fell inside)."""
    return pd.DataFrame(
        {
            "week": pd.to_datetime(frame["week"]).dt.date,
            "actual": frame["actual"].round(0),
            "forecast": frame["forecast"].round(0),
            "interval_80": _interval_text(frame["lower_80"], frame["upper_80"]),
            "in_80": frame["in_80"].astype(bool),
            "interval_95": _interval_text(frame["lower_95"], frame["upper_95"]),
            "in_95": frame["in_95"].astype(bool),
            "naive_last_year": frame["naive_last_year"].round(0),
            "naive_last_4_weeks": frame["naive_last_4_weeks"].round(0),
        }
    )
