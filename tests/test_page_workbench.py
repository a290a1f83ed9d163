"""Analyst workbench page (pages/workbench.py) with AppTest over the demo city.

An analyst runs SELECT count(*) FROM incidents and sees the demo's real count (computed here with DuckDB);
an INSERT is refused on the page and the warehouse keeps its count; every query is in the audit log;
the quick chart draws the result; commanders, city leaders and administrators are refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from ilp.state import State

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "pages" / "workbench.py"
TIMEOUT = 120


class _EntryPointHasRun(PagesManager):
    """Run switched-to pages inside dashboard.py's frame (see tests/test_page_access.py for the why)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def entry_point_has_run(monkeypatch):
    monkeypatch.setattr(PagesManager, "uses_pages_directory", PagesManager.uses_pages_directory)
    monkeypatch.setattr(app_test_module, "PagesManager", _EntryPointHasRun)


def dashboard_as(role: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=TIMEOUT)
    at.query_params["role"] = role
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def open_workbench() -> AppTest:
    at = dashboard_as("analyst")
    at.switch_page(str(PAGE))
    at.run()
    assert not at.exception, "\n".join(e.message + "\n" + "\n".join(e.stack) for e in at.exception)
    return at


def run_sql(at: AppTest, sql: str) -> AppTest:
    at.text_area(key="workbench_sql").set_value(sql)
    at.button(key="workbench_run").click()
    at.run()
    assert not at.exception, "\n".join(e.message for e in at.exception)
    return at


@pytest.fixture(scope="module")
def incidents_in_demo(demo_warehouse) -> int:
    snapshot = demo_warehouse / (demo_warehouse / "CURRENT").read_text(encoding="utf-8").strip()
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{snapshot}' AS demo (READ_ONLY)")
        return con.execute("SELECT count(*) FROM demo.incidents").fetchone()[0]
    finally:
        con.close()


def test_count_of_incidents_is_the_demos_real_count(app_env, incidents_in_demo):
    at = open_workbench()
    assert at.title[0].value == "Analyst workbench"
    assert "10,000 rows" in at.caption[0].value and "10 seconds" in at.caption[0].value
    run_sql(at, "SELECT count(*) AS incidents FROM incidents")
    assert not at.error, [e.value for e in at.error]
    results = [d.value for d in at.dataframe if list(d.value.columns) == ["incidents"]]
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
    assert not [d for d in at.dataframe if "source_id" in d.value.columns and len(d.value) == 1]
    # The refused statement is audited too, and the warehouse is untouched.
    audit = State(app_env["ILP_STATE"]).audit_log(action="workbench_query")
    assert "INSERT" in json.loads(audit["parameters"].iloc[0])["sql"]
    at = run_sql(at, "SELECT count(*) AS incidents FROM incidents")
    assert [d.value for d in at.dataframe if list(d.value.columns) == ["incidents"]][0]["incidents"].tolist() == [
        incidents_in_demo]


def test_reading_a_file_is_refused_on_the_page(app_env):
    at = run_sql(open_workbench(), "SELECT * FROM read_csv('/etc/passwd')")
    assert len(at.error) == 1 and "cannot read or write files" in at.error[0].value


def test_example_query_and_quick_chart(app_env, demo_warehouse):
    at = open_workbench()
    at.selectbox(key="workbench_example").set_value("Incidents by offence category (with labels)")
    at.run()
    assert at.text_area(key="workbench_sql").value.startswith("SELECT c.label AS offence")
    at.button(key="workbench_run").click()
    at.run()
    assert not at.exception and not at.error
    result = [d.value for d in at.dataframe if "offence" in d.value.columns][0]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["type"] == "bar"
    assert spec["layout"]["title"]["text"] == "incidents by offence"
    assert spec["layout"]["yaxis"]["title"]["text"].startswith("incidents (")
    assert len(spec["data"][0]["x"]) == len(result)
    assert "Other theft" in result["offence"].tolist()  # labels, not codes


def test_schema_expander_lists_the_incidents_columns(app_env):
    at = open_workbench()
    columns = [d.value for d in at.dataframe if list(d.value.columns) == ["column", "type"]][0]
    assert {"occurred_at", "offense_category", "district", "beat"} <= set(columns["column"])


@pytest.mark.parametrize("role", ["commander", "city_leader", "admin"])
def test_other_roles_are_refused(app_env, role):
    context = dashboard_as(role).session_state["ilp_context"]
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state["ilp_role"] = role
    at.session_state["ilp_context"] = context
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Access refused")
    assert not at.text_area and not at.dataframe and not at.title
