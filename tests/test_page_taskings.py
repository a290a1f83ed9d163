"""Taskings page (pages/taskings.py) with AppTest over the demo city.

A commander creates a tasking through the form and it shows in the list and in the app state; an
analyst reads the list with no form; city leaders and administrators are refused. The "what came of it"
view is checked against counts computed here with DuckDB straight from the demo warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3

import pandas as pd
import pytest
from pagetest import chart_spec, chart_specs, dashboard_as, frame_with, open_page, page_file_as, read_snapshot, rerun

from ilp.state import State

pytestmark = pytest.mark.usefixtures("entry_point_has_run")


# ------------------------------------------------------------------------------------------ commander
def test_commander_creates_a_tasking_through_the_form(app_env):
    at = open_page("taskings", "commander")
    assert at.title[0].value == "Taskings"

    at.selectbox(key="new_tasking_category").set_value("robbery")
    at.selectbox(key="new_tasking_area").set_value("beat:3D")
    at.text_input(key="new_tasking_owner").set_value("Insp. Okafor, Team 3")
    at.text_area(key="new_tasking_action").set_value("High-visibility patrols 15:00-18:00 near the schools")
    at.date_input(key="new_tasking_due").set_value(dt.date(2026, 12, 6))
    at.button(key="new_tasking_save").click()
    rerun(at)
    assert not at.error, [e.value for e in at.error]
    assert [s.value for s in at.success] == ["Tasking No. 1 created."]

    # In the app state, with its history and an audit entry naming the commander.
    store = State(app_env["ILP_STATE"])
    saved = store.taskings()
    assert len(saved) == 1
    row = saved.iloc[0]
    assert (
        row["offense_category"],
        row["area_level"],
        row["area_id"],
        row["owner"],
        row["due_date"],
        row["status"],
    ) == ("robbery", "beat", "3D", "Insp. Okafor, Team 3", "2026-12-06", "open")
    assert store.tasking_history(int(row["id"]))["field"].tolist() == ["created"]
    creates = store.audit_log(action="tasking_create")
    assert creates["role"].tolist() == ["commander"] and creates["user"].tolist() == ["commander (demo)"]

    # In the list, with labels rather than codes.
    listing = frame_with(at, "threat")
    assert listing["threat"].tolist() == ["Robbery"]
    assert listing["area"].iloc[0].startswith("Beat 3D")
    assert listing["owner"].tolist() == ["Insp. Okafor, Team 3"]
    assert listing["status"].tolist() == ["Open"]
    assert str(listing["due"].iloc[0]) == "2026-12-06"


def test_commander_cannot_mark_done_without_a_result_note_and_history_shows_changes(app_env):
    store = State(app_env["ILP_STATE"])
    tasking_id = store.create_tasking(
        by="someone",
        offense_category="burglary_residential",
        area_level="beat",
        area_id="2G",
        owner="DS Patel",
        action="Problem-solving plan",
        due_date=dt.date(2020, 1, 6),
    )
    at = open_page("taskings", "commander")
    listing = frame_with(at, "flag")
    assert listing["flag"].iloc[0].startswith("Overdue by")  # due in 2020, still open

    at.selectbox(key=f"update_{tasking_id}_status").set_value("done")
    at.button(key=f"update_{tasking_id}_save").click()
    at.run()
    assert any("needs a result note" in e.value for e in at.error)
    assert store.taskings()["status"].tolist() == ["open"]

    at.selectbox(key=f"update_{tasking_id}_status").set_value("done")
    at.text_area(key=f"update_{tasking_id}_note").set_value("Plan agreed; burglaries down")
    at.button(key=f"update_{tasking_id}_save").click()
    rerun(at)
    assert not at.error
    assert store.taskings()["status"].tolist() == ["done"]
    history = frame_with(at, "field")
    assert history["field"].tolist() == ["Created", "Status", "Result note"]
    assert history["to"].tolist()[1:] == ["Done", "Plan agreed; burglaries down"]
    assert frame_with(at, "flag")["flag"].tolist() == [""]  # done: no longer overdue


# ------------------------------------------------------------------------------------------ analyst
def test_analyst_reads_the_list_without_a_form(app_env):
    State(app_env["ILP_STATE"]).create_tasking(
        by="Ch. Supt. Vale",
        offense_category="violence_with_injury",
        area_level="district",
        area_id="1",
        owner="Insp. Hart",
        action="Licensing checks",
        due_date=dt.date(2030, 1, 7),
    )
    at = open_page("taskings", "analyst")
    assert "Read-only for your role" in at.caption[0].value
    listing = frame_with(at, "threat")
    assert listing["threat"].tolist() == ["Violence with injury"] and listing["owner"].tolist() == ["Insp. Hart"]
    assert listing["area"].iloc[0].startswith("District 1")
    assert not at.text_input and not at.text_area and not at.date_input
    assert not [b for b in at.button if str(b.key or "").endswith("_save")]
    assert [s.key for s in at.selectbox if s.key and s.key.startswith(("new_tasking", "update_"))] == []


def backdate(store: State, tasking_id: int, created_at: str) -> None:
    """Pretend the tasking was created on ``created_at`` (the app never edits creation times itself)."""
    con = sqlite3.connect(store.path)
    with con:
        con.execute("UPDATE taskings SET created_at = ? WHERE id = ?", (created_at, tasking_id))
    con.close()


def test_what_came_of_it_matches_the_warehouse(app_env, demo_warehouse):
    """A done tasking backdated to the demo's planted intervention (beat 4C, from 2026-05-18)."""
    store = State(app_env["ILP_STATE"])
    tasking_id = store.create_tasking(
        by="Ch. Supt. Vale",
        offense_category="burglary_residential",
        area_level="beat",
        area_id="4C",
        owner="Insp. Mensah",
        action="Target hardening",
        due_date=dt.date(2026, 6, 15),
    )
    backdate(store, tasking_id, "2026-05-18T09:00:00")
    store.update_tasking(tasking_id, by="Ch. Supt. Vale", status="done", result_note="Visits to 180 homes")

    with read_snapshot(demo_warehouse) as warehouse:
        before, after, before_harm = warehouse.execute(
            """
            SELECT count(*) FILTER (WHERE occurred_at >= DATE '2026-04-20' AND occurred_at < DATE '2026-05-18'),
                   count(*) FILTER (WHERE occurred_at >= DATE '2026-05-18' AND occurred_at < DATE '2026-06-15'),
                   sum(h.weight) FILTER (WHERE occurred_at >= DATE '2026-04-20' AND occurred_at < DATE '2026-05-18')
            FROM incidents i JOIN harm_weights h ON h.index_name = 'cchi' AND h.version = '2016'
                 AND h.category = i.offense_category
            WHERE offense_category = 'burglary_residential' AND beat = '4C'
            """
        ).fetchone()
    assert before > 0

    at = open_page("taskings", "analyst")
    outcome = frame_with(at, "poisson_z")
    assert len(outcome) == 1
    row = outcome.iloc[0]
    assert (row["before_incidents"], row["after_incidents"]) == (before, after)
    assert row["before_harm"] == pytest.approx(before_harm)
    assert row["poisson_z"] == pytest.approx(2 * (math.sqrt(after) - math.sqrt(before)))
    assert row["tasking"].startswith(f"No. {tasking_id} · Residential burglary · Beat 4C")
    assert any("not a causal estimate" in m.value for m in at.markdown)

    spec = chart_specs(at)[0]
    assert [trace["name"] for trace in spec["data"]] == ["4 weeks before", "4 weeks after"]
    assert "not causal" in spec["layout"]["title"]["text"]
    assert spec["layout"]["yaxis"]["title"]["text"].endswith("(count)")


