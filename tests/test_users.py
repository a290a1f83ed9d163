"""Local accounts and single-sign-on roles (ilp.state.State, `ilp users`): Argon2id hashes, lockout after
five failures, legacy scrypt hashes rehashed on sign-in, no password ever in the audit log or in clear in
the file, and every change audited with who made it."""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import io
import json
import sqlite3

import pytest

from ilp import state as state_module
from ilp.errors import UserError
from ilp.state import LOCKOUT_FAILURES, LOCKOUT_MINUTES, AccountError, SignIn, State

PASSWORD = "correct horse battery staple"
T0 = dt.datetime(2026, 11, 30, 9, 0, 0)


@pytest.fixture
def state(tmp_path) -> State:
    return State(tmp_path / "app-state.sqlite")


@pytest.fixture
def jsmith(state) -> State:
    state.add_user("jsmith", PASSWORD, "analyst", by="admin1")
    return state


def actions(state: State) -> list[str]:
    return state.audit_log(limit=None)["action"].tolist()[::-1]  # oldest first


def file_bytes(state: State) -> bytes:
    return b"".join(path.read_bytes() for path in state.path.parent.glob(state.path.name + "*"))


# ------------------------------------------------------------------------------------------ accounts
def test_add_user_lists_it_without_the_hash_and_audits_who_added_it(jsmith):
    users = jsmith.users()
    assert list(users.columns) == [
        "username",
        "role",
        "disabled",
        "created_at",
        "failed_attempts",
        "locked_until",
        "last_sign_in",
    ]
    row = users.iloc[0]
    assert (row["username"], row["role"], bool(row["disabled"]), row["failed_attempts"]) == (
        "jsmith",
        "analyst",
        False,
        0,
    )
    assert row["last_sign_in"] is None and row["locked_until"] is None
    log = jsmith.audit_log()
    assert log["action"].tolist() == ["user_add"] and log["user"].tolist() == ["admin1"]
    assert json.loads(log["parameters"].iloc[0]) == {"username": "jsmith", "role": "analyst"}
    assert jsmith.has_users() and jsmith.user_role("jsmith") == "analyst" and jsmith.user_role("JSMITH") == "analyst"


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        ("newuser", "short", "analyst", "at least 12 characters"),
        ("newuser", PASSWORD, "superuser", "unknown role 'superuser'"),
        ("JSmith", PASSWORD, "analyst", "already exists"),
        ("", PASSWORD, "analyst", "is not allowed"),
        ("a user", PASSWORD, "analyst", "is not allowed"),
    ],
)
def test_invalid_accounts_are_refused_with_a_clear_message(jsmith, username, password, role, message):
    with pytest.raises(AccountError, match=message) as caught:
        jsmith.add_user(username, password, role, by="admin1")
    assert isinstance(caught.value, UserError)
    assert jsmith.users()["username"].tolist() == ["jsmith"] and actions(jsmith) == ["user_add"]


def test_role_changes_disable_enable_and_reset_are_audited(jsmith):
    jsmith.set_role("jsmith", "commander", by="admin1", by_role="admin")
    assert jsmith.user_role("jsmith") == "commander"
    jsmith.disable_user("jsmith", by="admin2")
    assert jsmith.user_role("jsmith") is None and not jsmith.has_users()
    assert jsmith.authenticate("jsmith", PASSWORD).reason == "disabled"
    jsmith.enable_user("jsmith", by="admin2")
    assert jsmith.user_role("jsmith") == "commander"
    jsmith.reset_password("jsmith", "a brand new passphrase", by="admin1")
    assert jsmith.authenticate("jsmith", PASSWORD).reason == "wrong_password"
    assert jsmith.authenticate("jsmith", "a brand new passphrase").ok

    log = jsmith.audit_log(limit=None).iloc[::-1]
    changes = log[log["action"].str.startswith("user_")]
    assert changes["action"].tolist() == [
        "user_add",
        "user_role_change",
        "user_disable",
        "user_enable",
        "user_password_reset",
    ]
    assert changes["user"].tolist() == ["admin1", "admin1", "admin2", "admin2", "admin1"]
    assert changes["role"].tolist()[1] == "admin"
    assert json.loads(changes["parameters"].iloc[1]) == {
        "username": "jsmith",
        "old_role": "analyst",
        "role": "commander",
    }
    assert jsmith.verify_audit().ok


