"""Command brief page (pages/brief.py) over the demo city, and the change statistics it rests on.

The page's numbers are checked against figures computed here straight from the demo warehouse with
duckdb (not through ilp.ui or the named queries): the selected week's citywide incidents and harm,
the highest-harm offence x beat combination, and the 52 weekly harm totals in the chart.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from pagetest import chart_spec, frame_with, frames, open_page, rerun, switch_refused, trace, values
from streamlit.testing.v1 import AppTest

from ilp.analytics import brief
from ilp.state import State
from ilp.warehouse import connect_read_only

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
    rows = pd.DataFrame(
        {
            "district": ["1", "1", "2", None],
            "district_name": ["North", "North", "South", None],
            "category": ["burglary_residential", "shoplifting", "shoplifting", "shoplifting"],
            "category_label": ["Residential burglary", "Shoplifting", "Shoplifting", "Shoplifting"],
            "proactive": [False, False, False, False],
            "weight": [273.5, 1.0, 1.0, 1.0],
            "current_incidents": [4, 10, 20, 1],
            "prior_4wk_incidents": [8, 40, 60, 0],
            "last_year_incidents": [1, 12, 25, 0],
        }
    )
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
pytestmark = pytest.mark.usefixtures("entry_point_has_run")


def open_brief(role: str, **params) -> AppTest:
    return open_page("brief", role, **params)


@pytest.fixture(scope="module")
def facts(demo_warehouse) -> dict:
    """The demo city's figures for its last complete week, computed here with duckdb."""
    snapshot = (demo_warehouse / "CURRENT").read_text(encoding="utf-8").strip()
    con = connect_read_only(demo_warehouse / snapshot)
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
            "GROUP BY ALL ORDER BY 3 DESC, 1 LIMIT 1",
            [start, end],
        ).fetchone()
        top = con.execute(
            f"SELECT i.offense_category, i.beat, sum({HARM}) AS harm, count(*) {JOINS} "
            "WHERE i.occurred_at >= ? AND i.occurred_at < ? GROUP BY ALL ORDER BY harm DESC, 4 DESC LIMIT 1",
            [start - dt.timedelta(days=21), end],
        ).fetchone()
        weekly = con.execute(
            f"SELECT date_trunc('week', i.occurred_at)::DATE AS week, sum({HARM}) {JOINS} "
            "WHERE i.occurred_at >= ? AND i.occurred_at < ? GROUP BY 1 ORDER BY 1",
            [start - dt.timedelta(weeks=51), end],
        ).fetchall()
        label = con.execute("SELECT label FROM offence_categories WHERE category = ?", [top[0]]).fetchone()[0]
        district_beats = {
            beat
            for (beat,) in con.execute(
                "SELECT DISTINCT beat FROM incidents WHERE district = ? AND beat IS NOT NULL", [district]
            ).fetchall()
        }
    finally:
        con.close()
    return {
        "week": week,
        "incidents": incidents,
        "harm": harm,
        "district": district,
        "district_name": district_name,
        "district_incidents": district_incidents,
        "top_label": label,
        "top_beat": top[1],
        "top_harm": top[2],
        "weekly": weekly,
        "district_beats": district_beats,
    }


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

    # Top threats come first: ten ranked threats with their reasons, no raw codes, none tasked yet
    headers = [h.value for h in at.header]
    assert headers[0] == "Top threats"
    assert (
        headers.index("What changed, for real")
        < headers.index("Taskings due or overdue")
        < headers.index("Headline harm: this week against its baselines")
    )
    ranked = frame_with(at, "why", "score")
    assert len(ranked) == 10 and ranked["rank"].tolist() == list(range(1, 11))
    assert ranked["score"].is_monotonic_decreasing
    assert not ranked["threat"].str.contains("_").any(), "raw category codes in the table"
    assert ranked["threat"].str.contains(", Beat ").all()
    assert (ranked["why"].str.len() > 40).all() and set(ranked["tasking"]) == {"Not tasked"}
    assert all(
        why.startswith(threat.split(", Beat ")[0] + " in beat ") for threat, why in zip(ranked["threat"], ranked["why"])
    )

    # the cross-check tab: the ten highest-harm offence x beat combinations, harm alone
    top = frame_with(at, "share_of_district_harm")
    assert len(top) == 10
    assert top["offence"].iloc[0] == facts["top_label"] and top["beat"].iloc[0] == facts["top_beat"]
    assert top["harm"].iloc[0] == pytest.approx(facts["top_harm"], abs=0.5)
    assert top["harm"].is_monotonic_decreasing

    # district tables: citywide row first with the independent figures
    harm_table, incident_table = [f.value for f in at.dataframe if "prior_4wk_change" in f.value.columns]
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
    top = frame_with(at, "share_of_district_harm")
    assert set(top["district"]) == {name}
    # threats are ranked within the district: every one is in one of its beats
    ranked = frame_with(at, "why", "score")
    assert len(ranked) and {t.split(", Beat ")[1].split(" ")[0] for t in ranked["threat"]} <= facts["district_beats"]
    spec = chart_spec(at, f"{name}: the selected week's harm")
    assert len(values(trace(spec, "Weekly harm")["x"])) == 52