def test_a_tasking_created_after_the_data_ends_has_no_z(app_env):
    store = State(app_env["ILP_STATE"])
    tasking_id = store.create_tasking(
        by="c",
        offense_category="robbery",
        area_level="beat",
        area_id="3D",
        owner="Insp. Okafor",
        action="Patrols",
        due_date=dt.date(2030, 1, 7),
    )
    store.update_tasking(tasking_id, by="c", status="done", result_note="Done")
    outcome = frame_with(open_page("taskings", "commander"), "poisson_z")
    assert outcome["reading"].iloc[0].startswith("After window incomplete")
    assert outcome["poisson_z"].isna().all()


# ------------------------------------------------------------------------------------------ refused
@pytest.mark.parametrize("role", ["city_leader", "admin"])
def test_roles_without_taskings_are_refused(app_env, role):
    at = page_file_as("taskings", role, dashboard_as(role).session_state["ilp_context"])
    assert not at.exception
    assert [e.value for e in at.error] and at.error[0].value.startswith("Access refused")
    assert len(at.error) == 1 and not at.dataframe and not at.metric and not at.text_input and not at.title


def test_a_repeat_location_tasking_is_listed_kept_on_update_and_measured_at_its_location(app_env, demo_warehouse):
    """Taskings at a repeat location (created from the brief) count that location's incidents only."""
    with read_snapshot(demo_warehouse) as warehouse:
        location, before, after = warehouse.execute(
            """
            SELECT location_text,
                   count(*) FILTER (WHERE occurred_at >= DATE '2026-04-20' AND occurred_at < DATE '2026-05-18'),
                   count(*) FILTER (WHERE occurred_at >= DATE '2026-05-18' AND occurred_at < DATE '2026-06-15')
            FROM incidents WHERE offense_category = 'shoplifting' AND location_text IS NOT NULL
              AND occurred_at >= DATE '2026-04-20' AND occurred_at < DATE '2026-06-15'
            GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1
            """
        ).fetchone()
    assert before + after >= 6
    store = State(app_env["ILP_STATE"])
    tasking_id = store.create_tasking(
        by="c",
        offense_category="shoplifting",
        area_level="location",
        area_id=location,
        owner="PC Hale",
        action="Store-detective liaison",
        due_date=dt.date(2026, 6, 1),
    )
    backdate(store, tasking_id, "2026-05-18T09:00:00")
    store.update_tasking(tasking_id, by="c", status="done", result_note="Two prolific shoplifters charged")

    at = open_page("taskings", "commander")
    listing = frame_with(at, "threat")
    assert listing["area"].tolist() == [f"Location {location}"]
    outcome = frame_with(at, "poisson_z").iloc[0]
    assert (outcome["before_incidents"], outcome["after_incidents"]) == (before, after)

    # Updating the owner keeps the location (it is not in the district/beat picker).
    at.selectbox(key="update_choice").set_value(tasking_id)
    rerun(at)
    assert at.selectbox(key=f"update_{tasking_id}_area").value == f"location:{location}"
    at.text_input(key=f"update_{tasking_id}_owner").set_value("PC Hale and DS Ito")
    at.button(key=f"update_{tasking_id}_save").click()
    rerun(at)
    saved = store.taskings().iloc[0]
    assert (saved["area_level"], saved["area_id"], saved["owner"]) == ("location", location, "PC Hale and DS Ito")


