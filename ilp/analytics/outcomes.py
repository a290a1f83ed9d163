"""Outcome metrics: harm reduction instead of arrest counts, each with honest uncertainty.

Every function takes a small frame that a named query returned (``queries/outcomes_*.sql``) and returns one
row per month (or per area and quarter) with the estimate and a 95% interval. No Streamlit here.

Intervals:
* proportions (repeat victimisation, clearance, survey trust): Wilson score interval (Wilson 1927), which
  behaves at small n and near 0 or 1 where the normal ("Wald") interval does not;
* rates of rare events (use of force per 1,000 arrests): exact Poisson interval on the event count
  (Garwood 1936), the denominator taken as fixed;
* harm per 1,000 residents: harm is a weighted sum of Poisson counts, so its variance is the sum of the
  squared weights of the incidents (Ratcliffe 2015, "Towards an index for harm-focused policing", uses the
  same weighted-count logic); normal interval;
* response-time percentiles: distribution-free interval from order statistics (binomial ranks).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))
SETTLE_DAYS = 90  # a violent crime's clearance is not settled until about three months after it
REPEAT_WINDOW_MONTHS = 12


# ------------------------------------------------------------------------------------ reporting window
@dataclasses.dataclass(frozen=True)
class ReportingWindow:
    month_from: dt.date  # first month reported (first of the month)
    month_to: dt.date  # exclusive: first of the month after the last complete month
    data_start: dt.date  # first of the first complete month of data

    @property
    def last_month(self) -> dt.date:
        return add_months(self.month_to, -1)

    def params(self) -> dict:
        return {
            "month_from": self.month_from,
            "month_to": self.month_to,
            "window_from": add_months(self.month_from, -(REPEAT_WINDOW_MONTHS - 1)),
            "repeat_months": REPEAT_WINDOW_MONTHS,
        }


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_start(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, 1)


def reporting_window(
    period_end: dt.date, first_data_day: dt.date, last_data_day: dt.date, months: int = 24
) -> ReportingWindow:
    """The ``months`` complete calendar months ending no later than the period's (exclusive) end and the data.

    A month is complete when the data run through its last day. The window starts no earlier than the
    first complete month of data.
    """
    cutoff = min(period_end, last_data_day + dt.timedelta(days=1))  # exclusive
    month_to = month_start(cutoff)  # months before this are complete
    data_start = first_data_day if first_data_day.day == 1 else add_months(month_start(first_data_day), 1)
    month_from = max(add_months(month_to, -months), data_start)
    if month_from >= month_to:
        month_from = add_months(month_to, -1)
    return ReportingWindow(month_from=month_from, month_to=month_to, data_start=data_start)


def month_range(month_from: dt.date, month_to: dt.date) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(month_from), pd.Timestamp(month_to), freq="MS", inclusive="left")


def _on_months(frame: pd.DataFrame, window: ReportingWindow, fill: dict) -> pd.DataFrame:
    """``frame`` (with a ``month`` column) reindexed onto every month of the window, gaps filled."""
    months = month_range(window.month_from, window.month_to)
    if frame.empty:
        result = pd.DataFrame({"month": months})
        for column, value in fill.items():
            result[column] = value
        return result
    indexed = frame.assign(month=pd.to_datetime(frame["month"])).set_index("month")
    result = indexed.reindex(months).rename_axis("month").reset_index()
    return result.fillna(fill)


# ------------------------------------------------------------------------------------ intervals
def proportion_interval(successes, trials, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for successes out of trials (arrays). NaN where trials == 0."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = float(stats.norm.ppf(0.5 + level / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return lo, hi


def poisson_interval(count, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson mean given observed counts (arrays)."""
    k = np.asarray(count, dtype=float)
    alpha = 1 - level
    lo = np.where(k > 0, stats.chi2.ppf(alpha / 2, 2 * k) / 2, 0.0)
    hi = stats.chi2.ppf(1 - alpha / 2, 2 * (k + 1)) / 2
    return lo, hi


