"""Analyst workbench page (pages/workbench.py) with AppTest over the demo city.

An analyst runs SELECT count(*) FROM incidents and sees the demo's real count (computed here with DuckDB);
an INSERT is refused on the page and the warehouse keeps its count; every query is in the audit log;
the quick chart draws the result; commanders, city leaders and administrators are refused.
"""

from __future__ import annotations

import csv
import io
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


# ------------------------------------------------------------------------------------- issue 8: size, audit, export
def session_bytes(at: AppTest) -> int:
    """The bytes of every DataFrame kept in the session (deep: the text in object columns too)."""
    import pandas as pd

    total = 0
    for value in at.session_state.to_dict().values():
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            frame = getattr(item, "frame", item)
            if isinstance(frame, pd.DataFrame):
                total += int(frame.memory_usage(deep=True).sum())
    return total


def test_an_oversized_result_shows_the_message_and_is_not_kept(app_env, monkeypatch):
    """One row of 2 MB over a 1 MB limit: a clear message, nothing of it in the session, the query audited."""
    from ilp.analytics import workbench

    monkeypatch.setattr(workbench, "RESULT_BYTE_LIMIT", 1024 * 1024, raising=False)
    at = run_sql(open_workbench(), "SELECT 1 AS small")
    assert "workbench_result" in at.session_state  # a first, small result ...
    at = run_sql(at, "SELECT repeat('x', 2000000) AS huge")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Result too large" in errors[0], errors
    assert "workbench_result" not in at.session_state  # ... is gone, and the huge one was never kept
    assert session_bytes(at) < 100_000
    assert not [frame for frame in frames(at) if "huge" in frame.columns]
    audit = State(app_env["ILP_STATE"]).audit_log(action="workbench_query")
    newest = json.loads(audit["parameters"].iloc[0])
    assert newest["sql"] == "SELECT repeat('x', 2000000) AS huge" and newest["outcome"] == "too large"
    assert newest["rows"] == 0


def test_a_wide_result_is_cut_at_the_byte_limit_on_the_page(app_env):
    """10,000 rows of 30 KB (300 MB, over Streamlit's 200 MB message limit): the page shows the first rows that
    fit in 50 MB, says so, and keeps no more than that in the session."""
    at = run_sql(open_workbench(), "SELECT repeat('x', 30000) AS s FROM range(10000)")
    assert not at.error, [e.value for e in at.error]
    shown = [frame for frame in frames(at) if list(frame.columns) == ["s"]]
    assert shown and 0 < len(shown[0]) < 10_000
    assert any("larger than the 50 MB" in w.value for w in at.warning), [w.value for w in at.warning]
    assert session_bytes(at) < 60 * 1024 * 1024
    audit = json.loads(State(app_env["ILP_STATE"]).audit_log(action="workbench_query")["parameters"].iloc[0])
    assert audit["rows"] == len(shown[0]) and audit["truncated"] is True and audit["outcome"] == "ok"


def test_every_query_is_audited_with_its_row_count(app_env, incidents_in_demo):
    at = run_sql(open_workbench(), "SELECT * FROM incidents LIMIT 123")
    run_sql(at, "EXPLAIN ANALYZE SELECT count(*) FROM incidents")
    assert len(at.error) == 1 and "EXPLAIN ANALYZE" in at.error[0].value
    audit = State(app_env["ILP_STATE"]).audit_log(action="workbench_query")
    entries = [json.loads(p) for p in audit["parameters"]][::-1]  # oldest first
    assert [(e["sql"], e["rows"], e["outcome"]) for e in entries] == [
        ("SELECT * FROM incidents LIMIT 123", 123, "ok"),
        ("EXPLAIN ANALYZE SELECT count(*) FROM incidents", 0, "refused"),
    ]


@pytest.fixture
def media_managers(monkeypatch):
    """Every MediaFileManager AppTest makes (one per run), to execute a deferred download as a click would."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.testing.v1 import app_test as app_test_module

    made = []

    class Recorded(MediaFileManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(app_test_module, "MediaFileManager", Recorded)
    return made


def test_the_download_is_deferred_audited_and_formula_safe(app_env, media_managers):
    """Nothing is stored before the click (a deferred file id, no URL); the click builds a formula-neutralised CSV
    and writes an 'export' with the query and the rows to the audit log."""
    at = run_sql(
        open_workbench(), "SELECT '=HYPERLINK(\"http://x\")' AS f, 2 AS n UNION ALL SELECT 'plain', 3 ORDER BY n"
    )
    button = at.get("download_button")[0].proto
    assert button.deferred_file_id and not button.url, (button.deferred_file_id, button.url)
    manager = next(m for m in reversed(media_managers) if button.deferred_file_id in m._deferred_callables)
    assert State(app_env["ILP_STATE"]).audit_log(action="export").empty  # rendering the button exported nothing
    url = manager.execute_deferred(button.deferred_file_id)  # what Streamlit does on the click
    data = manager.read_file(url.rsplit("/", 1)[-1].split(".")[0]).content.decode("utf-8")
    assert list(csv.reader(io.StringIO(data))) == [["f", "n"], ['\'=HYPERLINK("http://x")', "2"], ["plain", "3"]]
    export = State(app_env["ILP_STATE"]).audit_log(action="export")
    assert len(export) == 1
    details = json.loads(export["parameters"].iloc[0])
    assert details["what"] == "workbench_result.csv" and details["rows"] == 2 and "HYPERLINK" in details["sql"]