# ---------------------------------------------------------------------------------------- refused
@pytest.mark.parametrize("role", ["city_leader", "admin"])
def test_brief_is_refused_to_city_leader_and_admin(app_env, role):
    at = switch_refused(role, "brief")  # reached by URL inside the frame: the refusal, no content
    # and the page file itself, run with that role's full context, shows the refusal and nothing else
    context = at.session_state["ilp_context"]
    page = AppTest.from_file(str(REPO / "pages" / "brief.py"), default_timeout=120)
    page.session_state["ilp_role"] = role
    page.session_state["ilp_context"] = context
    page.run()
    assert not page.exception
    assert [e.value.split(":")[0] for e in page.error] == ["Access refused"]
    assert not page.metric and not page.dataframe and not page.get("plotly_chart") and not page.title


# ---------------------------------------------------------------------------------------- planted truth
@pytest.fixture
def series_env(series_city, app_env, monkeypatch):
    """The dashboard over one year of the demo city at its default size (the planted series visible)."""
    monkeypatch.setenv("ILP_WAREHOUSE", str(series_city))
    snapshot = (series_city / "CURRENT").read_text(encoding="utf-8").strip()
    con = connect_read_only(series_city / snapshot)
    try:
        beat, category, end = con.execute(
            "SELECT area_id, offense_category, end_date FROM demo_truth WHERE kind = 'emerging_series'"
        ).fetchone()
        label = con.execute("SELECT label FROM offence_categories WHERE category = ?", [category]).fetchone()[0]
        weekly = con.execute(
            "SELECT count(*) FROM incidents WHERE beat = ? AND offense_category = ? "
            "AND occurred_at >= ?::DATE - 6 AND occurred_at < ?::DATE + 1",
            [beat, category, end, end],
        ).fetchone()[0]
    finally:
        con.close()
    return {
        "beat": beat,
        "category": category,
        "label": label,
        "end": end,
        "last_week": weekly,
        "state": State(app_env["ILP_STATE"]),
    }


