"""Outcome metric functions against hand-computed values on tiny synthetic frames, and the outcome measures
as each role sees them (small counts suppressed, no person-level detail for aggregate-only roles)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ilp import access
from ilp.analytics import outcome_measures, outcomes


def window(month_from, month_to, data_start=dt.date(2020, 1, 1)):
    return outcomes.ReportingWindow(month_from=month_from, month_to=month_to, data_start=data_start)


# ------------------------------------------------------------------------------------------ intervals
def test_wilson_interval_matches_published_values():
    # Wilson 95% for 5/10 is 0.2366-0.7634; for 0/10 it is 0-0.2775 (e.g. Newcombe 1998, Table I).
    lo, hi = outcomes.proportion_interval([5, 0, 0], [10, 10, 0])
    assert lo[:2] == pytest.approx([0.2366, 0.0], abs=1e-4)
    assert hi[:2] == pytest.approx([0.7634, 0.2775], abs=1e-4)
    assert np.isnan(lo[2]) and np.isnan(hi[2])


def test_exact_poisson_interval():
    # Garwood intervals: 0 -> (0, 3.689); 10 -> (4.795, 18.390).
    lo, hi = outcomes.poisson_interval([0, 10])
    assert lo == pytest.approx([0.0, 4.795], abs=1e-3)
    assert hi == pytest.approx([3.689, 18.390], abs=1e-3)


def test_quantile_interval_uses_order_statistics():
    # For n = 100 the distribution-free 95% interval for the median is (x_(40), x_(61)).
    values = np.arange(1, 101)
    assert outcomes.quantile_interval(values, 0.5) == (40.0, 61.0)
    lo, hi = outcomes.quantile_interval(np.arange(1, 4), 0.9)  # too few values for an upper bound
    assert np.isnan(hi)


def test_change_is_noise():
    assert outcomes.change_is_noise(0.50, 0.45, 0.55, 0.52, 0.47, 0.57) is True
    assert outcomes.change_is_noise(0.50, 0.48, 0.52, 0.40, 0.38, 0.42) is False
    assert outcomes.change_is_noise(0.5, 0.4, 0.6, float("nan"), 0.1, 0.2) is None


# ------------------------------------------------------------------------------------------ window
def test_reporting_window_uses_complete_months_only():
    w = outcomes.reporting_window(dt.date(2026, 11, 16), dt.date(2023, 11, 20), dt.date(2026, 11, 15))
    assert (w.month_from, w.month_to, w.data_start) == (
        dt.date(2024, 11, 1),
        dt.date(2026, 11, 1),
        dt.date(2023, 12, 1),
    )
    assert w.params()["window_from"] == dt.date(2023, 12, 1)
    # Data that end on a month's last day make that month complete; a short history starts the window later.
    w = outcomes.reporting_window(dt.date(2019, 1, 7), dt.date(2018, 3, 1), dt.date(2018, 12, 31))
    assert (w.month_from, w.month_to) == (dt.date(2018, 3, 1), dt.date(2019, 1, 1))


# ------------------------------------------------------------------------------------------ metrics
def test_repeat_victimisation_rate_interval_and_complete_windows():
    # The counts come from queries/outcomes_repeat_victimisation.sql (tests/test_repeat_victimisation.py);
    # here: the rate, its interval, the months without a row and the months whose window is incomplete.
    monthly = pd.DataFrame(
        {"month": [dt.date(2024, 12, 1), dt.date(2025, 2, 1)], "victims": [2, 3], "repeat_victims": [1, 1]}
    )
    result = outcomes.repeat_victimisation(
        monthly, window(dt.date(2024, 12, 1), dt.date(2025, 3, 1), data_start=dt.date(2024, 1, 1))
    )
    assert result["victims"].tolist() == [2, 0, 3]
    assert result["repeat_victims"].tolist() == [1, 0, 1]
    assert result["rate"].tolist()[::2] == pytest.approx([0.5, 1 / 3]) and np.isnan(result["rate"].iloc[1])
    lo, hi = outcomes.proportion_interval([1, 0, 1], [2, 0, 3])
    np.testing.assert_allclose(result["rate_lo"], lo)
    np.testing.assert_allclose(result["rate_hi"], hi)
    # Dec 2024's window starts in Jan 2024, the first complete month; Jan 2025's in Feb 2024.
    assert result["complete_window"].tolist() == [True, True, True]
    later_start = outcomes.repeat_victimisation(
        monthly, window(dt.date(2024, 12, 1), dt.date(2025, 3, 1), data_start=dt.date(2024, 2, 1))
    )
    assert later_start["complete_window"].tolist() == [False, True, True]


def test_repeat_victimisation_with_no_victims():
    empty = pd.DataFrame({"month": pd.to_datetime([]), "victims": [], "repeat_victims": []})
    result = outcomes.repeat_victimisation(empty, window(dt.date(2024, 1, 1), dt.date(2024, 3, 1)))
    assert result["victims"].tolist() == [0, 0] and result["rate"].isna().all()


def test_response_time_percentiles_by_hand():
    minutes = [float(m) for m in range(1, 11)] + [None, -3.0]
    calls = pd.DataFrame(
        {"month": pd.to_datetime(["2025-01-01"] * 12 + ["2025-02-01"]), "response_minutes": minutes + [7.0]}
    )
    result = outcomes.response_times(calls, window(dt.date(2025, 1, 1), dt.date(2025, 4, 1)))
    jan, feb, mar = result.to_dict("records")
    assert (jan["calls"], jan["timed"], jan["no_arrival"], jan["negative"]) == (12, 10, 1, 1)
    assert jan["median"] == pytest.approx(5.5)  # (5 + 6) / 2
    assert jan["p90"] == pytest.approx(9.1)  # 9 + 0.1 x (10 - 9), linear interpolation
    assert feb["median"] == 7.0 and feb["timed"] == 1
    assert mar["calls"] == 0 and np.isnan(mar["median"])


def test_clearance_rate_and_settling():
    monthly = pd.DataFrame(
        {"month": pd.to_datetime(["2025-01-01", "2025-03-01"]), "incidents": [10, 8], "cleared": [4, 0]}
    )
    result = outcomes.clearance_rate(
        monthly, window(dt.date(2025, 1, 1), dt.date(2025, 4, 1)), last_data_day=dt.date(2025, 5, 15)
    )
    assert result["incidents"].tolist() == [10, 0, 8]
    assert result["rate"].tolist()[0] == pytest.approx(0.4) and np.isnan(result["rate"].iloc[1])
    assert result["rate"].iloc[2] == 0.0
    # 90 days before 15 May 2025 is 14 Feb: January is settled, February and March are not.
    assert result["settled"].tolist() == [True, False, False]
    assert result["rate_hi"].iloc[0] == pytest.approx(outcomes.proportion_interval([4], [10])[1][0])


def test_use_of_force_rate_per_thousand():
    monthly = pd.DataFrame({"month": pd.to_datetime(["2025-01-01"]), "events": [5], "arrests": [1000]})
    result = outcomes.rate_per_thousand(monthly, window(dt.date(2025, 1, 1), dt.date(2025, 3, 1)), "events", "arrests")
    assert result["rate"].iloc[0] == pytest.approx(5.0)
    assert (result["rate_lo"].iloc[0], result["rate_hi"].iloc[0]) == pytest.approx((1.623, 11.668), abs=1e-3)
    assert np.isnan(result["rate"].iloc[1])  # no arrests in February: no rate, not zero
    pooled = outcomes.pooled_rate(result, "events", "arrests")
    assert (pooled["events"], pooled["base"], pooled["rate"]) == (5, 1000, pytest.approx(5.0))


def test_harm_rate_per_thousand_residents():
    monthly = pd.DataFrame(
        {"month": pd.to_datetime(["2025-01-01"]), "incidents": [3], "harm": [100.0], "harm_variance": [2500.0]}
    )
    result = outcomes.harm_rate(monthly, 10_000, window(dt.date(2025, 1, 1), dt.date(2025, 2, 1)))
    assert result["rate"].iloc[0] == pytest.approx(10.0)
    half = 1.959964 * 50 / 10
    assert (result["rate_lo"].iloc[0], result["rate_hi"].iloc[0]) == pytest.approx((10 - half, 10 + half), abs=1e-4)
    no_population = outcomes.harm_rate(monthly, None, window(dt.date(2025, 1, 1), dt.date(2025, 2, 1)))
    assert np.isnan(no_population["rate"].iloc[0]) and no_population["harm"].iloc[0] == 100.0


def test_survey_share_pools_by_respondents():
    survey = pd.DataFrame(
        {
            "area_id": ["1", "2"],
            "name": ["North", "South"],
            "period_start": pd.to_datetime(["2025-07-01"] * 2),
            "period_label": ["2025-Q3"] * 2,
            "value": [0.5, 0.8],
            "respondents": [100, 300],
        }
    )
    shares = outcomes.survey_share(survey)
    pooled = shares[shares["area_id"].isna()].iloc[0]
    assert pooled["value"] == pytest.approx((50 + 240) / 400)
    north = shares[shares["area_id"] == "1"].iloc[0]
    lo, hi = outcomes.proportion_interval([50], [100])
    assert (north["lo"], north["hi"]) == pytest.approx((lo[0], hi[0]))


def test_headline_and_year_earlier():
    frame = pd.DataFrame(
        {
            "month": pd.date_range("2024-01-01", periods=14, freq="MS"),
            "rate": np.arange(14, dtype=float),
            "rate_lo": np.arange(14) - 0.5,
            "rate_hi": np.arange(14) + 0.5,
        }
    )
    head = outcomes.headline(frame)
    assert head.period == pd.Timestamp("2025-02-01") and head.value == 13.0
    assert head.earlier_period == pd.Timestamp("2024-02-01") and head.earlier == 1.0
    assert head.within_noise is False
    usable = frame["month"] < pd.Timestamp("2025-01-01")
    assert outcomes.headline(frame, usable=usable).period == pd.Timestamp("2024-12-01")


def test_suppression_for_aggregate_roles():
    frame = pd.DataFrame({"events": [5, 12, 0], "rate": [1.0, 2.0, 0.0]})
    shown = access.suppress_small_counts(frame, ["events"], {"events": ["rate"]})
    assert shown["events"].tolist() == ["<10", "12", "0"]
    assert np.isnan(shown["rate"].iloc[0]) and shown["rate"].iloc[1] == 2.0


def test_suppress_small_counts_on_a_list_of_values():
    assert access.suppress_small_counts([0, 3, 9, 10, None, float("nan")])[:5] == [0, "<10", "<10", 10, None]


# ------------------------------------------------------------------------------------------ measures for a role
MONTHS = pd.date_range("2023-07-01", "2025-06-01", freq="MS")  # the 24 reported months below


def context(district=None, **changes) -> outcome_measures.OutcomeContext:
    available = {
        "victim_links": 1,
        "calls": 1,
        "priority_one_calls": 1,
        "incidents_with_clearance": 1,
        "cleared_other": 1,
        "use_of_force_events": 1,
        "incidents_with_arrest_flag": 1,
        "trust_survey_rows": 1,
    }
    fields = dict(
        window=outcomes.reporting_window(dt.date(2025, 7, 1), dt.date(2023, 1, 1), dt.date(2025, 6, 30)),
        last_data_day=dt.date(2025, 6, 30),
        available=available,
        population=50_000.0,
        scope="All districts" if district is None else "North",
        district=district,
        category_label=None,
        harm_unit="days of imprisonment",
        harm_unit_short="days",
    )
    return outcome_measures.OutcomeContext(**{**fields, **changes})


def queries(**frames):
    return lambda name, **params: frames[name]


def texts(view: outcome_measures.MeasureView) -> str:
    """Every sentence and figure the view shows (not its tables)."""
    parts = [view.caption, view.notice, view.warning, view.unavailable]
    parts += [text for m in view.metrics for text in (m.label, m.value, m.delta, m.help)]
    parts += [view.chart.title, view.chart.note] if view.chart else []
    return " | ".join(p for p in parts if p)


def force_rows(events) -> pd.DataFrame:
    return pd.DataFrame({"month": MONTHS.date, "events": events, "arrests": 500})


def test_for_role_suppresses_small_counts_for_city_leaders_only():
    frame = outcomes.rate_per_thousand(force_rows([3, 12, 0] * 8), context().window, "events", "arrests")
    spec = outcome_measures.USE_OF_FORCE
    assert outcome_measures.for_role(frame, spec, "analyst") is frame
    shown = outcome_measures.for_role(frame, spec, "city_leader")
    assert shown["events"].tolist()[:3] == ["<10", "12", "0"] and shown["arrests"].iloc[0] == "500"
    for column in ("rate", "rate_lo", "rate_hi"):  # a rate times its denominator would give the count back
        assert np.isnan(shown[column].iloc[0]) and shown[column].iloc[1] == frame[column].iloc[1]
    assert shown["rate_hi"].iloc[2] == frame["rate_hi"].iloc[2]  # zero is not a small count


def test_use_of_force_view_for_a_city_leader_holds_no_small_count():
    query = queries(outcomes_use_of_force=force_rows(3))  # 3 events a month, 36 in the last 12
    analyst = outcome_measures.measure(outcome_measures.USE_OF_FORCE, context(), query, "analyst")
    assert [m.label for m in analyst.metrics] == ["Jun 2025"] and analyst.metrics[0].value == "6.0"
    assert ", 36 events in 6,000 arrests." in analyst.caption and analyst.notice is None

    leader = outcome_measures.measure(outcome_measures.USE_OF_FORCE, context(), query, "city_leader")
    assert leader.notice == outcome_measures.WITHHELD and leader.notice_beside and leader.chart is None
    assert [(m.label, m.value) for m in leader.metrics] == [("Last 12 months", "6.0")]  # the pooled rate
    assert "36" not in texts(leader) and "events in" not in texts(leader)
    assert set(leader.table.frame["events"]) == {"<10"} and leader.table.frame["rate"].isna().all()
    assert leader.table.columns["events"].kind == "text" and analyst.table.columns["events"].kind == "count"

    # Arrests in the last 4 months only, with 1 event each: not even the pooled rate (4 events) is shown.
    sparse = queries(outcomes_use_of_force=force_rows([0] * 20 + [1] * 4).assign(arrests=[0] * 20 + [500] * 4))
    leader = outcome_measures.measure(outcome_measures.USE_OF_FORCE, context(), sparse, "city_leader")
    assert leader.metrics == [] and leader.caption is None and leader.notice == outcome_measures.WITHHELD


def test_trust_view_for_a_city_leader_hides_respondents_under_the_threshold():
    survey = pd.DataFrame(
        {
            "area_id": ["1", "2"],
            "name": ["North", "South"],
            "period_start": pd.to_datetime(["2025-04-01"] * 2),
            "period_label": ["2025-Q2"] * 2,
            "value": [0.5, 0.5],
            "respondents": [100, 6],
        }
    )
    leader = outcome_measures.measure(outcome_measures.TRUST, context(), queries(outcomes_trust=survey), "city_leader")
    assert "106 respondents (all districts pooled" in leader.caption  # the pooled count is not small
    table = leader.table.frame.set_index("name")
    assert table.loc["South", "respondents"] == "<10" and np.isnan(table.loc["South", "value_pct"])
    assert table.loc["North", "respondents"] == "100" and table.loc["North", "value_pct"] == 50.0
    assert not {"agreeing", "respondents_year_earlier"} & set(leader.table.frame.columns)

    south = survey[survey["area_id"] == "2"]
    query = queries(outcomes_trust=south)
    leader = outcome_measures.measure(outcome_measures.TRUST, context("2"), query, "city_leader")
    analyst = outcome_measures.measure(outcome_measures.TRUST, context("2"), query, "analyst")
    assert "fewer than 10 respondents" in leader.caption and "6 respondents" not in texts(leader)
    assert "6 respondents" in analyst.caption and analyst.table.frame["respondents"].tolist() == [6]


def test_repeat_victimisation_facts_for_a_city_leader_leave_out_the_victim_count():
    # June 2025: 30 victims in the 12 months, 12 of them with a second incident.
    victims = pd.DataFrame({"month": [dt.date(2025, 6, 1)], "victims": [30], "repeat_victims": [12]})
    query = queries(outcomes_repeat_victimisation=victims)
    analyst = outcome_measures.measure(outcome_measures.REPEAT_VICTIMISATION, context(), query, "analyst")
    leader = outcome_measures.measure(outcome_measures.REPEAT_VICTIMISATION, context(), query, "city_leader")
    assert analyst.metrics[0].value == leader.metrics[0].value == "40.0%"
    assert ", of 30 victims." in analyst.caption
    assert "30" not in texts(leader) and leader.caption.startswith("95% interval ")


def test_a_measure_is_one_spec():
    """A new measure needs only a spec: its view comes out computed, formatted and reduced for the role."""
    complaints = outcome_measures.MeasureSpec(
        key="complaints",
        title="Complaints per 1,000 arrests",
        definition="Complaints against officers.",
        query="outcomes_complaints",
        compute=lambda rows, ctx: outcomes.rate_per_thousand(rows, ctx.window, "complaints", "arrests"),
        counts=("complaints", "arrests"),
        dependent={"complaints": ("rate", "rate_lo", "rate_hi")},
        withheld_if="complaints",
        no_data="No month with arrests.",
        headlines=(outcome_measures.HeadlineSpec(),),
        caption="95% interval {lo:.1f} – {hi:.1f}.",
        chart=outcome_measures.ChartSpec("Complaints: {value:.1f} per 1,000 arrests in {period}", "per 1,000"),
        table=outcome_measures.TableSpec(
            {
                "complaints": outcome_measures.Column("Complaints"),
                "rate": outcome_measures.Column("Per 1,000 arrests", "%.1f"),
            }
        ),
    )
    rows = pd.DataFrame({"month": MONTHS.date, "complaints": [20] * 23 + [5], "arrests": 1000})
    analyst = outcome_measures.measure(complaints, context(), queries(outcomes_complaints=rows), "analyst")
    assert (analyst.metrics[0].label, analyst.metrics[0].value) == ("Jun 2025", "5.0")
    assert analyst.chart.title == "Complaints: 5.0 per 1,000 arrests in Jun 2025"
    assert list(analyst.table.frame.columns) == ["month", "complaints", "rate"]
    leader = outcome_measures.measure(complaints, context(), queries(outcomes_complaints=rows), "city_leader")
    assert leader.metrics[0].label == "May 2025" and leader.metrics[0].value == "20.0"  # June's 5 is withheld
    assert leader.table.frame["complaints"].iloc[0] == "<10"  # newest month first


def test_role_note_and_harm_fallback():
    assert outcome_measures.role_note("analyst") is None
    assert f'"<{access.SMALL_COUNT_THRESHOLD}"' in outcome_measures.role_note("city_leader")
    harm = pd.DataFrame({"month": MONTHS.date, "incidents": 40, "harm": 100.0, "harm_variance": 400.0})
    view = outcome_measures.measure(
        outcome_measures.HARM_RATE, context(population=None), queries(outcomes_harm_monthly=harm), "city_leader"
    )
    assert view.warning.startswith("No per-capita rates") and view.metrics[0].label == "Total harm, Jun 2025"
    assert list(view.table.columns) == ["month", "incidents", "harm", "harm_lo", "harm_hi"]
