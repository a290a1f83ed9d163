"""The audit log (ilp.state.State.record / audit_log / verify_audit, `ilp audit`): complete and tamper-evident.

The attacks are made as an attacker with the sqlite3 shell would make them: drop the append-only
triggers, then update, delete or insert rows directly in the file.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import threading

import pytest

from ilp.state import GENESIS_HASH, REDACTED, State, audit_row_hash, describe_parameters


@pytest.fixture
def state(tmp_path) -> State:
    return State(tmp_path / "app-state.sqlite")


def filled(state: State, rows: int = 5) -> State:
    for number in range(1, rows + 1):
        state.record(
            user=f"user{number}",
            role="analyst",
            action="page_view",
            page="brief",
            parameters={"week": f"2026-11-{number:02d}", "district": None},
            data_version="s00001",
        )
    return state


def tamper(state: State, *statements: str, params: tuple = ()) -> None:
    """What an attacker with the sqlite3 shell does: drop the guards, then change the file."""
    con = sqlite3.connect(state.path)
    try:
        for trigger in ("update", "delete", "replace"):
            con.execute(f"DROP TRIGGER IF EXISTS audit_log_append_only_{trigger}")
        for statement in statements:
            con.execute(statement, params if "?" in statement else ())
        con.commit()
    finally:
        con.close()


# ------------------------------------------------------------------------------------------ the chain
def test_every_row_is_chained_from_the_genesis_value(state):
    filled(state, 3)
    con = sqlite3.connect(state.path)
    try:
        rows = con.execute(
            "SELECT id, at, user, role, action, page, parameters, data_version, prev_hash, row_hash "
            "FROM audit_log ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    assert rows[0][8] == GENESIS_HASH
    for previous, row in zip(rows, rows[1:]):
        assert row[8] == previous[9]
    for row in rows:
        assert row[9] == audit_row_hash(row[8], row[:8])
    check = state.verify_audit()
    assert (check.ok, check.rows, check.first_broken_id) == (True, 3, None)
    assert check.reason == "3 rows, chain verified" and check.last_hash == rows[-1][9]


def test_an_empty_log_verifies(state):
    check = state.verify_audit()
    assert check.ok and check.rows == 0 and check.last_hash is None


def test_an_edited_row_is_found(state):
    filled(state)
    tamper(state, "UPDATE audit_log SET user = 'someone else' WHERE id = 3")
    check = state.verify_audit()
    assert not check.ok and check.first_broken_id == 3 and "changed" in check.reason


def test_an_edited_row_with_its_hash_recomputed_breaks_the_next_link(state):
    filled(state)
    con = sqlite3.connect(state.path)
    row = con.execute(
        "SELECT id, at, user, role, action, page, parameters, data_version, prev_hash FROM audit_log WHERE id = 3"
    ).fetchone()
    con.close()
    forged = (*row[:2], "someone else", *row[3:8])
    tamper(
        state,
        "UPDATE audit_log SET user = ?, row_hash = ? WHERE id = 3",
        params=("someone else", audit_row_hash(row[8], forged)),
    )
    check = state.verify_audit()
    assert not check.ok and check.first_broken_id == 4 and "does not follow row 3" in check.reason


def test_a_deleted_row_is_found(state):
    filled(state)
    tamper(state, "DELETE FROM audit_log WHERE id = 3")
    check = state.verify_audit()
    assert not check.ok and check.first_broken_id == 3
    assert "row 3 is missing" in check.reason and check.rows == 4


def test_a_deleted_first_row_is_found(state):
    filled(state)
    tamper(state, "DELETE FROM audit_log WHERE id = 1")
    check = state.verify_audit()
    assert not check.ok and check.first_broken_id == 1 and "missing" in check.reason


def test_rows_deleted_from_the_end_are_found(state):
    filled(state)
    tamper(state, "DELETE FROM audit_log WHERE id >= 4")
    check = state.verify_audit()
    assert not check.ok and check.first_broken_id == 4 and "from the end" in check.reason


def test_a_deleted_row_with_the_later_ids_closed_up_is_found(state):
    filled(state)
    tamper(state, "DELETE FROM audit_log WHERE id = 3", "UPDATE audit_log SET id = id - 1 WHERE id > 3")
    check = state.verify_audit()
    assert not check.ok and check.first_broken_id == 3


def test_an_inserted_row_is_found(state):
    filled(state)
    tamper(
        state,
        "INSERT INTO audit_log (at, user, role, action, page, parameters, data_version) "
        "VALUES ('2026-11-20T10:00:00', 'forger', 'admin', 'page_view', 'brief', '{}', 's00001')",
    )
    check = state.verify_audit()
    assert not check.ok and check.first_broken_id == 6 and "no hash" in check.reason


def test_an_inserted_row_with_a_made_up_hash_is_found(state):
    filled(state)
    row = (6, "2026-11-20T10:00:00", "forger", "admin", "page_view", "brief", "{}", "s00001")
    made_up = audit_row_hash(GENESIS_HASH, row)  # not chained to row 5
    tamper(
        state,
        "INSERT INTO audit_log (id, at, user, role, action, page, parameters, data_version, prev_hash, row_hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params=(*row, GENESIS_HASH, made_up),
    )
    check = state.verify_audit()
    assert not check.ok and check.first_broken_id == 6 and "does not follow row 5" in check.reason


def test_a_new_row_after_tampering_does_not_heal_the_chain(state):
    filled(state)
    tamper(state, "DELETE FROM audit_log WHERE id = 5")
    state.record(user="u", role="admin", action="page_view")  # id 6: the gap stays
    check = state.verify_audit()
    assert not check.ok and check.first_broken_id == 5


def test_dropped_guards_are_restored_and_the_restoring_is_recorded(state):
    filled(state, 2)
    tamper(state)  # drops the triggers, changes nothing
    assert "append-only triggers missing" in state.verify_audit().reason
    reopened = State(state.path)
    log = reopened.audit_log()
    assert log["action"].iloc[0] == "audit_guard_restored"
    assert "audit_log_append_only_delete" in json.loads(log["parameters"].iloc[0])["triggers"]
    check = reopened.verify_audit()
    assert check.ok and "warning" not in check.reason
    con = sqlite3.connect(reopened.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("DELETE FROM audit_log")
    finally:
        con.close()


# ------------------------------------------------------------------------------------------ concurrency
WRITER = """
import sys
from ilp.state import State
state = State(sys.argv[1])
for number in range(int(sys.argv[3])):
    state.record(user=sys.argv[2], role="analyst", action="page_view", parameters={"n": number})
