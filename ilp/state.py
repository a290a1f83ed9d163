"""App state in SQLite (WAL, synchronous=FULL): taskings and their history, the audit log, local users.

The only thing the dashboard writes. The interface is deliberately small (a handful of methods on
``State``) so a multi-replica deployment can swap in a PostgreSQL backend without touching pages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ilp import paths
from ilp.errors import UserError
from ilp.taskings import AREA_LEVELS as TASKING_AREA_LEVELS
from ilp.taskings import FIELDS as TASKING_FIELDS
from ilp.taskings import STATUSES as TASKING_STATUSES

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    role TEXT,
    action TEXT NOT NULL,          -- 'page_view', 'export', 'workbench_query', 'tasking_create', ...
    page TEXT,
    parameters TEXT,               -- JSON
    data_version TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- INSERT OR REPLACE with an existing id deletes the old row without firing the DELETE trigger.
CREATE TRIGGER IF NOT EXISTS audit_log_append_only_replace BEFORE INSERT ON audit_log
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE IF NOT EXISTS taskings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    offense_category TEXT NOT NULL,
    area_level TEXT NOT NULL,
    area_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    action TEXT NOT NULL,
    due_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
    result_note TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    data_version TEXT
);

CREATE TABLE IF NOT EXISTS tasking_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tasking_id INTEGER NOT NULL REFERENCES taskings(id),
    at TEXT NOT NULL,
    by TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT
);

CREATE TRIGGER IF NOT EXISTS tasking_history_append_only_update BEFORE UPDATE ON tasking_history
BEGIN SELECT RAISE(ABORT, 'tasking history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tasking_history_append_only_delete BEFORE DELETE ON tasking_history
BEGIN SELECT RAISE(ABORT, 'tasking history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tasking_history_append_only_replace BEFORE INSERT ON tasking_history
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM tasking_history WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'tasking history is append-only'); END;

CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    salt TEXT NOT NULL,
    password_hash TEXT NOT NULL,   -- scrypt(password, salt)
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
"""


class TaskingError(UserError, ValueError):
    pass


def default_path() -> Path:
    return Path(os.environ.get("ILP_STATE", paths.DATA_DIR / "state.sqlite"))


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


