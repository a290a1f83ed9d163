"""ilp.analytics.forecast: the weekly forecast, its intervals and the backtest that measures them.

Synthetic series with a known mean (seasonal Poisson counts, compound-Poisson harm) stand in for data,
so "right" is known exactly: the forecast must recover the mean, the intervals must nest and contain
about their nominal share of new weeks, and the backtest's coverage and error must be the numbers a
hand count gives.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from ilp.analytics import forecast

START = pd.Timestamp("2022-01-03")  # a Monday


def weeks(n: int, start: pd.Timestamp = START) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="7D")


def seasonal_mean(index: pd.DatetimeIndex, level: float = 40.0, trend_per_year: float = 0.05) -> np.ndarray:
    """A weekly crime rate with an annual cycle (summer peak, ±25%) and a gentle upward trend."""
    days = (index - START).days.to_numpy(dtype=float)
    years = days / 365.2425
    return level * np.exp(
        0.25 * np.sin(2 * np.pi * years - 1.2) + 0.08 * np.cos(4 * np.pi * years) + np.log1p(trend_per_year) * years
    )


def poisson_series(n: int, seed: int, level: float = 40.0) -> tuple[pd.Series, pd.DatetimeIndex]:
    rng = np.random.default_rng(seed)
    index = weeks(n)
    return pd.Series(rng.poisson(seasonal_mean(index, level)), index=index, dtype=float), index


# ---------------------------------------------------------------------------------------- the mean
def test_forecast_recovers_a_known_seasonal_poisson_mean():
    history, _ = poisson_series(156, seed=11, level=60.0)
    future = weeks(8, START + pd.Timedelta(weeks=156))
    truth = seasonal_mean(future, 60.0)

    result = forecast.forecast(history, kind="count")

    assert list(result["week"]) == list(future)
    assert list(result["horizon"]) == list(range(1, 9))
    relative_error = np.abs(result["mean"].to_numpy() / truth - 1)
    assert relative_error.max() < 0.10, relative_error
    assert relative_error.mean() < 0.06, relative_error


def test_forecast_follows_the_season_not_just_the_level():
    """Forecasts from a summer origin and a winter origin differ the way the true mean does."""
    history, _ = poisson_series(200, seed=3, level=80.0)
    summer_origin = history.iloc[:130]  # ends in late June
    winter_origin = history.iloc[:156]  # ends at the turn of the year
    summer = forecast.forecast(summer_origin)["mean"].mean()
    winter = forecast.forecast(winter_origin)["mean"].mean()
    truth_summer = seasonal_mean(weeks(8, summer_origin.index[-1] + pd.Timedelta(weeks=1)), 80.0).mean()
    truth_winter = seasonal_mean(weeks(8, winter_origin.index[-1] + pd.Timedelta(weeks=1)), 80.0).mean()
    assert np.sign(summer - winter) == np.sign(truth_summer - truth_winter)
    assert summer == pytest.approx(truth_summer, rel=0.10)
    assert winter == pytest.approx(truth_winter, rel=0.10)


# ---------------------------------------------------------------------------------------- intervals
@pytest.mark.parametrize("kind", ["count", "harm"])
def test_intervals_nest_and_the_95_is_wider_than_the_80(kind):
    history, _ = poisson_series(156, seed=5, level=25.0)
    if kind == "harm":
        history = history * 10 + 365 * pd.Series(
            np.random.default_rng(6).poisson(1.5, len(history)), index=history.index
        )
    result = forecast.forecast(history, kind=kind)
    assert (result["lower_95"] <= result["lower_80"]).all()
    assert (result["lower_80"] <= result["mean"]).all()
    assert (result["mean"] <= result["upper_80"]).all()
    assert (result["upper_80"] <= result["upper_95"]).all()
    assert ((result["upper_95"] - result["lower_95"]) > (result["upper_80"] - result["lower_80"])).all()
    assert (result["lower_95"] >= 0).all()


def _coverage(simulate, kind: str, n_series: int = 100) -> tuple[float, float]:
    """Share of new weeks inside the 80% and 95% intervals, over many synthetic histories."""
    inside_80 = inside_95 = total = 0
    for seed in range(n_series):
        series = simulate(seed)
        history, future = series.iloc[:156], series.iloc[156:]
        result = forecast.forecast(history, kind=kind)
        actual = future.to_numpy()
        inside_80 += int(((actual >= result["lower_80"]) & (actual <= result["upper_80"])).sum())
        inside_95 += int(((actual >= result["lower_95"]) & (actual <= result["upper_95"])).sum())
        total += len(actual)
    return inside_80 / total, inside_95 / total


def test_count_intervals_have_roughly_nominal_coverage():
    coverage_80, coverage_95 = _coverage(lambda seed: poisson_series(164, seed=1000 + seed, level=30.0)[0], "count")
    # whole-number limits make discrete intervals a little conservative, never much too narrow
    assert 0.76 <= coverage_80 <= 0.90, coverage_80
    assert 0.93 <= coverage_95 <= 0.99, coverage_95


def test_harm_intervals_have_roughly_nominal_coverage():
    """Compound-Poisson harm: many light offences (weight 2) plus a few heavy ones (weight 365)."""

    def simulate(seed):
        rng = np.random.default_rng(2000 + seed)
        index = weeks(164)
        light = rng.poisson(seasonal_mean(index, 120.0))
        heavy = rng.poisson(seasonal_mean(index, 3.0))
        return pd.Series(2.0 * light + 365.0 * heavy, index=index)

    coverage_80, coverage_95 = _coverage(simulate, "harm")
    assert 0.74 <= coverage_80 <= 0.92, coverage_80
    assert 0.92 <= coverage_95 <= 0.995, coverage_95


def test_rare_heavy_offences_keep_zero_inside_the_interval():
    """A homicide-like series (weight 5475, about one week in ten) must allow a week with no harm."""
    rng = np.random.default_rng(9)
    history = pd.Series(5475.0 * rng.poisson(0.1, 156), index=weeks(156))
    result = forecast.forecast(history, kind="harm")
    assert (result["lower_80"] == 0).all() and (result["lower_95"] == 0).all()
    assert (result["upper_95"] >= 5475).all()


def test_empty_and_short_histories():
    zeros = pd.Series(0.0, index=weeks(60))
    result = forecast.forecast(zeros)
    assert (result[["mean", "lower_80", "upper_95"]] == 0).all().all()

    with pytest.raises(ValueError, match="at least 26"):
        forecast.forecast(pd.Series(5.0, index=weeks(10)))
    with pytest.raises(ValueError, match="consecutive week"):
        forecast.forecast(pd.Series([1.0, 2.0], index=[START, START + pd.Timedelta(weeks=2)]))


# ---------------------------------------------------------------------------------------- backtest
def test_backtest_coverage_and_error_on_a_hand_made_example():
    rows = pd.DataFrame(
        {
            "week": weeks(4),
            "actual": [10.0, 20.0, 30.0, 5.0],
            "forecast": [12.0, 18.0, 20.0, 5.0],
            "lower_80": [8.0, 19.0, 21.0, 5.0],  # inside, inside, below, on the limit (inside)
            "upper_80": [14.0, 25.0, 29.0, 7.0],
            "lower_95": [6.0, 15.0, 18.0, 3.0],  # inside, inside, exactly the upper limit (inside), inside
            "upper_95": [16.0, 28.0, 30.0, 9.0],
            "naive_last_year": [9.0, np.nan, 25.0, 8.0],
            "naive_last_4_weeks": [11.0, 22.0, 26.0, 6.0],
        }
    )
    scored = forecast.add_coverage(rows)
    assert scored["in_80"].tolist() == [True, True, False, True]
    assert scored["in_95"].tolist() == [True, True, True, True]

    summary = forecast.summarise_backtest(scored)
    assert summary["weeks"] == 4
    assert summary["covered_80"] == 3 and summary["coverage_80"] == 0.75
    assert summary["covered_95"] == 4 and summary["coverage_95"] == 1.0
    assert summary["mae"] == pytest.approx((2 + 2 + 10 + 0) / 4)
    assert summary["mean_actual"] == pytest.approx(65 / 4)
    assert summary["relative_mae"] == pytest.approx(3.5 / 16.25)
    assert summary["mae_naive_last_year"] == pytest.approx((1 + 5 + 3) / 3)  # the week without one is skipped
    assert summary["mae_naive_last_4_weeks"] == pytest.approx((1 + 2 + 4 + 1) / 4)
    assert summary["best_naive_mae"] == pytest.approx(2.0)
    assert summary["skill_vs_best_naive"] == pytest.approx(1 - 3.5 / 2.0)
    assert "does worse than a naive forecast" in forecast.verdict(summary, "incidents")


def test_backtest_never_sees_the_weeks_it_forecasts():
    """Changing the last weeks changes no forecast whose origin came before them."""
    series, _ = poisson_series(190, seed=21)
    changed = series.copy()
    changed.iloc[-3:] = 500.0
    before = forecast.backtest(series, weeks=13)
    after = forecast.backtest(changed, weeks=13)
    assert len(before) == 13
    assert before["week"].tolist() == list(series.index[-13:])
    # target j is forecast from data up to j - 8: the last 3 weeks are seen by no origin here
    pd.testing.assert_series_equal(before["forecast"], after["forecast"])
    assert after["actual"].iloc[-3:].tolist() == [500.0] * 3
    assert not after["in_95"].iloc[-3:].any()
    # the naive forecasts are made at the same origin: last year's week and the 4 weeks before the origin
    assert before["naive_last_year"].iloc[-1] == series.iloc[-1 - 52]
    assert before["naive_last_4_weeks"].iloc[-1] == pytest.approx(series.iloc[-12:-8].mean())


def test_backtest_skips_targets_without_a_year_of_history():
    series, _ = poisson_series(64, seed=2)
    rows = forecast.backtest(series, weeks=13)
    # target j needs j - 8 + 1 >= 52 weeks before its origin: j >= 59, so weeks 59..63 only
    assert len(rows) == 5


# ---------------------------------------------------------------------------------------- report and speed
def test_report_is_fast_and_cached():
    series, _ = poisson_series(190, seed=8, level=900.0)
    forecast._cached_report.cache_clear()
    started = time.perf_counter()
    report = forecast.forecast_report(series, kind="count")
    cold = time.perf_counter() - started
    assert report.summary["weeks"] == forecast.BACKTEST_WEEKS
    assert len(report.forecast) == forecast.HORIZON
    assert report.forecast["same_week_last_year"].notna().all()
    assert report.spec.harmonics == 3 and report.spec.trend
    # target < 0.5 s per series (fit + 26-origin backtest); generous here so a busy CI machine does not flake
    assert cold < 2.0, f"forecast report took {cold:.2f} s"
    started = time.perf_counter()
    again = forecast.forecast_report(series, kind="count")
    assert time.perf_counter() - started < 0.05
    assert again.summary == report.summary
    again.forecast.loc[0, "mean"] = -1  # a caller mutating its copy does not touch the cache
    assert forecast.forecast_report(series, kind="count").forecast.loc[0, "mean"] != -1


def test_report_on_too_short_a_history_says_why_instead_of_failing():
    report = forecast.forecast_report(pd.Series(12.0, index=weeks(20)), kind="count")
    assert report.forecast.empty and report.spec is None and report.summary == {"weeks": 0}
    assert len(report.history) == 20
    assert "at least 26" in report.notes[0]