def test_changes_to_an_unknown_user_are_refused(state):
    for change in (
        lambda: state.set_role("ghost", "analyst", by="a"),
        lambda: state.disable_user("ghost", by="a"),
        lambda: state.enable_user("ghost", by="a"),
        lambda: state.reset_password("ghost", PASSWORD, by="a"),
    ):
        with pytest.raises(AccountError, match="no user 'ghost'"):
            change()
    assert state.user_role("ghost") is None and not state.has_users()


# ------------------------------------------------------------------------------------------ sign-in
def test_sign_in_succeeds_records_it_and_is_case_insensitive(jsmith):
    result = jsmith.authenticate("JSmith", PASSWORD, now=T0)
    assert result == SignIn(True, "analyst", "ok", None, "jsmith")
    assert jsmith.users().iloc[0]["last_sign_in"] == T0.isoformat()
    log = jsmith.audit_log()
    assert log["action"].iloc[0] == "sign_in" and log["user"].iloc[0] == "jsmith" and log["role"].iloc[0] == "analyst"


def test_unknown_user_is_refused_and_does_the_same_work(state, monkeypatch):
    checked = []
    real = state_module._password_matches
    monkeypatch.setattr(state_module, "_password_matches", lambda *a: checked.append(a[1]) or real(*a))
    result = state.authenticate("nobody", PASSWORD)
    assert result == SignIn(False, None, "unknown")
    assert len(checked) == 1 and checked[0].startswith("$argon2id$")  # a real Argon2id check, of a dummy hash
    log = state.audit_log()
    assert log["action"].tolist() == ["sign_in_failed"] and json.loads(log["parameters"].iloc[0]) == {
        "reason": "unknown"
    }


def test_five_failures_lock_the_account_for_fifteen_minutes(jsmith):
    assert (LOCKOUT_FAILURES, LOCKOUT_MINUTES) == (5, 15)
    for attempt in range(1, 5):
        result = jsmith.authenticate("jsmith", f"wrong password {attempt}", now=T0 + dt.timedelta(seconds=attempt))
        assert result.reason == "wrong_password" and result.locked_until is None
    assert jsmith.users().iloc[0]["failed_attempts"] == 4
    fifth = jsmith.authenticate("jsmith", "wrong password 5", now=T0 + dt.timedelta(seconds=5))
    unlock = T0 + dt.timedelta(seconds=5, minutes=15)
    assert (fifth.ok, fifth.reason, fifth.locked_until) == (False, "wrong_password", unlock)
    assert actions(jsmith)[-2:] == ["sign_in_failed", "lockout"]
    lockout = json.loads(jsmith.audit_log(action="lockout")["parameters"].iloc[0])
    assert lockout["failures"] == 5 and lockout["locked_until"] == unlock.isoformat()

    # Locked: even the right password is refused until the time passes.
    for moment in (unlock - dt.timedelta(minutes=14), unlock - dt.timedelta(seconds=1)):
        refused = jsmith.authenticate("jsmith", PASSWORD, now=moment)
        assert (refused.ok, refused.reason, refused.locked_until) == (False, "locked", unlock)
    assert jsmith.users().iloc[0]["locked_until"] == unlock.isoformat()

    released = jsmith.authenticate("jsmith", PASSWORD, now=unlock)
    assert released.ok and released.role == "analyst"
    row = jsmith.users().iloc[0]
    assert row["failed_attempts"] == 0 and row["locked_until"] is None
    assert jsmith.verify_audit().ok


def test_success_resets_the_count_and_an_expired_lock_starts_a_new_one(jsmith):
    for attempt in range(4):
        jsmith.authenticate("jsmith", "wrong password!", now=T0 + dt.timedelta(seconds=attempt))
    assert jsmith.authenticate("jsmith", PASSWORD, now=T0 + dt.timedelta(minutes=1)).ok
    for attempt in range(4):  # four more: not five in a row, so no lock
        result = jsmith.authenticate("jsmith", "wrong password!", now=T0 + dt.timedelta(minutes=2, seconds=attempt))
    assert result.locked_until is None and "lockout" not in actions(jsmith)

    for attempt in range(5, 7):
        result = jsmith.authenticate("jsmith", "wrong password!", now=T0 + dt.timedelta(minutes=3, seconds=attempt))
    assert result.reason == "locked"  # the fifth locked, the sixth found it locked
    later = T0 + dt.timedelta(hours=1)
    first_after = jsmith.authenticate("jsmith", "wrong password!", now=later)
    assert first_after.reason == "wrong_password" and first_after.locked_until is None
    assert jsmith.users().iloc[0]["failed_attempts"] == 1