class State:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as con:
            con.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=10)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
            with con:
                yield con
        finally:
            con.close()

    # ------------------------------------------------------------------------------ audit
    def record(
        self,
        *,
        user: str,
        role: str | None,
        action: str,
        page: str | None = None,
        parameters: dict | None = None,
        data_version: str | None = None,
    ) -> None:
        with self._lock, self._connect() as con:
            con.execute(
                "INSERT INTO audit_log (at, user, role, action, page, parameters, data_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(),
                    user,
                    role,
                    action,
                    page,
                    json.dumps(parameters or {}, default=str, sort_keys=True),
                    data_version,
                ),
            )

    def audit_log(self, limit: int = 500, action: str | None = None) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT id, at, user, role, action, page, parameters, data_version FROM audit_log "
                "WHERE ? IS NULL OR action = ? ORDER BY id DESC LIMIT ?",
                con,
                params=(action, action, limit),
            )

    # ------------------------------------------------------------------------------ taskings
    def create_tasking(
        self,
        *,
        by: str,
        offense_category: str,
        area_level: str,
        area_id: str,
        owner: str,
        action: str,
        due_date: dt.date,
        status: str = "open",
        result_note: str = "",
        data_version: str | None = None,
        role: str | None = None,
    ) -> int:
        values = _validated_tasking(
            dict(
                offense_category=offense_category,
                area_level=area_level,
                area_id=area_id,
                owner=owner,
                action=action,
                due_date=due_date,
                status=status,
                result_note=result_note,
            )
        )
        now = _now()
        with self._lock, self._connect() as con:
            cursor = con.execute(
                "INSERT INTO taskings (created_at, created_by, offense_category, area_level, area_id, owner, action,"
                " due_date, status, result_note, updated_at, updated_by, data_version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, by, *[values[f] for f in TASKING_FIELDS], now, by, data_version),
            )
            tasking_id = cursor.lastrowid
            con.execute(
                "INSERT INTO tasking_history (tasking_id, at, by, field, old_value, new_value) VALUES (?, ?, ?, 'created', NULL, ?)",
                (tasking_id, now, by, json.dumps(values, default=str)),
            )
        self.record(
            user=by,
            role=role,
            action="tasking_create",
            page="taskings",
            parameters={"tasking_id": tasking_id, **values},
            data_version=data_version,
        )
        return tasking_id

    def update_tasking(
        self, tasking_id: int, *, by: str, data_version: str | None = None, role: str | None = None, **changes
    ) -> list[str]:
        unknown = set(changes) - set(TASKING_FIELDS)
        if unknown:
            raise TaskingError(f"unknown tasking fields: {', '.join(sorted(unknown))}")
        with self._lock, self._connect() as con:
            row = con.execute("SELECT * FROM taskings WHERE id = ?", (tasking_id,)).fetchone()
            if row is None:
                raise TaskingError(f"no tasking {tasking_id}")
            columns = [d[0] for d in con.execute("SELECT * FROM taskings LIMIT 0").description]
            current = dict(zip(columns, row))
            merged = _validated_tasking({f: changes.get(f, current[f]) for f in TASKING_FIELDS})
            changed = [f for f in TASKING_FIELDS if str(merged[f]) != str(current[f])]
            if not changed:
                return []
            now = _now()
            con.execute(
                f"UPDATE taskings SET {', '.join(f'{f} = ?' for f in changed)}, updated_at = ?, updated_by = ? WHERE id = ?",
                (*[merged[f] for f in changed], now, by, tasking_id),
            )
            con.executemany(
                "INSERT INTO tasking_history (tasking_id, at, by, field, old_value, new_value) VALUES (?, ?, ?, ?, ?, ?)",
                [(tasking_id, now, by, f, str(current[f]), str(merged[f])) for f in changed],
            )
        self.record(
            user=by,
            role=role,
            action="tasking_update",
            page="taskings",
            parameters={"tasking_id": tasking_id, **{f: merged[f] for f in changed}},
            data_version=data_version,
        )
        return changed

    def taskings(self, status: str | None = None) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT * FROM taskings WHERE ? IS NULL OR status = ? ORDER BY due_date, id",
                con,
                params=(status, status),
            )

    def tasking_history(self, tasking_id: int | None = None) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT * FROM tasking_history WHERE ? IS NULL OR tasking_id = ? ORDER BY id",
                con,
                params=(tasking_id, tasking_id),
            )

    # ------------------------------------------------------------------------------ users
    def add_user(self, username: str, password: str, role: str) -> None:
        from ilp.access import ROLES

        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        if len(password) < 12:
            raise ValueError("passwords must be at least 12 characters")
        salt = secrets.token_hex(16)
        with self._lock, self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO users (username, role, salt, password_hash, created_at, disabled) VALUES (?, ?, ?, ?, ?, 0)",
                (username, role, salt, _hash_password(password, salt), _now()),
            )

    def verify_user(self, username: str, password: str) -> str | None:
        """The user's role when the password matches, else None (constant-time comparison)."""
        with self._connect() as con:
            row = con.execute(
                "SELECT role, salt, password_hash FROM users WHERE username = ? AND disabled = 0", (username,)
            ).fetchone()
        if row is None:
            _hash_password(password, "0" * 32)  # same work either way
            return None
        role, salt, stored = row
        return role if hmac.compare_digest(_hash_password(password, salt), stored) else None


def _hash_password(password: str, salt: str) -> str:
    return hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1).hex()


def _validated_tasking(values: dict) -> dict:
    for key in ("offense_category", "area_level", "area_id", "owner", "action"):
        text = str(values.get(key) or "").strip()
        if not text:
            raise TaskingError(f"{key.replace('_', ' ')} is required")
        values[key] = text
    if values["area_level"] not in TASKING_AREA_LEVELS:
        raise TaskingError(f"area level must be one of {', '.join(TASKING_AREA_LEVELS)}, not {values['area_level']!r}")
    due = values["due_date"]
    if isinstance(due, dt.datetime):
        due = due.date()
    if isinstance(due, str):
        try:
            due = dt.date.fromisoformat(due)
        except ValueError:
            raise TaskingError(f"due date {due!r} is not a date (YYYY-MM-DD)") from None
    values["due_date"] = due.isoformat()
    if values["status"] not in TASKING_STATUSES:
        raise TaskingError(f"status must be one of {', '.join(TASKING_STATUSES)}")
    values["result_note"] = str(values.get("result_note") or "")
    if values["status"] == "done" and not values["result_note"].strip():
        raise TaskingError("a tasking marked done needs a result note: what came of it closes the intelligence cycle")
    return values