"""


def test_two_processes_writing_at_once_keep_one_chain(state, tmp_path):
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(state.path), name, "200"], stderr=subprocess.PIPE)
        for name in ("server-a", "server-b")
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()
    log = state.audit_log(limit=None)
    assert len(log) == 400 and sorted(log["id"]) == list(range(1, 401))
    assert log["user"].value_counts().to_dict() == {"server-a": 200, "server-b": 200}
    check = state.verify_audit()
    assert check.ok and check.rows == 400, check.reason


def test_threads_writing_at_once_keep_one_chain(state):
    errors = []

    def write(name: str) -> None:
        try:
            own = State(state.path)  # as separate server sessions do
            for number in range(50):
                (own if number % 2 else state).record(
                    user=name, role="analyst", action="page_view", parameters={"n": number}
                )
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    check = state.verify_audit()
    assert check.ok and check.rows == 200, check.reason


# ------------------------------------------------------------------------------------------ contents
def test_secrets_never_reach_the_audit_log(state):
    state.record(
        user="u",
        role="admin",
        action="user_add",
        parameters={
            "username": "jsmith",
            "password": "correct horse battery",
            "new_password": "another secret value",
            "form": {"API_Token": "tok-123456789", "Client_Secret": "s3cr3t-value", "keep": "visible"},
            "headers": [{"Authorization": "Bearer abc.def.ghi"}],
        },
    )
    text = state.audit_log()["parameters"].iloc[0]
    for secret in ("correct horse battery", "another secret value", "tok-123456789", "s3cr3t-value", "abc.def"):
        assert secret not in text
    stored = json.loads(text)
    assert stored["password"] == REDACTED and stored["form"]["API_Token"] == REDACTED
    assert stored["form"]["keep"] == "visible" and stored["username"] == "jsmith"
    assert state.verify_audit().ok
    raw = b"".join(path.read_bytes() for path in state.path.parent.glob(state.path.name + "*"))
    assert b"correct horse battery" not in raw and b"tok-123456789" not in raw


def test_audit_log_filters_by_user_and_dates(state):
    filled(state, 3)
    tamper(
        state,
        "UPDATE audit_log SET at = '2026-01-31T23:59:59' WHERE id = 1",
        "UPDATE audit_log SET at = '2026-02-01T00:00:00' WHERE id = 2",
    )
    # (the chain is broken now; filtering still reads what is there)
    assert state.audit_log(user="user2")["id"].tolist() == [2]
    assert state.audit_log(until=dt.date(2026, 1, 31))["id"].tolist() == [1]
    assert state.audit_log(since=dt.date(2026, 2, 1), until="2026-02-01")["id"].tolist() == [2]
    assert state.audit_log(since="2026-02-02")["id"].tolist() == [3]
    assert state.audit_log(limit=None)["id"].tolist() == [3, 2, 1]


def test_parameters_read_as_key_value_pairs():
    assert describe_parameters('{"filters": {"week": "2026-11-09", "district": null}, "rows": 3}') == (
        "filters.week=2026-11-09, filters.district=, rows=3"
    )
    assert describe_parameters("{}") == "" and describe_parameters(None) == ""
    assert describe_parameters({"what": ["a", "b"]}) == "what=[a, b]"


# ------------------------------------------------------------------------------------------ ilp audit
@pytest.fixture
def warehouse_state(tmp_path, monkeypatch):
    """A warehouse folder whose state the CLI finds through --warehouse (no $ILP_STATE)."""
    monkeypatch.delenv("ILP_STATE", raising=False)
    directory = tmp_path / "warehouse"
    directory.mkdir()
    return directory, State.for_warehouse(directory)


def test_audit_list_json_shape(run_cli, warehouse_state):
    directory, state = warehouse_state
    filled(state, 3)
    state.record(user="chief", role="commander", action="export", page="brief", parameters={"what": "x.csv"})
    code, out, err = run_cli("audit", "list", "--json", warehouse=directory)
    assert code == 0, err
    rows = json.loads(out)
    assert [row["id"] for row in rows] == [4, 3, 2, 1]
    newest = rows[0]
    assert {"id", "time", "user", "role", "action", "details", "data_version"} <= set(newest)
    assert (newest["user"], newest["role"], newest["action"]) == ("chief", "commander", "export")
    assert newest["details"] == {"what": "x.csv"} and newest["time"].endswith("Z")
    assert rows[1]["details"] == {"week": "2026-11-03", "district": None} and rows[1]["data_version"] == "s00001"

    code, out, _ = run_cli("audit", "list", "--json", "--action", "page_view", "--user", "user2", warehouse=directory)
    assert [row["id"] for row in json.loads(out)] == [2]
    code, out, _ = run_cli("audit", "list", "--json", "--limit", "1", warehouse=directory)
    assert [row["id"] for row in json.loads(out)] == [4]
    today = dt.datetime.now(dt.UTC).date()
    code, out, _ = run_cli("audit", "list", "--json", "--until", today - dt.timedelta(days=1), warehouse=directory)
    assert json.loads(out) == []
    code, out, _ = run_cli("audit", "list", "--json", "--since", today, warehouse=directory)
    assert len(json.loads(out)) == 4


def test_audit_list_text_is_one_line_a_row(run_cli, warehouse_state):
    directory, state = warehouse_state
    filled(state, 2)
    code, out, _ = run_cli("audit", "list", warehouse=directory)
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert "user2 (analyst)" in lines[0] and "page_view" in lines[0] and "week=2026-11-02" in lines[0]
    assert "[snapshot s00001]" in lines[0]


def test_audit_verify_exit_codes(run_cli, warehouse_state):
    directory, state = warehouse_state
    filled(state, 4)
    code, out, _ = run_cli("audit", "verify", warehouse=directory)
    assert code == 0 and out.splitlines()[0] == "Audit log intact: 4 rows, chain verified"
    tamper(state, "UPDATE audit_log SET parameters = '{}' WHERE id = 2")
    code, out, _ = run_cli("audit", "verify", warehouse=directory)
    assert code == 1 and out.startswith("Audit log broken at row 2:") and "changed" in out


def test_audit_commands_need_an_existing_warehouse_folder(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("ILP_STATE", raising=False)
    code, out, err = run_cli("audit", "verify", warehouse=tmp_path / "typo")
    assert code == 1 and "No warehouse folder" in err and not (tmp_path / "typo").exists()


def test_every_action_the_code_writes_is_described():
    """The governance page and the README explain each audit action from ``ACTIONS``: an action written
    anywhere in the code (``action="..."``, ``.audit("...")``, evaluation's RECORD_ACTION) must be in it."""
    import re
    from pathlib import Path

    from ilp.state import ACTIONS

    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r'(?:\baction="|\.audit\(\s*"|RECORD_ACTION = ")([a-z_]+)"')
    written = set()
    for path in [root / "dashboard.py", *(root / "ilp").rglob("*.py"), *(root / "pages").glob("*.py")]:
        written |= set(pattern.findall(path.read_text(encoding="utf-8")))
    written -= {"store_true", "append", "ignore", "store", "count"}  # argparse's and warnings' actions
    assert "page_view" in written and "cache_warm_up" in written  # the scan finds them
    assert sorted(written - set(ACTIONS)) == []
