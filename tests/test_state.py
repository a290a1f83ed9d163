"""App state (ilp.state.State, SQLite): taskings and their history, the append-only audit log, local users."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from ilp.state import State, StateMigrationError, TaskingError, default_path, state_path

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
    state.add_user("jsmith", "correct horse battery", "analyst", by="admin")
    assert state.authenticate("jsmith", "correct horse battery").role == "analyst"
    assert state.authenticate("jsmith", "correct horse batterY").role is None
    assert state.authenticate("nobody", "correct horse battery").role is None

    con = raw(state)
    try:
        salt, stored = con.execute("SELECT salt, password_hash FROM users WHERE username = 'jsmith'").fetchone()
        con.execute("UPDATE users SET disabled = 1 WHERE username = 'jsmith'")
        con.commit()
    finally:
        con.close()
    # Argon2id: the PHC string holds its own random salt; the password is not in it.
    assert "correct horse battery" not in stored and salt == "" and stored.startswith("$argon2id$")
    assert state.authenticate("jsmith", "correct horse battery").role is None  # disabled


def test_same_password_gets_a_different_salt_and_hash(state):
    state.add_user("a", "the same password", "commander", by="admin")
    state.add_user("b", "the same password", "commander", by="admin")
    con = raw(state)
    try:
        rows = con.execute("SELECT password_hash FROM users ORDER BY username").fetchall()
    finally:
        con.close()
    salts = [row[0].split("$")[4] for row in rows]  # $argon2id$v=19$m=...,t=...,p=...$SALT$HASH
    assert salts[0] != salts[1] and rows[0][0] != rows[1][0]


def test_weak_passwords_and_unknown_roles_are_refused(state):
    with pytest.raises(ValueError, match="at least 12"):
        state.add_user("a", "short", "analyst", by="admin")
    with pytest.raises(ValueError, match="unknown role"):
        state.add_user("a", "long enough password", "superuser", by="admin")


# ------------------------------------------------------------------------------------------ where state lives
def test_each_warehouse_has_its_own_state_file(tmp_path, monkeypatch):
    monkeypatch.delenv("ILP_STATE", raising=False)
    demo, real = tmp_path / "demo", tmp_path / "real"
    assert state_path(demo) == demo / "app-state.sqlite"
    demo_state, real_state = State.for_warehouse(demo), State.for_warehouse(real)
    assert (demo_state.path, real_state.path) == (demo / "app-state.sqlite", real / "app-state.sqlite")
    demo_state.create_tasking(by="a", **TASKING)
    demo_state.add_user("demo.user", "long enough password", "analyst", by="admin")
    assert real_state.taskings().empty and real_state.audit_log().empty and not real_state.has_users()
    assert len(demo_state.taskings()) == 1 and demo_state.has_users()


def test_ilp_state_overrides_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("ILP_STATE", str(tmp_path / "elsewhere.sqlite"))
    assert State.for_warehouse(tmp_path / "warehouse").path == tmp_path / "elsewhere.sqlite"
    assert default_path() == tmp_path / "elsewhere.sqlite"
    monkeypatch.delenv("ILP_STATE")
    monkeypatch.setenv("ILP_WAREHOUSE", str(tmp_path / "w"))
    assert default_path() == tmp_path / "w" / "app-state.sqlite"


def test_ilp_brief_audits_into_the_warehouses_own_state(run_cli, demo_warehouse, tmp_path, monkeypatch):
    import shutil

    monkeypatch.delenv("ILP_STATE", raising=False)
    warehouse = tmp_path / "warehouse"
    shutil.copytree(demo_warehouse, warehouse)
    code, _, err = run_cli("brief", "--out", tmp_path / "brief.html", warehouse=warehouse)
    assert code == 0, err
    assert State.for_warehouse(warehouse).audit_log()["action"].tolist() == ["brief_generated"]


# ------------------------------------------------------------------------------------------ older state files
# The first release's schema (data/state.sqlite): no meta table, no hashes, scrypt users.
FIRST_RELEASE_SCHEMA = """
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, user TEXT NOT NULL, role TEXT,
    action TEXT NOT NULL, page TEXT, parameters TEXT, data_version TEXT
);
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE taskings (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, created_by TEXT NOT NULL,
    offense_category TEXT NOT NULL, area_level TEXT NOT NULL, area_id TEXT NOT NULL, owner TEXT NOT NULL,
    action TEXT NOT NULL, due_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
    result_note TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL, updated_by TEXT NOT NULL, data_version TEXT
);
CREATE TABLE tasking_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tasking_id INTEGER NOT NULL REFERENCES taskings(id), at TEXT NOT NULL,
    by TEXT NOT NULL, field TEXT NOT NULL, old_value TEXT, new_value TEXT
);
CREATE TABLE users (
    username TEXT PRIMARY KEY, role TEXT NOT NULL, salt TEXT NOT NULL, password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0
);
"""
OLD_PASSWORD = "the old workstation password"


def first_release_file(path) -> None:
    import hashlib

    con = sqlite3.connect(path)
    con.executescript(FIRST_RELEASE_SCHEMA)
    for number in range(1, 4):
        con.execute(
            "INSERT INTO audit_log (at, user, role, action, page, parameters, data_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (f"2025-06-0{number}T10:00:00", "Ch. Supt. Vale", "commander", "page_view", "brief", '{"n": 1}', "s1"),
        )
    con.execute(
        "INSERT INTO taskings (created_at, created_by, offense_category, area_level, area_id, owner, action, due_date,"
        " status, updated_at, updated_by) VALUES ('2025-06-01T10:00:00', 'Vale', 'robbery', 'beat', '3D', 'Okafor',"
        " 'Patrols', '2025-06-30', 'open', '2025-06-01T10:00:00', 'Vale')"
    )
    con.execute(
        "INSERT INTO tasking_history (tasking_id, at, by, field, new_value) VALUES (1, '2025-06-01T10:00:00', 'Vale',"
        " 'created', '{}')"
    )
    salt = "cd" * 16
    stored = hashlib.scrypt(OLD_PASSWORD.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1).hex()
    con.execute(
        "INSERT INTO users VALUES ('vale', 'commander', ?, ?, '2025-06-01T09:00:00', 0)",
        (salt, stored),
    )
    con.commit()
    con.close()


def test_a_first_release_file_is_upgraded_in_place_once(tmp_path):
    path = tmp_path / "state.sqlite"
    first_release_file(path)
    state = State(path)
    log = state.audit_log(limit=None)
    assert log["action"].tolist() == ["audit_chain_backfill", "page_view", "page_view", "page_view"]
    backfill = json.loads(log["parameters"].iloc[0])
    assert backfill == {"rows": 3, "first_id": 1, "last_id": 3}
    assert state.verify_audit().ok and state.verify_audit().rows == 4
    assert len(state.taskings()) == 1 and state.users()["failed_attempts"].tolist() == [0]
    assert state.authenticate("vale", OLD_PASSWORD).ok  # scrypt, then rehashed

    again = State(path)  # reopened: nothing is chained or recorded twice
    assert again.audit_log(action="audit_chain_backfill")["id"].tolist() == [4]
    assert again.verify_audit().ok
    con = raw(again)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("UPDATE audit_log SET user = 'x'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("INSERT OR REPLACE INTO audit_log (id, at, user, action) VALUES (1, 'a', 'x', 'y')")
    finally:
        con.close()


def test_a_row_inserted_without_a_hash_after_the_upgrade_is_not_chained_on_reopening(tmp_path):
    path = tmp_path / "state.sqlite"
    first_release_file(path)
    State(path)
    con = sqlite3.connect(path)
    con.execute("INSERT INTO audit_log (at, user, action) VALUES ('2025-07-01T00:00:00', 'forger', 'page_view')")
    con.commit()
    con.close()
    check = State(path).verify_audit()
    assert not check.ok and check.first_broken_id == 5 and "no hash" in check.reason


# ------------------------------------------------------------------------------------------ ilp state migrate
def test_state_migrate_copies_everything_and_rechains_the_audit(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("ILP_STATE", raising=False)
    old = tmp_path / "data" / "state.sqlite"
    old.parent.mkdir()
    first_release_file(old)
    before = old.read_bytes()
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()

    code, out, err = run_cli("state", "migrate", "--from", old, warehouse=warehouse)
    assert code == 0, err
    assert "1 taskings" in out and "3 audit rows" in out and "1 users" in out
    assert old.read_bytes() == before  # the source is only read

    state = State.for_warehouse(warehouse)
    log = state.audit_log(limit=None)
    assert log["action"].tolist() == ["state_migrate", "page_view", "page_view", "page_view"]
    assert log["at"].tolist()[1:] == ["2025-06-03T10:00:00", "2025-06-02T10:00:00", "2025-06-01T10:00:00"]
    migrate = json.loads(log["parameters"].iloc[0])
    assert migrate["from"] == str(old.resolve()) and migrate["audit_ids"] == [1, 3]
    assert (migrate["audit_rows"], migrate["taskings"], migrate["users"]) == (3, 1, 1)
    assert "no hashes" in migrate["source_chain"]
    assert state.verify_audit().ok
    assert state.taskings()["owner"].tolist() == ["Okafor"] and len(state.tasking_history(1)) == 1
    assert state.authenticate("vale", OLD_PASSWORD).role == "commander"
    # new taskings continue after the imported ids
    assert state.create_tasking(by="a", **TASKING) == 2

    code, _, err = run_cli("state", "migrate", "--from", old, warehouse=warehouse)
    assert code == 1 and "already holds 2 taskings" in err and "nothing was copied" in err
    assert len(state.audit_log(limit=None)) == 6  # 4, sign_in, tasking_create; nothing from the refusal


def test_state_migrate_refuses_a_target_with_audit_rows(tmp_path):
    old = tmp_path / "old.sqlite"
    first_release_file(old)
    state = State(tmp_path / "app-state.sqlite")
    state.record(user="u", role="admin", action="page_view")
    with pytest.raises(StateMigrationError, match="1 audit rows"):
        state.migrate_from(old, by="me")
    assert state.taskings().empty and len(state.audit_log()) == 1
    with pytest.raises(StateMigrationError, match="no state file"):
        state.migrate_from(tmp_path / "missing.sqlite", by="me")
    with pytest.raises(StateMigrationError, match="own state file"):
        state.migrate_from(state.path, by="me")


def test_state_migrate_from_a_chained_file_checks_its_chain(tmp_path):
    old = State(tmp_path / "old.sqlite")
    old.create_tasking(by="a", **TASKING)
    new = State(tmp_path / "new.sqlite")
    summary = new.migrate_from(old.path, by="me")
    assert summary["source_chain"] == "intact" and summary["audit_rows"] == 1
    assert new.audit_log()["action"].tolist() == ["state_migrate", "tasking_create"]
    assert new.verify_audit().ok


def test_state_backup_is_a_consistent_audited_copy(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("ILP_STATE", raising=False)
    warehouse = tmp_path / "warehouse"
    state = State.for_warehouse(warehouse)
    state.create_tasking(by="a", **TASKING)
    out = tmp_path / "backups" / "state-2026-11-30.sqlite"
    code, text, err = run_cli("state", "backup", "--out", out, warehouse=warehouse)
    assert code == 0, err
    copy = State(out)
    assert len(copy.taskings()) == 1 and copy.verify_audit().ok
    assert copy.audit_log()["action"].tolist() == ["state_backup", "tasking_create"]
    code, _, err = run_cli("state", "backup", "--out", out, warehouse=warehouse)
    assert code == 1 and "never overwrites" in err