def test_planted_series_leads_the_brief_with_its_reasons_and_control_chart(series_env):
    truth = series_env
    at = open_brief("analyst", week=(truth["end"] - dt.timedelta(days=6)).isoformat())
    ranked = frame_with(at, "why", "score")
    series = ranked[ranked["why"].str.startswith(f"{truth['label']} in beat {truth['beat']} ")]
    assert len(series) == 1 and series["rank"].iloc[0] <= 3, ranked[["rank", "offence", "area"]]
    assert series["significance"].iloc[0] == "▲ significant"
    assert "under 18" in series["why"].iloc[0]

    # what changed, by beat: the series' 28-day rise survives the false discovery rate
    at.toggle(key="change_beats").set_value(True)
    at.segmented_control(key="change_window").set_value("28d")
    rerun(at)
    changed = frame_with(at, "q_value", "change")
    row = changed[changed["area"].str.startswith(f"Beat {truth['beat']} ") & (changed["offence"] == truth["label"])]
    assert len(row) == 1 and "▲ significant rise" in row["change"].iloc[0] and (changed["q_value"] <= 0.10).all()

    # control chart: pick the series; its last week is the independently counted one
    chart_choice = at.selectbox(key="control_series")
    wanted = next(i for i in chart_choice.options if f"{truth['label']}, Beat {truth['beat']} " in i and "Threat" in i)
    chart_choice.set_value(chart_choice.options.index(wanted) if isinstance(chart_choice.value, int) else wanted)
    rerun(at)
    spec = chart_spec(at, "weeks outside the expected range")
    assert f"Beat {truth['beat']}" in spec["layout"]["title"]["text"]
    weekly = values(trace(spec, "Incidents per week")["y"])
    assert len(weekly) == 26 and weekly[-1] == truth["last_week"]
    assert spec["layout"]["yaxis"]["title"]["text"] == "Incidents per week"


def test_commander_tasks_a_threat_from_the_brief_and_analyst_cannot(series_env):
    truth = series_env
    week = (truth["end"] - dt.timedelta(days=6)).isoformat()
    analyst = open_brief("analyst", week=week)
    assert not [b for b in analyst.button if b.label == "Create tasking"]
    assert any("Commanders create taskings" in m.value for m in analyst.markdown)

    at = open_brief("commander", week=week)
    ranked = frame_with(at, "why", "score")
    position = int(ranked.index[ranked["why"].str.startswith(f"{truth['label']} in beat {truth['beat']} ")][0])
    at.selectbox(key="threat_pick_beat").set_value(position)
    rerun(at)
    assert at.subheader[0].value.startswith(f"#{position + 1} {truth['label']} in Beat {truth['beat']}")
    due = dt.date.today() + dt.timedelta(days=3)
    at.text_input(key="threat_owner").input("Insp. Okafor, robbery squad")
    at.text_area(key="threat_action").input("Plain-clothes patrols 15:00-19:00 on school days; CCTV review")
    at.date_input(key="threat_due").set_value(due)
    at.button(key="threat_save").click()
    rerun(at)

    taskings = truth["state"].taskings()
    assert len(taskings) == 1
    tasking = taskings.iloc[0]
    assert (
        tasking["offense_category"],
        tasking["area_level"],
        tasking["area_id"],
        tasking["owner"],
        tasking["due_date"],
    ) == (truth["category"], "beat", truth["beat"], "Insp. Okafor, robbery squad", due.isoformat())
    assert tasking["created_by"] and tasking["data_version"]
    assert any(f"Tasking No. {tasking['id']} created" in s.value for s in at.success)
    ranked = frame_with(at, "why", "score")
    assert ranked.loc[position, "tasking"].startswith("Insp. Okafor, robbery squad (Open, due")
    due_table = frame_with(at, "owner", "late")
    assert due_table["owner"].tolist() == ["Insp. Okafor, robbery squad"] and due_table["late"].tolist() == [""]
    assert truth["state"].audit_log(action="tasking_create")["role"].tolist() == ["commander"]