def quantile_interval(values, q: float, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the q-quantile from order statistics.

    Ranks l and u are binomial(n, q) quantiles, so P(x_(l) <= true quantile <= x_(u)) >= level
    (conservative). NaN bounds when n is too small for the level.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return float("nan"), float("nan")
    alpha = 1 - level
    lower_rank = int(stats.binom.ppf(alpha / 2, n, q))  # 1-based rank of the lower bound
    upper_rank = int(stats.binom.ppf(1 - alpha / 2, n, q)) + 1
    lo = x[lower_rank - 1] if lower_rank >= 1 else float("nan")
    hi = x[upper_rank - 1] if upper_rank <= n else float("nan")
    return float(lo), float(hi)


def change_is_noise(
    estimate: float, lo: float, hi: float, earlier: float, earlier_lo: float, earlier_hi: float
) -> bool | None:
    """True when two estimates differ by less than their combined 95% uncertainty (|z| < 1.96).

    Standard errors are read back from the intervals (half-width / 1.96). None when either is missing.
    """
    values = np.array([estimate, lo, hi, earlier, earlier_lo, earlier_hi], dtype=float)
    if not np.isfinite(values).all():
        return None
    se = np.hypot((hi - lo) / (2 * Z95), (earlier_hi - earlier_lo) / (2 * Z95))
    if se == 0:
        return estimate == earlier
    return bool(abs(estimate - earlier) / se < Z95)


# ------------------------------------------------------------------------------------ metrics
def harm_rate(monthly: pd.DataFrame, population: float | None, window: ReportingWindow) -> pd.DataFrame:
    """Harm per 1,000 residents per month, with a 95% interval.

    ``monthly``: month, incidents, harm, harm_variance (sum of squared weights). Without a population the
    rate columns are NaN and only harm totals are meaningful.
    """
    frame = _on_months(monthly, window, {"incidents": 0, "harm": 0.0, "harm_variance": 0.0})
    half = Z95 * np.sqrt(frame["harm_variance"].astype(float))
    frame["harm_lo"] = np.clip(frame["harm"] - half, 0, None)
    frame["harm_hi"] = frame["harm"] + half
    scale = 1000.0 / population if population else np.nan
    frame["rate"] = frame["harm"] * scale
    frame["rate_lo"] = frame["harm_lo"] * scale
    frame["rate_hi"] = frame["harm_hi"] * scale
    return frame


def repeat_victimisation(monthly: pd.DataFrame, window: ReportingWindow) -> pd.DataFrame:
    """Share of victims with 2+ incidents in the trailing ``REPEAT_WINDOW_MONTHS`` months, by month.

    ``monthly`` (``queries/outcomes_repeat_victimisation.sql``, which counts the people in SQL): month,
    victims (people recorded as a victim in at least one incident in the REPEAT_WINDOW_MONTHS months up to
    and including the month), repeat_victims (those of them in two or more). Adds the rate and its Wilson
    interval; ``complete_window`` is False when the window reaches back before the first complete month of
    data.
    """
    months = month_range(window.month_from, window.month_to)
    result = _on_months(monthly[["month", "victims", "repeat_victims"]], window, {"victims": 0, "repeat_victims": 0})
    result[["victims", "repeat_victims"]] = result[["victims", "repeat_victims"]].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        result["rate"] = np.where(result["victims"] > 0, result["repeat_victims"] / result["victims"], np.nan)
    result["rate_lo"], result["rate_hi"] = proportion_interval(result["repeat_victims"], result["victims"])
    first_window_month = [add_months(m.date(), -(REPEAT_WINDOW_MONTHS - 1)) for m in months]
    result["complete_window"] = [start >= window.data_start for start in first_window_month]
    return result


def response_times(calls: pd.DataFrame, window: ReportingWindow) -> pd.DataFrame:
    """Median and 90th percentile response time (minutes) by month, with distribution-free intervals.

    ``calls``: month, response_minutes (NULL when no unit arrived). Calls without an arrival time or with a
    negative time (arrival recorded before the call) are excluded from the percentiles and counted.
    Percentiles use linear interpolation between order statistics (numpy's default).
    """
    frame = calls.assign(
        month=pd.to_datetime(calls["month"]), response_minutes=pd.to_numeric(calls["response_minutes"], errors="coerce")
    )
    rows = []
    for month in month_range(window.month_from, window.month_to):
        minutes = frame.loc[frame["month"] == month, "response_minutes"].to_numpy(dtype=float)
        timed = minutes[np.isfinite(minutes) & (minutes >= 0)]
        row = {
            "month": month,
            "calls": len(minutes),
            "timed": len(timed),
            "no_arrival": int((~np.isfinite(minutes)).sum()),
            "negative": int((minutes < 0).sum()),
        }
        for name, q in (("median", 0.5), ("p90", 0.9)):
            row[name] = float(np.quantile(timed, q)) if len(timed) else float("nan")
            row[f"{name}_lo"], row[f"{name}_hi"] = quantile_interval(timed, q)
        rows.append(row)
    return pd.DataFrame(rows)


def clearance_rate(
    monthly: pd.DataFrame, window: ReportingWindow, last_data_day: dt.date, settle_days: int = SETTLE_DAYS
) -> pd.DataFrame:
    """Share of incidents cleared (``cleared`` of ``incidents``) by month of occurrence, with a Wilson interval.

    ``settled`` is False for months ending fewer than ``settle_days`` before the last day of data: their
    investigations are still running, so their rates will rise.
    """
    frame = _on_months(monthly, window, {"incidents": 0, "cleared": 0})
    frame[["incidents", "cleared"]] = frame[["incidents", "cleared"]].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["rate"] = np.where(frame["incidents"] > 0, frame["cleared"] / frame["incidents"], np.nan)
    frame["rate_lo"], frame["rate_hi"] = proportion_interval(frame["cleared"], frame["incidents"])
    month_end = frame["month"] + pd.offsets.MonthEnd(0)
    frame["settled"] = month_end <= pd.Timestamp(last_data_day) - pd.Timedelta(days=settle_days)
    return frame


def rate_per_thousand(
    monthly: pd.DataFrame, window: ReportingWindow, events: str = "events", base: str = "base"
) -> pd.DataFrame:
    """``events`` per 1,000 ``base`` by month, with an exact Poisson interval on the event count."""
    frame = _on_months(monthly, window, {events: 0, base: 0})
    frame[[events, base]] = frame[[events, base]].astype("int64")
    lo, hi = poisson_interval(frame[events])
    denominator = frame[base].where(frame[base] > 0)
    frame["rate"] = 1000.0 * frame[events] / denominator
    frame["rate_lo"] = 1000.0 * lo / denominator
    frame["rate_hi"] = 1000.0 * hi / denominator
    return frame


def survey_share(survey: pd.DataFrame) -> pd.DataFrame:
    """Survey shares (``value`` of ``respondents``) with a Wilson 95% interval, and a respondent-weighted
    citywide row per period (area_id None) when several areas are given.

    ``survey``: area_id, name, period_start, period_label, value (0..1), respondents.
    """
    frame = survey.copy()
    frame["agreeing"] = frame["value"].astype(float) * frame["respondents"].astype(float)
    if frame["area_id"].nunique() > 1:
        pooled = frame.groupby(["period_start", "period_label"], as_index=False).agg(
            agreeing=("agreeing", "sum"), respondents=("respondents", "sum")
        )
        pooled["value"] = pooled["agreeing"] / pooled["respondents"]
        pooled["area_id"] = None
        pooled["name"] = "All districts"
        frame = pd.concat([frame, pooled], ignore_index=True)
    frame["lo"], frame["hi"] = proportion_interval(frame["agreeing"], frame["respondents"])
    return frame.sort_values(["period_start", "area_id"], na_position="last", ignore_index=True)


def latest_and_year_earlier(shares: pd.DataFrame) -> pd.DataFrame:
    """Per area: the latest period's share and interval, the same quarter a year earlier, and whether the
    change is within noise."""
    frame = shares.assign(period_start=pd.to_datetime(shares["period_start"]))
    latest = frame.loc[frame.groupby(frame["area_id"].fillna("__all__"))["period_start"].idxmax()]
    earlier = frame.assign(period_start=frame["period_start"] + pd.DateOffset(years=1))
    merged = latest.merge(
        earlier[["area_id", "period_start", "value", "lo", "hi", "respondents"]],
        on=["area_id", "period_start"],
        how="left",
        suffixes=("", "_year_earlier"),
    )
    merged["change"] = merged["value"] - merged["value_year_earlier"]
    merged["change_is_noise"] = [
        change_is_noise(*values)
        for values in zip(
            merged["value"],
            merged["lo"],
            merged["hi"],
            merged["value_year_earlier"],
            merged["lo_year_earlier"],
            merged["hi_year_earlier"],
        )
    ]
    return merged.sort_values("area_id", na_position="last", ignore_index=True)


# ------------------------------------------------------------------------------------ headline figures
@dataclasses.dataclass(frozen=True)
class Headline:
    """The current value of a metric, its interval, and the same month (or quarter) a year earlier."""

    period: pd.Timestamp | None
    value: float
    lo: float
    hi: float
    earlier_period: pd.Timestamp | None
    earlier: float
    earlier_lo: float
    earlier_hi: float

    @property
    def available(self) -> bool:
        return self.period is not None and np.isfinite(self.value)

    @property
    def change(self) -> float:
        return self.value - self.earlier

    @property
    def within_noise(self) -> bool | None:
        return change_is_noise(self.value, self.lo, self.hi, self.earlier, self.earlier_lo, self.earlier_hi)


def headline(
    frame: pd.DataFrame,
    value: str = "rate",
    lo: str = "rate_lo",
    hi: str = "rate_hi",
    period: str = "month",
    usable: pd.Series | None = None,
) -> Headline:
    """The latest usable row's value and interval, and the row one year before it (if present)."""
    rows = frame if usable is None else frame[usable.to_numpy(dtype=bool)]
    rows = rows[np.isfinite(rows[value].to_numpy(dtype=float))]
    if rows.empty:
        nan = float("nan")
        return Headline(None, nan, nan, nan, None, nan, nan, nan)
    latest = rows.iloc[-1]
    when = pd.Timestamp(latest[period])
    year_before = when - pd.DateOffset(years=1)
    earlier_rows = frame[pd.to_datetime(frame[period]) == year_before]
    nan = float("nan")
    if len(earlier_rows):
        earlier = earlier_rows.iloc[0]
        earlier_values = (float(earlier[value]), float(earlier[lo]), float(earlier[hi]))
    else:
        earlier_values = (nan, nan, nan)
    return Headline(
        when,
        float(latest[value]),
        float(latest[lo]),
        float(latest[hi]),
        year_before if len(earlier_rows) else None,
        *earlier_values,
    )


def pooled_rate(
    frame: pd.DataFrame, events: str, base: str, last_months: int = 12, usable: pd.Series | None = None
) -> dict:
    """``events`` per 1,000 ``base`` pooled over the last ``last_months`` rows, with an exact Poisson
    interval: steadier than one month when events are few."""
    rows = frame if usable is None else frame[usable.to_numpy(dtype=bool)]
    rows = rows.tail(last_months)
    total_events = int(rows[events].sum())
    total_base = int(rows[base].sum())
    lo, hi = poisson_interval([total_events])
    scale = 1000.0 / total_base if total_base else float("nan")
    return {
        "months": len(rows),
        "events": total_events,
        "base": total_base,
        "rate": total_events * scale,
        "lo": float(lo[0]) * scale,
        "hi": float(hi[0]) * scale,
    }
