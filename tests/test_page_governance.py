"""Data and governance page (pages/governance.py) with AppTest over the demo city.

Analysts and administrators see the demo's real ingest row, freshness, location quality, unmapped codes,
harm tables and the roles x pages matrix generated from ilp.access; administrators also see the audit
log with their page views; commanders and city leaders are refused.
"""

from __future__ import annotations

import pandas as pd
import pytest
from pagetest import dashboard_as, frame_with, open_page, page_file_as, read_snapshot, rerun

from ilp import access
from ilp.analytics import governance
from ilp.state import State

pytestmark = pytest.mark.usefixtures("entry_point_has_run")


@pytest.fixture(scope="module")
def demo_facts(demo_warehouse) -> dict:
    with read_snapshot(demo_warehouse) as con:
        ingest = con.execute(
            "SELECT ingest_id, kind, source, rows_read, loaded, rejected, snapshot FROM ingest_log ORDER BY ingest_id"
        ).fetchall()
        last_day, located, total = con.execute(
            "SELECT max(occurred_at)::DATE, count(*) FILTER (WHERE location_status = 'ok'), count(*) FROM incidents"
        ).fetchone()
        unmapped = con.execute(
            "SELECT offense_code, count(*) FROM incidents WHERE offense_category = 'unmapped' "
            "GROUP BY ALL ORDER BY 2 DESC"
        ).fetchall()
        weights = con.execute("SELECT count(*) FROM harm_weights").fetchone()[0]
        homicide = con.execute(
            "SELECT weight FROM harm_weights WHERE index_name = 'cchi' AND category = 'homicide'"
        ).fetchone()[0]
    return {
        "ingest": ingest,
        "last_day": last_day,
        "located": located,
        "total": total,
        "unmapped": unmapped,
        "weights": weights,
        "cchi_homicide": homicide,
    }


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_governance_shows_the_demos_ingest_and_quality(app_env, demo_facts, role):
    at = open_page("governance", role)
    assert at.title[0].value == "Data and governance"

    ingests = frame_with(at, "ingest_id", "rows_read")
    shown = [
        tuple(r)
        for r in ingests[["ingest_id", "kind", "source", "rows_read", "loaded", "rejected", "snapshot"]].itertuples(
            index=False
        )
    ]
    assert shown == demo_facts["ingest"][::-1]  # newest first
    assert ingests["rows_read"].iloc[0] == demo_facts["total"]

    freshness = frame_with(at, "dataset", "days_behind").set_index("dataset")
    assert freshness.loc["Incidents", "records"] == demo_facts["total"]
    assert pd.Timestamp(freshness.loc["Incidents", "last_date"]).date() == demo_facts["last_day"]

    located = frame_with(at, "share_located", "missing")
    assert located["located"].tolist() == [demo_facts["located"]]
    assert located["share_located"].iloc[0] == pytest.approx(demo_facts["located"] / demo_facts["total"])

    unmapped = frame_with(at, "offense_code", "description")
    assert [tuple(r) for r in unmapped[["offense_code", "incidents"]].itertuples(index=False)] == demo_facts["unmapped"]

    weights = frame_with(at, "label", "proactive", "cchi 2016")
    assert weights.set_index("label").loc["Homicide", "cchi 2016"] == demo_facts["cchi_homicide"]
    assert len(frame_with(at, "harm_table", "provenance")) == demo_facts["weights"]  # the full table

    assert any("No ingest has rejected a row" in s.value for s in at.success)


def test_roles_matrix_comes_from_the_access_table(app_env):
    at = open_page("governance", "analyst")
    matrix = frame_with(at, "Role", *(page.title for page in access.PAGES))
    assert matrix.equals(governance.access_matrix())
    cells = matrix.set_index("Role")
    assert cells.loc["Crime analyst", "Analyst workbench"] == "✓"
    assert cells.loc["City leader", "Analyst workbench"] == "—"
    assert cells.loc["Commander", "Taskings"] == "✓ edit" and cells.loc["Crime analyst", "Taskings"] == "✓ read"
    assert cells.loc["City leader", "Outcomes"] == "✓ aggregates only"
    assert list(cells.index) == list(access.ROLES.values())
    safeguards = " ".join(m.value for m in at.markdown)
    for name in (
        "Small-count suppression",
        "No person-level data for city leaders",
        "Audit log",
        "Read-only workbench",
        "Pseudonymous person keys",
    ):
        assert name in safeguards
    # An analyst does not see the audit log.
    assert "Audit log" not in [t.label for t in at.tabs]
    assert not [d for d in at.dataframe if "data_version" in d.value.columns]


def test_access_matrix_cells():
    for page in access.PAGES:
        for role in access.ROLES:
            cell = governance.access_cell(page, role)
            assert (cell == governance.NOT_ALLOWED) == (role not in page.roles)


def test_admin_sees_the_audit_log_with_page_views(app_env):
    at = open_page("governance", "admin")
    assert "Audit log" in [t.label for t in at.tabs]
    log = frame_with(at, "action", "data_version")
    views = log[log["action"] == "page_view"]
    assert "governance" in views["page"].tolist()
    assert set(views["user"]) == {"admin (demo)"} and set(views["role"]) == {"admin"}
    assert log["id"].tolist() == State(app_env["ILP_STATE"]).audit_log()["id"].tolist()

    at.selectbox(key="audit_action").set_value("page_view")
    rerun(at)
    filtered = frame_with(at, "action", "data_version")
    assert set(filtered["action"]) == {"page_view"} and len(filtered) >= 1


@pytest.mark.parametrize("role", ["commander", "city_leader"])
def test_other_roles_are_refused(app_env, role):
    at = page_file_as("governance", role, dashboard_as(role).session_state["ilp_context"])
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Access refused")
    assert not at.dataframe and not at.title