# ---------------------------------------------------------------------------------------- repeat locations and victims
def repeat_facts(con, as_of: dt.date) -> dict:
    """The highest-harm repeat location and the beat x offence with the most repeat victims, counted here."""
    end = as_of + dt.timedelta(days=1)
    location = con.execute(
        """
        SELECT i.location_text, count(*) AS incidents, sum(h.weight) AS harm
        FROM incidents i
        JOIN offence_categories c ON c.category = i.offense_category
        JOIN harm_weights h ON h.category = i.offense_category AND h.index_name = 'cchi' AND h.version = '2016'
        WHERE i.occurred_at >= ?::DATE - 28 AND i.occurred_at < ? AND h.weight > 0
          AND NOT c.sensitive AND NOT c.proactive AND NOT coalesce(i.domestic, false)
        GROUP BY 1 HAVING count(*) >= 3 ORDER BY harm DESC, incidents DESC, 1 LIMIT 1
        """,
        [end, end],
    ).fetchone()
    victims = con.execute(
        """
        WITH v AS (
            SELECT p.person_key, i.source_id, i.beat, i.offense_category, i.occurred_at >= ?::DATE - 28 AS recent
            FROM incident_persons p JOIN incidents i USING (source, source_id)
            WHERE p.role = 'victim' AND i.occurred_at >= ?::DATE - 365 AND i.occurred_at < ?
        ),
        repeaters AS (
            SELECT person_key FROM v GROUP BY 1 HAVING count(DISTINCT source_id) >= 2 AND bool_or(recent)
        )
        SELECT beat, offense_category, count(DISTINCT person_key) AS victims
        FROM v WHERE recent AND person_key IN (SELECT person_key FROM repeaters)
        GROUP BY 1, 2 ORDER BY victims DESC, count(DISTINCT source_id) DESC, 1, 2 LIMIT 1
        """,
        [end, end, end],
    ).fetchone()
    label = con.execute("SELECT label FROM offence_categories WHERE category = ?", [victims[1]]).fetchone()[0]
    return {
        "location": location[0],
        "incidents": location[1],
        "harm": location[2],
        "victims_beat": victims[0],
        "victims_label": label,
        "victims": victims[2],
    }


def test_brief_tabs_list_repeat_locations_and_count_repeat_victims(app_env, facts, demo_warehouse):
    snapshot = (demo_warehouse / "CURRENT").read_text(encoding="utf-8").strip()
    with connect_read_only(demo_warehouse / snapshot) as con:
        truth = repeat_facts(con, facts["week"] + dt.timedelta(days=6))
    at = open_brief("commander", week=facts["week"].isoformat())
    assert [t.label for t in at.tabs][:4] == [
        "Ranked threats, with reasons",
        "Highest harm alone",
        "Repeat locations",
        "Repeat victims",
    ]

    locations = frame_with(at, "top_offence", "seen")
    assert len(locations) == 10 and locations["rank"].tolist() == list(range(1, 11))
    first = locations.iloc[0]
    assert (first["location"], first["incidents"]) == (truth["location"], truth["incidents"])
    assert first["harm"] == pytest.approx(truth["harm"], abs=0.5)
    assert locations["harm"].is_monotonic_decreasing and (locations["incidents"] >= 3).all()
    assert locations["area"].str.match(r"Beat \w+, ").all() and not locations["top_offence"].str.contains("_").any()
    assert not locations["top_offence"].str.contains("Rape|Homicide|sexual", case=False).any()
    assert any("Left out: offences flagged sensitive" in c.value for c in at.caption)
    reasons = next(m.value for m in at.markdown if m.value.startswith("**What happens at each**"))
    lines = reasons.splitlines()[2:]
    assert len(lines) == 10 and lines[0].startswith(f"1. {truth['location']} (beat ")
    assert f": {truth['incidents']} incidents in 28 days vs " in lines[0]

    victims = frame_with(at, "repeat_victims")
    assert 1 <= len(victims) <= 10 and victims["repeat_victims"].is_monotonic_decreasing
    top = victims.iloc[0]
    assert top["area"].startswith(f"Beat {truth['victims_beat']} ") and top["offence"] == truth["victims_label"]
    assert top["repeat_victims"] == truth["victims"]
    assert any("no victim is named or listed" in c.value for c in at.caption)

    # by district when the threats are: the same control sets both tabs' level
    at.segmented_control(key="threat_level").set_value("district")
    rerun(at)
    assert frame_with(at, "repeat_victims")["area"].str.startswith("District ").all()


