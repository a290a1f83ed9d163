"""Command brief page (pages/brief.py) over the demo city, and the change statistics it rests on.

The page's numbers are checked against figures computed here straight from the demo warehouse with
duckdb (not through ilp.ui or the named queries): the selected week's citywide incidents and harm,
the highest-harm offence x beat combination, and the 52 weekly harm totals in the chart.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from ilp.analytics import brief

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120
HARM = """
    CASE WHEN coalesce(c.proactive, false) THEN 0 ELSE coalesce(h.weight, 0) END
"""
JOINS = """
    FROM incidents i
    LEFT JOIN offence_categories c ON c.category = i.offense_category
    LEFT JOIN harm_weights h ON h.category = i.offense_category AND h.index_name = 'cchi' AND h.version = '2016'
"""


# ---------------------------------------------------------------------------------------- unit: statistics
def test_poisson_z_is_the_variance_stabilised_difference():
    assert brief.poisson_z(100, 64) == pytest.approx(2 * (10 - 8))
    assert brief.poisson_z(30, 20) == pytest.approx(2 * (np.sqrt(30) - np.sqrt(20)))
    assert np.allclose(brief.poisson_z([0, 9], [4, 9]), [-4, 0])


def test_harm_z_reduces_to_the_count_formula_for_unit_weights_and_scales_with_dispersion():
    assert brief.harm_z(30, 20, 1.0) == pytest.approx(brief.poisson_z(30, 20))
    # the same change in 365-day offences: harm 365x larger, dispersion 365, same evidence
    assert brief.harm_z(30 * 365, 20 * 365, 365.0) == pytest.approx(brief.poisson_z(30, 20))
    assert np.isnan(brief.harm_z(0, 0, 0.0))


def test_percent_change_is_withheld_for_baselines_under_ten():
    assert brief.percent_change(12, 10) == pytest.approx(0.2)
    assert np.isnan(brief.percent_change(6, 3))
    # harm: judged on effective counts (baseline / phi), not on days
    assert np.isnan(brief.percent_change(3000, 2000, effective_baseline=2000 / 365))
    assert brief.change_text(6, 3, brief.poisson_z(6, 3), brief.percent_change(6, 3)) == "+3, z +1.4"
    assert brief.change_text(12, 10, brief.poisson_z(12, 10), brief.percent_change(12, 10)) == "+2 (+20%), z +0.6"


def test_district_changes_on_a_hand_made_example():
    rows = pd.DataFrame({
        "district": ["1", "1", "2", None],
        "district_name": ["North", "North", "South", None],
        "category": ["burglary_residential", "shoplifting", "shoplifting", "shoplifting"],
        "category_label": ["Residential burglary", "Shoplifting", "Shoplifting", "Shoplifting"],
        "proactive": [False, False, False, False],
        "weight": [273.5, 1.0, 1.0, 1.0],
        "current_incidents": [4, 10, 20, 1],
        "prior_4wk_incidents": [8, 40, 60, 0],
        "last_year_incidents": [1, 12, 25, 0],
    })
    changes = brief.district_changes(rows)
    assert changes["area"].tolist() == [brief.CITYWIDE, "North", "South", brief.UNKNOWN_DISTRICT]
    city = changes.iloc[0]
    assert city["incidents"] == 35 and city["harm"] == pytest.approx(4 * 273.5 + 31)
    assert city["prior_4wk_incidents"] == pytest.approx(108 / 4)
    assert city["prior_4wk_incidents_z"] == pytest.approx(2 * (np.sqrt(35) - np.sqrt(27)))
    north = changes.iloc[1]
    phi = (4 * 273.5**2 + 10 + 8 * 273.5**2 + 40) / (4 * 273.5 + 10 + 8 * 273.5 + 40)
    base = (8 * 273.5 + 40) / 4
    assert north["prior_4wk_harm"] == pytest.approx(base)
    assert north["prior_4wk_harm_z"] == pytest.approx(2 * (np.sqrt(north["harm"] / phi) - np.sqrt(base / phi)))
    assert np.isnan(north["last_year_harm_pct"])  # last year's harm is under 10 effective counts
    assert brief.headline(changes, "2")["area"] == "South"
    assert brief.headline(changes, None)["area"] == brief.CITYWIDE


# ---------------------------------------------------------------------------------------- page helpers
class _EntryPointHasRun(PagesManager):
    """Lets switch_page() run the page inside dashboard.py (see tests/test_page_access.py)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def entry_point_has_run(monkeypatch):
    monkeypatch.setattr(PagesManager, "uses_pages_directory", PagesManager.uses_pages_directory)
    monkeypatch.setattr(app_test_module, "PagesManager", _EntryPointHasRun)