def test_reset_password_clears_a_lockout(jsmith):
    for attempt in range(5):
        jsmith.authenticate("jsmith", "wrong password!", now=T0 + dt.timedelta(seconds=attempt))
    assert jsmith.authenticate("jsmith", PASSWORD, now=T0 + dt.timedelta(minutes=1)).reason == "locked"
    jsmith.reset_password("jsmith", "a brand new passphrase", by="admin1")
    assert jsmith.authenticate("jsmith", "a brand new passphrase", now=T0 + dt.timedelta(minutes=1)).ok


def test_a_legacy_scrypt_hash_verifies_and_is_rehashed_to_argon2id(state):
    salt = "ab" * 16
    legacy = hashlib.scrypt(PASSWORD.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1).hex()
    con = sqlite3.connect(state.path)
    con.execute(
        "INSERT INTO users (username, role, salt, password_hash, created_at) VALUES ('old', 'commander', ?, ?, ?)",
        (salt, legacy, "2025-01-01T00:00:00"),
    )
    con.commit()
    con.close()

    assert state.authenticate("old", "not the password").reason == "wrong_password"
    result = state.authenticate("old", PASSWORD)
    assert result.ok and result.role == "commander"
    con = sqlite3.connect(state.path)
    stored_salt, stored = con.execute("SELECT salt, password_hash FROM users WHERE username = 'old'").fetchone()
    con.close()
    assert stored.startswith("$argon2id$") and stored_salt == ""
    assert json.loads(state.audit_log(action="sign_in")["parameters"].iloc[0])["rehashed"] == "argon2id"
    assert state.authenticate("old", PASSWORD).ok  # the new hash verifies
    assert "rehashed" not in json.loads(state.audit_log(action="sign_in")["parameters"].iloc[0])


def test_passwords_are_never_in_the_audit_log_or_the_file_in_clear(jsmith):
    jsmith.authenticate("jsmith", PASSWORD)
    jsmith.authenticate("jsmith", "a wrong password typed")
    jsmith.authenticate("nobody", "a guess at a password")
    jsmith.reset_password("jsmith", "the replacement password", by="admin1")
    log = jsmith.audit_log(limit=None).to_json()
    raw = file_bytes(jsmith)
    for password in (PASSWORD, "a wrong password typed", "a guess at a password", "the replacement password"):
        assert password not in log
        assert password.encode() not in raw


# ------------------------------------------------------------------------------------------ single sign-on
def test_identity_roles_match_subject_first_then_email(state):
    state.assign_identity_role("Chief.Vale@Force.example", "commander", by="admin1")
    state.assign_identity_role("00u1ab2cd3", "analyst", by="admin1")
    assert state.identity_role(None, "chief.vale@force.example") == "commander"
    assert state.identity_role("unknown-sub", "CHIEF.VALE@force.EXAMPLE") == "commander"
    assert state.identity_role("00u1ab2cd3", "chief.vale@force.example") == "analyst"  # subject wins
    assert state.identity_role("00U1AB2CD3", None) is None  # subjects are exact
    assert state.identity_role(None, None) is None

    frame = state.identities().set_index("identity")
    assert frame.loc["chief.vale@force.example", "kind"] == "email"
    assert frame.loc["00u1ab2cd3", ["kind", "role", "assigned_by"]].tolist() == ["subject", "analyst", "admin1"]

    state.assign_identity_role("chief.vale@force.example", "admin", by="admin2")
    assert state.identity_role(None, "chief.vale@force.example") == "admin"
    state.remove_identity_role("CHIEF.VALE@force.example", by="admin2")
    assert state.identity_role(None, "chief.vale@force.example") is None
    with pytest.raises(AccountError, match="has no role"):
        state.remove_identity_role("chief.vale@force.example", by="admin2")
    with pytest.raises(AccountError, match="unknown role"):
        state.assign_identity_role("x@force.example", "god", by="admin2")

    log = state.audit_log(limit=None).iloc[::-1]
    assert log["action"].tolist() == [
        "identity_role_assign",
        "identity_role_assign",
        "identity_role_assign",
        "identity_role_remove",
    ]
    assert json.loads(log["parameters"].iloc[2])["old_role"] == "commander"


