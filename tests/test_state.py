"""App state (ilp.state.State, SQLite): taskings and their history, the append-only audit log, local users."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from ilp.state import State, TaskingError

TASKING = dict(
    offense_category="robbery",
    area_level="beat",
    area_id="3D",
    owner="Insp. Okafor",
    action="Patrols 15:00-18:00 near the schools",
    due_date=dt.date(2026, 12, 6),
)


@pytest.fixture
def state(tmp_path) -> State:
    return State(tmp_path / "state.sqlite")


def raw(state: State) -> sqlite3.Connection:
    return sqlite3.connect(state.path)


# ------------------------------------------------------------------------------------------ taskings
def test_create_tasking_stores_it_with_history_and_audit(state):
    tasking_id = state.create_tasking(by="Ch. Supt. Vale", role="commander", data_version="s00001-x", **TASKING)

    row = state.taskings().set_index("id").loc[tasking_id]
    assert row["offense_category"] == "robbery" and row["area_id"] == "3D" and row["status"] == "open"
    assert (
        row["due_date"] == "2026-12-06" and row["created_by"] == "Ch. Supt. Vale" and row["data_version"] == "s00001-x"
    )

    history = state.tasking_history(tasking_id)
    assert history["field"].tolist() == ["created"]
    assert json.loads(history["new_value"].iloc[0])["owner"] == "Insp. Okafor"

    audit = state.audit_log()
    assert audit["action"].tolist() == ["tasking_create"]
    assert audit["role"].tolist() == ["commander"] and audit["user"].tolist() == ["Ch. Supt. Vale"]
    assert json.loads(audit["parameters"].iloc[0])["tasking_id"] == tasking_id


def test_update_records_each_changed_field(state):
    tasking_id = state.create_tasking(by="a", **TASKING)
    changed = state.update_tasking(
        tasking_id, by="b", role="commander", status="in_progress", owner="DS Patel", action=TASKING["action"]
    )
    assert changed == ["owner", "status"]  # action is unchanged, so not recorded

    history = state.tasking_history(tasking_id)
    assert history["field"].tolist() == ["created", "owner", "status"]
    last = history.set_index("field")
    assert (last.loc["owner", "old_value"], last.loc["owner", "new_value"]) == ("Insp. Okafor", "DS Patel")
    assert (last.loc["status", "old_value"], last.loc["status", "new_value"]) == ("open", "in_progress")
    assert last.loc["status", "by"] == "b"

    row = state.taskings().set_index("id").loc[tasking_id]
    assert row["owner"] == "DS Patel" and row["updated_by"] == "b"
    assert state.audit_log()["action"].tolist() == ["tasking_update", "tasking_create"]
    assert state.update_tasking(tasking_id, by="b", owner="DS Patel") == []  # no change, no history, no audit
    assert len(state.tasking_history(tasking_id)) == 3


def test_done_without_a_result_note_is_refused(state):
    with pytest.raises(TaskingError, match="result note"):
        state.create_tasking(by="a", status="done", **TASKING)
    tasking_id = state.create_tasking(by="a", **TASKING)
    with pytest.raises(TaskingError, match="result note"):
        state.update_tasking(tasking_id, by="a", status="done", result_note="   ")
    assert state.taskings().set_index("id").loc[tasking_id, "status"] == "open"
    assert state.tasking_history(tasking_id)["field"].tolist() == ["created"]

    assert state.update_tasking(tasking_id, by="a", status="done", result_note="Two arrests; series stopped") == [
        "status",
        "result_note",
    ]
    assert state.taskings("done")["id"].tolist() == [tasking_id]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"owner": "  "}, "owner is required"),
        ({"status": "closed"}, "status must be one of"),
        ({"due_date": "next week"}, "not a date"),
    ],
)
def test_invalid_taskings_are_refused(state, change, message):
    with pytest.raises(TaskingError, match=message):
        state.create_tasking(by="a", **{**TASKING, **change})
    assert state.taskings().empty


def test_unknown_tasking_or_field_is_refused(state):
    with pytest.raises(TaskingError, match="no tasking"):
        state.update_tasking(99, by="a", status="open")
    tasking_id = state.create_tasking(by="a", **TASKING)
    with pytest.raises(TaskingError, match="unknown tasking fields"):
        state.update_tasking(tasking_id, by="a", created_by="someone else")


def test_due_date_may_be_a_datetime_or_text(state):
    first = state.create_tasking(by="a", **{**TASKING, "due_date": dt.datetime(2026, 12, 6, 17, 30)})
    second = state.create_tasking(by="a", **{**TASKING, "due_date": "2026-12-07"})
    dues = state.taskings().set_index("id")["due_date"]
    assert (dues[first], dues[second]) == ("2026-12-06", "2026-12-07")


def test_tasking_history_is_append_only(state):
    tasking_id = state.create_tasking(by="a", **TASKING)
    con = raw(state)
    try:
        for statement in (
            "UPDATE tasking_history SET by = 'x'",
            "DELETE FROM tasking_history",
            "INSERT OR REPLACE INTO tasking_history (id, tasking_id, at, by, field) VALUES (1, 1, 'a', 'x', 'y')",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(statement)
    finally:
        con.close()
    assert state.tasking_history(tasking_id)["by"].tolist() == ["a"]


# ------------------------------------------------------------------------------------------ audit log
def test_audit_log_records_and_filters(state):
    state.record(
        user="u1",
        role="analyst",
        action="page_view",
        page="brief",
        parameters={"week": "2026-11-09"},
        data_version="s1",
    )
    state.record(user="u1", role="analyst", action="workbench_query", page="workbench", parameters={"sql": "SELECT 1"})
    state.record(user="u2", role="admin", action="page_view", page="governance")
    log = state.audit_log()
    assert log["action"].tolist() == ["page_view", "workbench_query", "page_view"]  # newest first
    assert json.loads(log["parameters"].iloc[1]) == {"sql": "SELECT 1"}
    assert state.audit_log(action="page_view")["page"].tolist() == ["governance", "brief"]
    assert len(state.audit_log(limit=1)) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET user = 'someone else'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = 1",
        "INSERT OR REPLACE INTO audit_log (id, at, user, action) VALUES (1, '2020-01-01', 'forger', 'page_view')",
        "REPLACE INTO audit_log (id, at, user, action) VALUES (1, '2020-01-01', 'forger', 'page_view')",
    ],
)
def test_audit_log_is_append_only(state, statement):
    state.record(user="u1", role="analyst", action="page_view")
    con = raw(state)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(statement)
            con.commit()
    finally:
        con.close()
    log = state.audit_log()
    assert log["user"].tolist() == ["u1"] and log["action"].tolist() == ["page_view"]


def test_reopening_keeps_the_data_and_the_guards(state):
    state.record(user="u1", role="analyst", action="page_view")
    again = State(state.path)
    assert again.audit_log()["user"].tolist() == ["u1"]
    con = raw(again)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            con.execute("DELETE FROM audit_log")
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


# ------------------------------------------------------------------------------------------ users
def test_password_hash_verifies_and_refuses(state):
    state.add_user("jsmith", "correct horse battery", "analyst")
    assert state.verify_user("jsmith", "correct horse battery") == "analyst"
    assert state.verify_user("jsmith", "correct horse batterY") is None
    assert state.verify_user("nobody", "correct horse battery") is None

    con = raw(state)
    try:
        salt, stored = con.execute("SELECT salt, password_hash FROM users WHERE username = 'jsmith'").fetchone()
        con.execute("UPDATE users SET disabled = 1 WHERE username = 'jsmith'")
        con.commit()
    finally:
        con.close()
    assert "correct horse battery" not in stored and len(salt) == 32 and len(stored) == 128
    assert state.verify_user("jsmith", "correct horse battery") is None  # disabled


def test_same_password_gets_a_different_salt_and_hash(state):
    state.add_user("a", "the same password", "commander")
    state.add_user("b", "the same password", "commander")
    con = raw(state)
    try:
        rows = con.execute("SELECT salt, password_hash FROM users ORDER BY username").fetchall()
    finally:
        con.close()
    assert rows[0][0] != rows[1][0] and rows[0][1] != rows[1][1]


def test_weak_passwords_and_unknown_roles_are_refused(state):
    with pytest.raises(ValueError, match="at least 12"):
        state.add_user("a", "short", "analyst")
    with pytest.raises(ValueError, match="unknown role"):
        state.add_user("a", "long enough password", "superuser")