def dashboard_as(role: str, **params) -> AppTest:
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=TIMEOUT)
    at.query_params["role"] = role
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def open_brief(role: str, **params) -> AppTest:
    at = dashboard_as(role, **params)
    # the landing page forwards with st.switch_page, which clears the URL's parameters: set them again
    at.query_params["role"] = role
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(str(REPO / "pages" / "brief.py"))
    at.run()
    assert not at.exception, "\n".join(e.message + "\n" + "\n".join(e.stack) for e in at.exception)
    return at


def chart_spec(at: AppTest, title_contains: str) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layout"].get("title", {})
        if title_contains in (title.get("text", "") if isinstance(title, dict) else str(title)):
            return spec
    raise AssertionError(f"no chart titled ...{title_contains}...")


def trace(spec: dict, name: str) -> dict:
    return next(t for t in spec["data"] if t.get("name") == name)


def values(data) -> list:
    """A trace's x or y: plotly sends numeric arrays as typed arrays ({"dtype", "bdata"} in base64)."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"])).tolist()
    return list(data)


@pytest.fixture(scope="module")
def facts(demo_warehouse) -> dict:
    """The demo city's figures for its last complete week, computed here with duckdb."""
    snapshot = (demo_warehouse / "CURRENT").read_text(encoding="utf-8").strip()
    con = duckdb.connect(str(demo_warehouse / snapshot), read_only=True)
    try:
        last_day = con.execute("SELECT max(occurred_at)::DATE FROM incidents").fetchone()[0]
        as_of = min(dt.date.today() - dt.timedelta(days=1), last_day)
        monday = as_of - dt.timedelta(days=as_of.weekday())
        week = monday if as_of.weekday() == 6 else monday - dt.timedelta(weeks=1)
        start, end = dt.datetime.combine(week, dt.time()), dt.datetime.combine(week + dt.timedelta(days=7), dt.time())
        incidents, harm = con.execute(
            f"SELECT count(*), sum({HARM}) {JOINS} WHERE i.occurred_at >= ? AND i.occurred_at < ?", [start, end]
        ).fetchone()
        district, district_name, district_incidents = con.execute(
            "SELECT i.district, a.name, count(*) FROM incidents i JOIN areas a ON a.level = 'district' "
            "AND a.area_id = i.district WHERE i.occurred_at >= ? AND i.occurred_at < ? "
            "GROUP BY ALL ORDER BY 3 DESC, 1 LIMIT 1", [start, end]).fetchone()
        top = con.execute(
            f"SELECT i.offense_category, i.beat, sum({HARM}) AS harm, count(*) {JOINS} "
            "WHERE i.occurred_at >= ? AND i.occurred_at < ? GROUP BY ALL ORDER BY harm DESC, 4 DESC LIMIT 1",
            [start - dt.timedelta(days=21), end]).fetchone()
        weekly = con.execute(
            f"SELECT date_trunc('week', i.occurred_at)::DATE AS week, sum({HARM}) {JOINS} "
            "WHERE i.occurred_at >= ? AND i.occurred_at < ? GROUP BY 1 ORDER BY 1",
            [start - dt.timedelta(weeks=51), end]).fetchall()
        label = con.execute("SELECT label FROM offence_categories WHERE category = ?", [top[0]]).fetchone()[0]
    finally:
        con.close()
    return {"week": week, "incidents": incidents, "harm": harm, "district": district,
            "district_name": district_name, "district_incidents": district_incidents,
            "top_label": label, "top_beat": top[1], "top_harm": top[2], "weekly": weekly}