# ------------------------------------------------------------------------------------------ ilp users
@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    monkeypatch.delenv("ILP_STATE", raising=False)
    directory = tmp_path / "warehouse"
    directory.mkdir()
    return directory


def stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_users_commands_manage_accounts_and_audit_them(run_cli, warehouse, monkeypatch):
    cli_user = f"{getpass.getuser()} (cli)"
    stdin(monkeypatch, PASSWORD + "\n")
    code, out, err = run_cli("users", "add", "jsmith", "--role", "analyst", "--password-stdin", warehouse=warehouse)
    assert code == 0, err
    assert "Added user jsmith (analyst)" in out and PASSWORD not in out + err
    state = State.for_warehouse(warehouse)
    assert state.path == warehouse / "app-state.sqlite"
    assert state.authenticate("jsmith", PASSWORD).ok

    assert run_cli("users", "set-role", "jsmith", "commander", warehouse=warehouse)[0] == 0
    assert state.user_role("jsmith") == "commander"
    assert run_cli("users", "disable", "jsmith", warehouse=warehouse)[0] == 0
    assert state.user_role("jsmith") is None
    assert run_cli("users", "enable", "jsmith", warehouse=warehouse)[0] == 0
    stdin(monkeypatch, "a brand new passphrase\r\n")
    assert run_cli("users", "reset-password", "jsmith", "--password-stdin", warehouse=warehouse)[0] == 0
    assert state.authenticate("jsmith", "a brand new passphrase").ok
    assert run_cli("users", "assign-sso", "Chief@Force.example", "--role", "admin", warehouse=warehouse)[0] == 0
    assert state.identity_role(None, "chief@force.example") == "admin"

    code, out, _ = run_cli("users", "list", "--json", warehouse=warehouse)
    listing = json.loads(out)
    assert [u["username"] for u in listing["users"]] == ["jsmith"] and listing["users"][0]["role"] == "commander"
    assert "password_hash" not in listing["users"][0] and "salt" not in listing["users"][0]
    assert listing["sso"][0]["identity"] == "chief@force.example" and listing["sso"][0]["role"] == "admin"
    code, out, _ = run_cli("users", "list", warehouse=warehouse)
    assert "jsmith" in out and "commander" in out and "chief@force.example" in out and "$argon2" not in out

    assert run_cli("users", "remove-sso", "chief@force.example", warehouse=warehouse)[0] == 0
    assert state.identities().empty

    log = state.audit_log(limit=None)
    changes = log[log["action"].str.startswith(("user_", "identity_"))]
    assert set(changes["user"]) == {cli_user}
    assert changes["action"].tolist()[::-1] == [
        "user_add",
        "user_role_change",
        "user_disable",
        "user_enable",
        "user_password_reset",
        "identity_role_assign",
        "identity_role_remove",
    ]
    assert PASSWORD not in log.to_json() and "a brand new passphrase" not in log.to_json()


def test_users_add_asks_twice_at_the_terminal(run_cli, warehouse, monkeypatch):
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    code, _, err = run_cli("users", "add", "jsmith", "--role", "analyst", warehouse=warehouse)
    assert code == 1 and "passwords differ" in err and len(err.strip().splitlines()) == 1
    assert State.for_warehouse(warehouse).users().empty

    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert run_cli("users", "add", "jsmith", "--role", "analyst", warehouse=warehouse)[0] == 0


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (("users", "add", "jsmith", "--role", "analyst", "--password-stdin"), "short\n", "at least 12 characters"),
        (("users", "add", "jsmith", "--role", "analyst", "--password-stdin"), "\n", "empty line"),
        (("users", "set-role", "ghost", "analyst"), "", "no user 'ghost'"),
        (("users", "remove-sso", "nobody@force.example"), "", "has no role"),
    ],
)
def test_users_errors_are_one_line(run_cli, warehouse, monkeypatch, args, password, message):
    stdin(monkeypatch, password)
    code, out, err = run_cli(*args, warehouse=warehouse)
    assert code == 1 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_passwords_are_not_accepted_as_arguments(run_cli, warehouse):
    with pytest.raises(SystemExit):
        run_cli("users", "add", "jsmith", "--role", "analyst", "--password", PASSWORD, warehouse=warehouse)