def test_a_tasking_names_a_known_kind_of_area(app_env):
    from ilp.state import TaskingError

    with pytest.raises(TaskingError, match="area level must be one of district, beat, location"):
        State(app_env["ILP_STATE"]).create_tasking(
            by="c",
            offense_category="robbery",
            area_level="street",
            area_id="Main St",
            owner="x",
            action="y",
            due_date=dt.date(2026, 12, 1),
        )


# ------------------------------------------------------------------------------------------ did it work?
def test_a_done_tasking_is_evaluated_against_a_comparison_area(app_env, demo_warehouse):
    """The planted intervention's beat, tasked on its start date: the page shows the library's evaluation
    (ratio and interval, WDD and z, harm prevented) beside the commander's result, draws target, buffer and
    comparison with the tasking marked, lists the caveats, and records the comparison it chose."""
    from pagetest import trace, values

    from ilp.analytics import evaluation

    store = State(app_env["ILP_STATE"])
    tasking_id = store.create_tasking(
        by="Ch. Supt. Vale",
        offense_category="burglary_residential",
        area_level="beat",
        area_id="4C",
        owner="Insp. Mensah",
        action="Target hardening",
        due_date=dt.date(2026, 6, 15),
    )
    backdate(store, tasking_id, "2026-05-18T09:00:00")
    store.update_tasking(tasking_id, by="Ch. Supt. Vale", status="done", result_note="Visits to 180 homes")
    with read_snapshot(demo_warehouse) as con:
        expected = evaluation.evaluate(
            con, level="beat", area_id="4C", categories=("burglary_residential",), start=dt.date(2026, 5, 18)
        )
    assert expected.status == "ok"

    at = open_page("taskings", "commander")
    row = frame_with(at, "ratio", "wdd_z").iloc[0]
    assert row["tasking"].startswith(f"No. {tasking_id} · Residential burglary · Beat 4C")
    assert row["result_note"] == "Visits to 180 homes"
    assert (row["ratio"], row["ratio_low"], row["ratio_high"]) == (
        pytest.approx(expected.ratio.ratio),
        pytest.approx(expected.ratio.low),
        pytest.approx(expected.ratio.high),
    )
    assert (row["wdd"], row["wdd_z"]) == (pytest.approx(expected.wdd.estimate), pytest.approx(expected.wdd.z))
    assert row["harm_prevented"] == pytest.approx(expected.harm_prevented)
    assert row["comparison"] == expected.comparison_area and row["reading"] == expected.reading
    assert "too few incidents for a 30% change" in row["flags"]  # at the test size the design is underpowered

    spec = chart_spec(at, "Residential burglary in beat 4C from 18 May 2026")
    assert [t["name"] for t in spec["data"]] == ["Target", "Buffer (displacement area)", "Comparison"]
    weekly = expected.series.set_index("week")
    assert values(trace(spec, "Target")["y"]) == weekly["target"].tolist()
    assert values(trace(spec, "Comparison")["y"]) == weekly["comparison"].tolist()
    assert spec["layout"]["yaxis"]["title"]["text"] == "Incidents a week (count)"
    assert any(shape.get("line", {}).get("dash") == "dash" for shape in spec["layout"]["shapes"])  # tasking date
    assert any(m.value.startswith("**Result recorded by the commander:** Visits to 180 homes") for m in at.markdown)
    shown = [w.value for w in at.warning] + [c.value for c in at.caption]
    assert any("Regression to the mean" in text for text in shown) and any("Pre-trend" in text for text in shown)
    assert any(text.startswith("Too few incidents to detect a 30% change") for text in [w.value for w in at.warning])

    recorded = store.audit_log(action=evaluation.RECORD_ACTION)
    assert len(recorded) == 1 and json.loads(recorded["parameters"].iloc[0])["comparison_area"] == row["comparison"]
    rerun(at)
    assert len(store.audit_log(action=evaluation.RECORD_ACTION)) == 1  # chosen once; later looks use the record


def test_a_done_tasking_whose_weeks_after_are_not_in_the_data_yet_says_so(app_env):
    store = State(app_env["ILP_STATE"])
    tasking_id = store.create_tasking(
        by="c",
        offense_category="robbery",
        area_level="beat",
        area_id="3D",
        owner="Insp. Okafor",
        action="Patrols",
        due_date=dt.date(2026, 11, 20),
    )
    backdate(store, tasking_id, "2026-10-26T09:00:00")
    store.update_tasking(tasking_id, by="c", status="done", result_note="Two arrests")
    at = open_page("taskings", "analyst")
    row = frame_with(at, "ratio", "wdd_z").iloc[0]
    assert row["reading"] == "Post window not yet covered" and pd.isna(row["ratio"])
    assert row["comparison"]  # chosen already, from the weeks before
    assert any("3 weeks of the 12-week post window are covered" in i.value for i in at.info)