# ---------------------------------------------------------------------------------------- page
@pytest.mark.parametrize("role", ["commander", "analyst"])
def test_brief_shows_the_demo_citys_real_numbers(app_env, facts, role):
    at = open_brief(role, week=facts["week"].isoformat())
    assert at.title[0].value == "Command brief"
    assert any(facts["week"].strftime("%d %b %Y") in m.value for m in at.markdown)

    metrics = {(m.label, m.proto.delta_description.split(" (")[0]): m.value for m in at.metric}
    assert metrics[("Incidents this week, Citywide", "vs 4-week average")] == f"{facts['incidents']:,}"
    assert metrics[("Incidents this week, Citywide", "vs last year")] == f"{facts['incidents']:,}"
    assert metrics[("Harm this week, Citywide", "vs 4-week average")] == f"{facts['harm']:,.0f} days"
    # every delta carries its z
    assert all(", z " in m.delta for m in at.metric)

    # Top threats section comes first and holds the ten highest-harm offence x beat combinations
    headers = [h.value for h in at.header]
    assert headers[0] == "Top threats"
    top = at.dataframe[0].value
    assert len(top) == 10
    assert top["offence"].iloc[0] == facts["top_label"] and top["beat"].iloc[0] == facts["top_beat"]
    assert top["harm"].iloc[0] == pytest.approx(facts["top_harm"], abs=0.5)
    assert top["harm"].is_monotonic_decreasing
    assert not top["offence"].str.contains("_").any(), "raw category codes in the table"

    # district tables: citywide row first with the independent figures
    harm_table, incident_table = at.dataframe[1].value, at.dataframe[2].value
    assert incident_table["area"].iloc[0] == brief.CITYWIDE
    assert incident_table["current"].iloc[0] == facts["incidents"]
    assert harm_table["current"].iloc[0] == pytest.approx(facts["harm"], abs=0.5)
    assert len(incident_table) >= 8  # citywide + the demo city's 7 districts

    # weekly harm: 52 points ending with the selected week, which is marked
    spec = chart_spec(at, "highest of the last 52 weeks")
    weekly = trace(spec, "Weekly harm")
    assert len(values(weekly["x"])) == 52
    assert values(weekly["x"])[-1].startswith(facts["week"].isoformat())
    assert np.allclose(values(weekly["y"]), [harm for _, harm in facts["weekly"]])
    selected = trace(spec, "Selected week")
    assert len(values(selected["x"])) == 1 and values(selected["x"])[0].startswith(facts["week"].isoformat())
    assert spec["layout"]["xaxis"]["title"]["text"] and "days" in spec["layout"]["yaxis"]["title"]["text"]


def test_brief_headline_follows_the_district_filter(app_env, facts):
    at = open_brief("commander", week=facts["week"].isoformat(), district=facts["district"])
    name = facts["district_name"]
    metric = next(m for m in at.metric if m.label == f"Incidents this week, {name}")
    assert metric.value == f"{facts['district_incidents']:,}"
    top = at.dataframe[0].value
    assert set(top["district"]) == {name}
    spec = chart_spec(at, name)
    assert len(values(trace(spec, "Weekly harm")["x"])) == 52


# ---------------------------------------------------------------------------------------- refused
@pytest.mark.parametrize("role", ["city_leader", "admin"])
def test_brief_is_refused_to_city_leader_and_admin(app_env, role):
    at = dashboard_as(role)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(str(REPO / "pages" / "brief.py"))
    # and the page file itself, run with that role's full context, shows the refusal and nothing else
    context = at.session_state["ilp_context"]
    page = AppTest.from_file(str(REPO / "pages" / "brief.py"), default_timeout=TIMEOUT)
    page.session_state["ilp_role"] = role
    page.session_state["ilp_context"] = context
    page.run()
    assert not page.exception
    assert [e.value.split(":")[0] for e in page.error] == ["Access refused"]
    assert not page.metric and not page.dataframe and not page.get("plotly_chart") and not page.title
