"""Analyst workbench page (pages/workbench.py) with AppTest over the demo city.

An analyst runs SELECT count(*) FROM incidents and sees the demo's real count (computed here with DuckDB);
an INSERT is refused on the page and the warehouse keeps its count; every query is in the audit log;
the quick chart draws the result; commanders, city leaders and administrators are refused.
"""

from __future__ import annotations

import json

import pytest
from pagetest import chart_specs, dashboard_as, frames, open_page, page_file_as, read_snapshot, rerun
from streamlit.testing.v1 import AppTest

from ilp.state import State

pytestmark = pytest.mark.usefixtures("entry_point_has_run")


def open_workbench() -> AppTest:
    return open_page("workbench", "analyst")


def run_sql(at: AppTest, sql: str) -> AppTest:
    at.text_area(key="workbench_sql").set_value(sql)
    at.button(key="workbench_run").click()
    return rerun(at)


@pytest.fixture(scope="module")
def incidents_in_demo(demo_warehouse) -> int:
    with read_snapshot(demo_warehouse) as con:
        return con.execute("SELECT count(*) FROM incidents").fetchone()[0]


def test_count_of_incidents_is_the_demos_real_count(app_env, incidents_in_demo):
    at = open_workbench()
    assert at.title[0].value == "Analyst workbench"
    assert "10,000 rows" in at.caption[0].value and "10 seconds" in at.caption[0].value
    run_sql(at, "SELECT count(*) AS incidents FROM incidents")
    assert not at.error, [e.value for e in at.error]
    results = [frame for frame in frames(at) if list(frame.columns) == ["incidents"]]
    assert results and results[0]["incidents"].tolist() == [incidents_in_demo]
    assert any(c.value.startswith("1 row in") for c in at.caption)
    assert at.get("download_button"), "no CSV download under the result"

    audit = State(app_env["ILP_STATE"]).audit_log(action="workbench_query")
    assert [json.loads(p)["sql"] for p in audit["parameters"]] == ["SELECT count(*) AS incidents FROM incidents"]
    assert audit["role"].tolist() == ["analyst"]


def test_insert_is_refused_on_the_page(app_env, incidents_in_demo):
    at = run_sql(open_workbench(), "INSERT INTO incidents (source, source_id) VALUES ('x', 'y')")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "INSERT" in errors[0] and "read-only" in errors[0]
    assert not [frame for frame in frames(at) if "source_id" in frame.columns and len(frame) == 1]
    # The refused statement is audited too, and the warehouse is untouched.
    audit = State(app_env["ILP_STATE"]).audit_log(action="workbench_query")
    assert "INSERT" in json.loads(audit["parameters"].iloc[0])["sql"]
    at = run_sql(at, "SELECT count(*) AS incidents FROM incidents")
    assert [frame for frame in frames(at) if list(frame.columns) == ["incidents"]][0]["incidents"].tolist() == [
        incidents_in_demo
    ]


def test_reading_a_file_is_refused_on_the_page(app_env):
    at = run_sql(open_workbench(), "SELECT * FROM read_csv('/etc/passwd')")
    assert len(at.error) == 1 and "cannot read or write files" in at.error[0].value


def test_example_query_and_quick_chart(app_env, demo_warehouse):
    at = open_workbench()
    at.selectbox(key="workbench_example").set_value("Incidents by offence category (with labels)")
    at.run()
    assert at.text_area(key="workbench_sql").value.startswith("SELECT c.label AS offence")
    at.button(key="workbench_run").click()
    rerun(at)
    assert not at.error
    result = [frame for frame in frames(at) if "offence" in frame.columns][0]
    spec = chart_specs(at)[0]
    assert spec["data"][0]["type"] == "bar"
    assert spec["layout"]["title"]["text"] == "incidents by offence"
    assert spec["layout"]["yaxis"]["title"]["text"].startswith("incidents (")
    assert len(spec["data"][0]["x"]) == len(result)
    assert "Other theft" in result["offence"].tolist()  # labels, not codes


def test_schema_expander_lists_the_incidents_columns(app_env):
    at = open_workbench()
    columns = [frame for frame in frames(at) if list(frame.columns) == ["column", "type"]][0]
    assert {"occurred_at", "offense_category", "district", "beat"} <= set(columns["column"])


@pytest.mark.parametrize("role", ["commander", "city_leader", "admin"])
def test_other_roles_are_refused(app_env, role):
    at = page_file_as("workbench", role, dashboard_as(role).session_state["ilp_context"])
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Access refused")
    assert not at.text_area and not at.dataframe and not at.title
