"""Trends and forecasts page (pages/trends.py) over the demo city, per role.

The recorded series is checked against weekly figures computed here with duckdb; the forecast must
add exactly 8 weeks with both interval bands; the measured backtest accuracy must be on the page; the
city leader must see citywide figures only (district filter ignored, no district breakdown, small
counts withheld); admin is refused.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pagetest import (
    chart_spec,
    chart_specs,
    chart_title,
    last_complete_week,
    open_page,
    page_file_as,
    read_snapshot,
    rerun,
    switch_refused,
    trace,
    values,
)

from ilp.analytics import forecast

pytestmark = pytest.mark.usefixtures("entry_point_has_run")

HARM = "CASE WHEN coalesce(c.proactive, false) THEN 0 ELSE coalesce(h.weight, 0) END"
JOINS = """
    FROM incidents i
    LEFT JOIN offence_categories c ON c.category = i.offense_category
    LEFT JOIN harm_weights h ON h.category = i.offense_category AND h.index_name = 'cchi' AND h.version = '2016'
"""


@pytest.fixture(scope="module")
def facts(demo_warehouse) -> dict:
    """Weekly citywide and per-district figures for the 104 weeks ending with the last complete week."""
    with read_snapshot(demo_warehouse) as con:
        week = last_complete_week(con)
        end = dt.datetime.combine(week + dt.timedelta(days=7), dt.time())
        start = end - dt.timedelta(weeks=104)

        def weekly(where: str = "TRUE", params: list | None = None):
            return con.execute(
                f"SELECT date_trunc('week', i.occurred_at)::DATE AS week, count(*), sum({HARM}) {JOINS} "
                f"WHERE i.occurred_at >= ? AND i.occurred_at < ? AND {where} GROUP BY 1 ORDER BY 1",
                [start, end, *(params or [])],
            ).fetchall()

        district = con.execute("SELECT min(district) FROM incidents WHERE district IS NOT NULL").fetchone()[0]
        districts = con.execute("SELECT count(DISTINCT district) FROM incidents WHERE district IS NOT NULL").fetchone()[
            0
        ]
        facts = {
            "week": week,
            "citywide": weekly(),
            "district": district,
            "district_weekly": weekly("i.district = ?", [district]),
            "districts": districts,
        }
    return facts


# ---------------------------------------------------------------------------------------- allowed roles
@pytest.mark.parametrize("role", ["commander", "analyst"])
def test_trends_chart_has_history_and_eight_forecast_weeks(app_env, facts, role):
    at = open_page("trends", role, week=facts["week"].isoformat())
    assert at.title[0].value == "Trends and forecasts"
    main = chart_spec(at, "forecast at")

    recorded = trace(main, "Recorded")
    x = values(recorded["x"])
    assert len(x) == 104
    assert x[-1].startswith(facts["week"].isoformat())
    assert np.allclose(values(recorded["y"]), [harm for _, _, harm in facts["citywide"]])

    ahead = trace(main, "Forecast (mean)")
    ahead_x = values(ahead["x"])
    assert len(ahead_x) == forecast.HORIZON == 8
    assert ahead_x[0].startswith((facts["week"] + dt.timedelta(weeks=1)).isoformat())
    for level in (80, 95):
        band = trace(main, f"{level}% prediction interval")
        assert len(values(band["x"])) == 8 and band["fill"] == "tonexty"
    lower_80, lower_95 = (
        values(trace(main, "80% prediction interval")["y"]),
        values(trace(main, "95% prediction interval")["y"]),
    )
    assert all(l95 <= l80 for l80, l95 in zip(lower_80, lower_95))
    assert "days" in main["layout"]["yaxis"]["title"]["text"] and main["layout"]["xaxis"]["title"]["text"]

    # the measured accuracy sits beside the chart
    metrics = {m.label: m.value for m in at.metric}
    weeks = forecast.BACKTEST_WEEKS
    assert metrics["Inside the 80% interval"].endswith(f"of {weeks}")
    assert metrics["Inside the 95% interval"].endswith(f"of {weeks}")
    covered_80 = int(metrics["Inside the 80% interval"].split()[0])
    covered_95 = int(metrics["Inside the 95% interval"].split()[0])
    assert 0 <= covered_80 <= covered_95 <= weeks
    assert any("naive" in m.value and "error" in m.value for m in at.markdown)

    # the forecast table and the backtest table
    table = at.dataframe[0].value
    assert len(table) == 8 and table["interval_80"].str.contains("–").all()
    backtest = at.dataframe[1].value
    assert len(backtest) == weeks and int(backtest["in_80"].sum()) == covered_80

    # district breakdown: one panel per district
    by_district = chart_spec(at, "by district")
    assert len(by_district["data"]) == facts["districts"]


def test_trends_follows_the_district_filter_and_the_measure(app_env, facts):
    at = open_page("trends", "commander", week=facts["week"].isoformat(), district=facts["district"])
    at.segmented_control(key="trends_measure").set_value("incidents")
    rerun(at)
    main = chart_spec(at, "forecast at")
    recorded = trace(main, "Recorded")
    assert values(recorded["y"]) == [count for _, count, _ in facts["district_weekly"]]
    assert "Incidents per week" in main["layout"]["yaxis"]["title"]["text"]


# ---------------------------------------------------------------------------------------- city leader
def test_city_leader_sees_citywide_only(app_env, facts):
    at = open_page("trends", "city_leader", week=facts["week"].isoformat(), district=facts["district"])
    notes = [i.value for i in at.info]
    assert any("citywide figures only" in n and "district filter" in n and "ignored" in n for n in notes), notes

    charts = chart_specs(at)
    assert len(charts) == 1, [chart_title(s) for s in charts]
    main = charts[0]
    assert chart_title(main).startswith("Citywide")
    recorded = trace(main, "Recorded")
    assert np.allclose(values(recorded["y"]), [harm for _, _, harm in facts["citywide"]])
    assert len(values(trace(main, "Forecast (mean)")["x"])) == 8
    # no district breakdown anywhere on the page
    assert not any("district" in s.value.lower() for s in at.subheader)
    assert all("district" not in df.value.columns for df in at.dataframe)


def test_city_leader_small_counts_are_not_drawn(app_env, facts):
    at = open_page("trends", "city_leader", week=facts["week"].isoformat(), category="homicide")
    assert not at.get("plotly_chart") and not at.dataframe
    assert any("under 10" in w.value for w in at.warning)


# ---------------------------------------------------------------------------------------- refused
def test_trends_is_refused_to_admin(app_env):
    at = switch_refused("admin", "trends")
    page = page_file_as("trends", "admin", at.session_state["ilp_context"])
    assert not page.exception
    assert [e.value.split(":")[0] for e in page.error] == ["Access refused"]
    assert not page.metric and not page.dataframe and not page.get("plotly_chart") and not page.title