@pytest.fixture
def warehouse_without_victims(demo_warehouse, tmp_path, monkeypatch):
    """A copy of the demo warehouse with its victim records removed (as in Chicago's public export)."""
    import shutil

    directory = tmp_path / "no_victims"
    shutil.copytree(demo_warehouse, directory)
    for segment in (directory / "segments").glob("g*.duckdb"):  # the large tables live in segment files
        with duckdb.connect(str(segment)) as con:
            con.execute("DELETE FROM incident_persons WHERE role = 'victim'")
    monkeypatch.setenv("ILP_WAREHOUSE", str(directory))
    return directory


def test_brief_says_when_the_warehouse_has_no_victim_records(app_env, facts, warehouse_without_victims):
    at = open_brief("analyst", week=facts["week"].isoformat())
    assert any(i.value.startswith("No victim records in this warehouse") for i in at.info)
    assert not [f for f in frames(at) if "repeat_victims" in f.columns]
    assert len(frame_with(at, "top_offence", "seen")) == 10  # repeat locations need no victims


def test_commander_tasks_a_repeat_location_from_the_brief(app_env, facts, demo_warehouse):
    snapshot = (demo_warehouse / "CURRENT").read_text(encoding="utf-8").strip()
    with connect_read_only(demo_warehouse / snapshot) as con:
        truth = repeat_facts(con, facts["week"] + dt.timedelta(days=6))
        top_category, top_label = con.execute(
            """
            SELECT i.offense_category, c.label FROM incidents i
            JOIN offence_categories c ON c.category = i.offense_category
            JOIN harm_weights h ON h.category = i.offense_category AND h.index_name = 'cchi' AND h.version = '2016'
            WHERE i.location_text = ? AND i.occurred_at >= ?::DATE - 27 AND i.occurred_at < ?::DATE + 1
              AND NOT c.sensitive AND NOT c.proactive AND NOT coalesce(i.domestic, false) AND h.weight > 0
            GROUP BY 1, 2, h.weight ORDER BY count(*) * h.weight DESC, count(*) DESC, 1 LIMIT 1
            """,
            [truth["location"], facts["week"] + dt.timedelta(days=6), facts["week"] + dt.timedelta(days=6)],
        ).fetchone()

    analyst = open_brief("analyst", week=facts["week"].isoformat())
    assert analyst.selectbox(key="location_pick").label == "Repeat location"
    assert not [b for b in analyst.button if b.key == "location_save"]

    at = open_brief("commander", week=facts["week"].isoformat())
    assert at.selectbox(key="location_pick").label == "Repeat location to task"
    assert frame_with(at, "top_offence", "seen")["tasking"].eq("Not tasked").all()
    at.text_input(key="location_owner").input("Sgt. Reyes, neighbourhood team")
    at.text_area(key="location_action").input("Problem-solving visit with the premises manager; CCTV and lighting")
    at.button(key="location_save").click()
    rerun(at)
    assert not at.error, [e.value for e in at.error]

    store = State(app_env["ILP_STATE"])
    tasking = store.taskings().iloc[0]
    assert (tasking["area_level"], tasking["area_id"], tasking["offense_category"], tasking["owner"]) == (
        "location",
        truth["location"],
        top_category,
        "Sgt. Reyes, neighbourhood team",
    )
    assert any(f"{top_label} at {truth['location']}, owner Sgt. Reyes" in s.value for s in at.success)
    listed = frame_with(at, "top_offence", "seen")
    assert listed["tasking"].iloc[0].startswith("Sgt. Reyes, neighbourhood team (Open, due ")
    assert listed["tasking"].iloc[1:].eq("Not tasked").all()
    assert any(m.value.startswith(f"**Tasked:** No. {tasking['id']} to Sgt. Reyes") for m in at.markdown)

    # a live tasking past its due date says so where the commander looks
    store.update_tasking(int(tasking["id"]), by="c", due_date=dt.date.today() - dt.timedelta(days=2))
    rerun(at)
    assert any(
        m.value.startswith(f"**Tasked:** No. {tasking['id']} to Sgt. Reyes")
        and m.value.endswith("(**overdue by 2 days**).")
        for m in at.markdown
    )
