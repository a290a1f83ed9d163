"""Data and governance page (pages/governance.py) with AppTest over the demo city.

Analysts and administrators see the demo's real ingest row, freshness, location quality, unmapped codes,
harm tables and the roles x pages matrix generated from ilp.access; administrators also see the audit
log with their page views; commanders and city leaders are refused.
"""

from __future__ import annotations

import sqlite3

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


def test_admin_filters_the_audit_log_and_verifies_the_chain(app_env):
    store = State(app_env["ILP_STATE"])
    store.record(user="chief", role="commander", action="export", page="brief", parameters={"what": "threats.csv"})
    at = open_page("governance", "admin")
    log = frame_with(at, "action", "data_version")
    export = log[log["action"] == "export"].iloc[0]
    assert export["user"] == "chief" and export["parameters"] == "what=threats.csv"  # readable, not JSON
    assert log["id"].tolist() == sorted(log["id"], reverse=True)  # newest first

    at.selectbox(key="audit_user").set_value("chief")
    rerun(at)
    assert frame_with(at, "action", "data_version")["user"].tolist() == ["chief"]
    at.selectbox(key="audit_user").set_value("(all users)")
    yesterday = pd.Timestamp.now(tz="UTC").date() - pd.Timedelta(days=1)
    at.date_input(key="audit_dates").set_value((yesterday - pd.Timedelta(days=7), yesterday))
    rerun(at)
    assert frame_with(at, "action", "data_version").empty  # every entry was written today

    at.button(key="audit_verify").click()
    rerun(at)
    assert any(s.value.startswith("Audit log intact:") for s in at.success), [s.value for s in at.success]

    con = sqlite3.connect(store.path)
    con.execute("DROP TRIGGER audit_log_append_only_update")
    con.execute("UPDATE audit_log SET user = 'someone else' WHERE action = 'export'")
    con.commit()
    con.close()
    broken_id = int(export["id"])
    at.button(key="audit_verify").click()
    rerun(at)
    assert [e.value for e in at.error if e.value.startswith(f"Audit log broken at entry No. {broken_id}:")]


def test_admin_manages_users_and_sso_roles_through_the_state(app_env):
    store = State(app_env["ILP_STATE"])
    at = open_page("governance", "admin")
    assert "Users" in [t.label for t in at.tabs]
    assert any("No local accounts" in i.value for i in at.info)
    for key in ("user_add_password", "user_add_repeat", "user_reset_password", "user_reset_repeat"):
        assert at.text_input(key=key).proto.type == at.text_input(key=key).proto.PASSWORD

    def add(name: str, password: str, repeat: str | None = None) -> None:
        at.text_input(key="user_add_name").input(name)
        at.selectbox(key="user_add_role").set_value("analyst")
        at.text_input(key="user_add_password").input(password)
        at.text_input(key="user_add_repeat").input(password if repeat is None else repeat)
        at.button(key="user_add_save").click()
        rerun(at)

    add("jsmith", "short")
    assert [e.value for e in at.error if "at least 12 characters" in e.value] and store.users().empty
    add("jsmith", "correct horse battery", "correct horse batterX")
    assert [e.value for e in at.error if "passwords differ" in e.value] and store.users().empty
    add("jsmith", "correct horse battery")
    assert not at.error and "Added jsmith (Crime analyst)." in [s.value for s in at.success]
    accounts = frame_with(at, "username", "failed_attempts")
    assert accounts["username"].tolist() == ["jsmith"]
    assert not {"password_hash", "salt"} & set(accounts.columns)
    assert store.authenticate("jsmith", "correct horse battery").role == "analyst"

    at.selectbox(key="user_role_name").set_value("jsmith")
    at.selectbox(key="user_role_role").set_value("commander")
    at.button(key="user_role_save").click()
    rerun(at)
    assert store.user_role("jsmith") == "commander"

    at.selectbox(key="user_toggle_name").set_value("jsmith")
    at.button(key="user_disable_save").click()
    rerun(at)
    assert store.user_role("jsmith") is None
    assert frame_with(at, "username", "failed_attempts")["disabled"].tolist() == [True]
    at.button(key="user_enable_save").click()
    rerun(at)
    assert store.user_role("jsmith") == "commander"

    at.selectbox(key="user_reset_name").set_value("jsmith")
    at.text_input(key="user_reset_password").input("a brand new passphrase")
    at.text_input(key="user_reset_repeat").input("a brand new passphrase")
    at.button(key="user_reset_save").click()
    rerun(at)
    assert store.authenticate("jsmith", "a brand new passphrase").ok

    at.text_input(key="sso_identity").input("Chief.Vale@Force.example")
    at.selectbox(key="sso_role").set_value("admin")
    at.button(key="sso_save").click()
    rerun(at)
    assert store.identity_role(None, "chief.vale@force.example") == "admin"
    assert frame_with(at, "identity", "assigned_by")["role"].tolist() == ["admin"]
    at.selectbox(key="sso_remove_identity").set_value("chief.vale@force.example")
    at.button(key="sso_remove_save").click()
    rerun(at)
    assert store.identities().empty

    log = store.audit_log(limit=None)
    changes = log[log["action"].str.startswith(("user_", "identity_"))]
    assert changes["action"].tolist()[::-1] == [
        "user_add",
        "user_role_change",
        "user_disable",
        "user_enable",
        "user_password_reset",
        "identity_role_assign",
        "identity_role_remove",
    ]
    assert set(changes["user"]) == {"admin (demo)"} and set(changes["role"]) == {"admin"}
    everything = log.to_json()
    assert "correct horse battery" not in everything and "a brand new passphrase" not in everything
    assert store.verify_audit().ok


def test_only_admins_see_the_users_tab(app_env):
    at = open_page("governance", "analyst")
    assert "Users" not in [t.label for t in at.tabs]
    assert not [d for d in at.dataframe if "failed_attempts" in d.value.columns]
