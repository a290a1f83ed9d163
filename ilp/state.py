"""App state in SQLite (WAL, synchronous=FULL): taskings and their history, the audit log, local users and
single-sign-on role assignments. One state file per warehouse (``<warehouse>/app-state.sqlite``), so a demo
city and a real warehouse on one machine never share taskings, users or audit.

The only thing the dashboard writes. The interface is deliberately small (a handful of methods on
``State``) so a multi-replica deployment can swap in a PostgreSQL backend without touching pages.

The audit log is append-only (triggers refuse UPDATE, DELETE and REPLACE) and hash-chained: each row
stores the previous row's hash and its own, a SHA-256 over that and a canonical serialisation of its
fields, so ``verify_audit`` finds a row edited, deleted or inserted by someone who went round the
triggers with the sqlite3 shell. Rows are appended by ``record`` (the one writer) inside one
``BEGIN IMMEDIATE`` transaction, so concurrent server processes and threads never fork the chain.

Local accounts keep Argon2id hashes only (legacy scrypt hashes verify and are rehashed on the next
sign-in); five consecutive failures lock an account for fifteen minutes. No password, token or secret
reaches the audit log: ``record`` redacts parameters whose names say they hold one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ilp.access import ROLES
from ilp.errors import UserError
from ilp.taskings import AREA_LEVELS as TASKING_AREA_LEVELS
from ilp.taskings import FIELDS as TASKING_FIELDS
from ilp.taskings import STATUSES as TASKING_STATUSES

STATE_FILE = "app-state.sqlite"
SCHEMA_VERSION = "2"  # 1: the first release (no meta table); 2: hash-chained audit, lockout, SSO roles
GENESIS_HASH = "0" * 64  # the first audit row chains from this
LOCKOUT_FAILURES = 5
LOCKOUT_MINUTES = 15
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
REDACTED = "[redacted]"

# The actions the app writes (README "Serving a team: state and audit"). ``record`` accepts others too.
ACTIONS = {
    "sign_in": "a user signed in",
    "sign_in_failed": "a sign-in was refused (reason: unknown, wrong_password, locked, disabled; SSO: no role)",
    "lockout": f"{LOCKOUT_FAILURES} failures in a row locked a local account for {LOCKOUT_MINUTES} minutes",
    "sign_out": "a user signed out",
    "session_expired": "a session ended by time-out",
    "page_view": "a page was shown (with its filters)",
    "page_refused": "a signed-in user asked for a page their role may not see (by link, typed address or bookmark)",
    "cache_warm_up": "ilp serve visited every page as every role to fill its caches, after a start or a new "
    "snapshot (ilp.warm_up; its visits write no page views, and nothing is shown to anyone)",
    "export": "a table was downloaded",
    "brief_generated": "a command brief was written or downloaded",
    "workbench_query": "an analyst ran SQL in the workbench",
    "tasking_create": "a tasking was created",
    "tasking_update": "a tasking was changed",
    "user_add": "a local account was added",
    "user_role_change": "a local account's role was changed",
    "user_disable": "a local account was disabled",
    "user_enable": "a local account was enabled again",
    "user_password_reset": "a local account's password was reset (and any lockout cleared)",
    "identity_role_assign": "a single-sign-on identity was given a role",
    "identity_role_remove": "a single-sign-on identity's role was removed",
    "state_migrate": "taskings, history, audit and users were imported from another state file",
    "state_backup": "the state file was copied to a backup",
    "audit_chain_backfill": "rows written before the hash chain existed were chained (once, on upgrade)",
    "audit_guard_restored": "append-only triggers were missing (dropped outside the dashboard) and were re-created",
}

_TABLES = (
    """CREATE TABLE IF NOT EXISTS state_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,              -- UTC, ISO 8601 to the second
    user TEXT NOT NULL,
    role TEXT,
    action TEXT NOT NULL,          -- ACTIONS
    page TEXT,
    parameters TEXT,               -- JSON, secrets redacted
    data_version TEXT,
    prev_hash TEXT,                -- the previous row's row_hash (GENESIS_HASH for the first row)
    row_hash TEXT                  -- sha256(prev_hash, canonical row): see audit_row_hash
)""",
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)",
    """CREATE TABLE IF NOT EXISTS taskings (
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
)""",
    """CREATE TABLE IF NOT EXISTS tasking_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tasking_id INTEGER NOT NULL REFERENCES taskings(id),
    at TEXT NOT NULL,
    by TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT
)""",
    """CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    salt TEXT NOT NULL DEFAULT '', -- legacy scrypt salt (hex); '' for Argon2id, whose hash string holds its salt
    password_hash TEXT NOT NULL,   -- Argon2id PHC string ($argon2id$...), or a legacy scrypt hex digest
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    last_sign_in TEXT
)""",
    """CREATE TABLE IF NOT EXISTS identity_roles (
    identity TEXT PRIMARY KEY,     -- an OIDC subject as issued, or an email address in lower case
    kind TEXT NOT NULL CHECK (kind IN ('subject', 'email')),
    role TEXT NOT NULL,
    assigned_at TEXT NOT NULL,
    assigned_by TEXT NOT NULL
)""",
)

# Columns added since the first release: an older file gets them on open.
_ADDED_COLUMNS = {
    "audit_log": (("prev_hash", "TEXT"), ("row_hash", "TEXT")),
    "users": (
        ("failed_attempts", "INTEGER NOT NULL DEFAULT 0"),
        ("locked_until", "TEXT"),
        ("last_sign_in", "TEXT"),
    ),
}


def _append_only(table: str, what: str) -> dict[str, str]:
    return {
        f"{table}_append_only_update": f"CREATE TRIGGER IF NOT EXISTS {table}_append_only_update BEFORE UPDATE ON "
        f"{table} BEGIN SELECT RAISE(ABORT, '{what} is append-only'); END",
        f"{table}_append_only_delete": f"CREATE TRIGGER IF NOT EXISTS {table}_append_only_delete BEFORE DELETE ON "
        f"{table} BEGIN SELECT RAISE(ABORT, '{what} is append-only'); END",
        # INSERT OR REPLACE with an existing id deletes the old row without firing the DELETE trigger.
        f"{table}_append_only_replace": f"CREATE TRIGGER IF NOT EXISTS {table}_append_only_replace BEFORE INSERT ON "
        f"{table} WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id) "
        f"BEGIN SELECT RAISE(ABORT, '{what} is append-only'); END",
    }


AUDIT_TRIGGERS = _append_only("audit_log", "the audit log")
_TRIGGERS = {**AUDIT_TRIGGERS, **_append_only("tasking_history", "tasking history")}

# Parameter names that may hold a credential: their values never reach the audit log.
_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)|pwd|token|secret|credential|api_?key|private_?key|authori[sz]ation|cookie|bearer",
    re.IGNORECASE,
)
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


class TaskingError(UserError, ValueError):
    pass


class AccountError(UserError, ValueError):
    """A user-account or identity change that cannot be made (unknown role, short password, duplicate...)."""


class StateMigrationError(UserError):
    """``ilp state migrate`` or ``ilp state backup`` cannot proceed; nothing was changed."""


@dataclass(frozen=True)
class AuditCheck:
    """The result of ``State.verify_audit``: ``ok`` when every row is present, unchanged and chained."""

    ok: bool
    rows: int  # rows in the log
    first_broken_id: int | None  # the first row missing, changed or out of chain
    reason: str
    last_hash: str | None = None  # the newest row's hash: note it elsewhere to detect rows removed from the end


@dataclass(frozen=True)
class SignIn:
    """The result of ``State.authenticate``. ``reason``: 'ok', 'unknown', 'wrong_password', 'locked' or
    'disabled'. ``locked_until`` (UTC, naive) is set when the account is locked after this attempt."""

    ok: bool
    role: str | None
    reason: str
    locked_until: dt.datetime | None = None
    username: str | None = None  # the account's name as stored (sign-in is case-insensitive)


# ------------------------------------------------------------------------------------------ where it lives
def state_path(warehouse_directory: str | os.PathLike) -> Path:
    """The state file of the warehouse in ``warehouse_directory``."""
    return Path(warehouse_directory) / STATE_FILE


def default_path() -> Path:
    """``$ILP_STATE``, else the state file of the default warehouse (``$ILP_WAREHOUSE`` or data/warehouse)."""
    from ilp.warehouse import default_directory

    return Path(os.environ.get("ILP_STATE") or state_path(default_directory()))


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _utc(moment: dt.datetime | None) -> dt.datetime:
    """A naive UTC datetime (what the state file stores) for ``moment`` (now when None)."""
    if moment is None:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _parse_time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


# ------------------------------------------------------------------------------------------ audit chain
def audit_row_hash(prev_hash: str, row: Iterable) -> str:
    """SHA-256 over the previous row's hash and the canonical serialisation of ``row``: the fields
    (id, at, user, role, action, page, parameters, data_version) as a compact JSON array."""
    canonical = json.dumps(list(row), ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def without_secrets(value):
    """``value`` with every mapping entry whose key names a password, token, secret, key or credential
    replaced by ``[redacted]``, at any depth."""
    if isinstance(value, dict):
        return {
            key: (REDACTED if _SECRET_NAME.search(str(key)) else without_secrets(item)) for key, item in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [without_secrets(item) for item in value]
    return value


def describe_parameters(parameters: str | dict | None) -> str:
    """An audit row's parameters for a person: ``key=value`` pairs, nested keys joined with dots."""
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters) if parameters else {}
        except ValueError:
            return parameters
    if not parameters:
        return ""
    if not isinstance(parameters, dict):
        return json.dumps(parameters, ensure_ascii=False, default=str)

    def flat(prefix: str, value) -> list[str]:
        if isinstance(value, dict) and value:
            return [part for key, item in value.items() for part in flat(f"{prefix}{key}.", item)]
        if isinstance(value, list):
            value = "[" + ", ".join(str(item) for item in value) + "]"
        return [f"{prefix[:-1]}={'' if value is None else value}"]

    return ", ".join(flat("", parameters))


_AUDIT_FIELDS = "id, at, user, role, action, page, parameters, data_version"


def _check_chain(con: sqlite3.Connection) -> AuditCheck:
    """Walk the audit log of ``con`` in id order and report the first row that is missing, changed or
    out of chain."""
    (rows,) = con.execute("SELECT count(*) FROM audit_log").fetchone()
    previous_id, previous_hash = 0, GENESIS_HASH
    for row in con.execute(f"SELECT {_AUDIT_FIELDS}, prev_hash, row_hash FROM audit_log ORDER BY id"):
        *fields, prev_hash, row_hash = row
        row_id = fields[0]
        if row_id != previous_id + 1:
            missing = previous_id + 1
            gap = f"rows {missing} to {row_id - 1} are" if row_id - 1 > missing else f"row {missing} is"
            return AuditCheck(False, rows, missing, f"{gap} missing: ids jump from {previous_id} to {row_id} (deleted)")
        if not row_hash or not prev_hash:
            return AuditCheck(False, rows, row_id, f"row {row_id} has no hash: it was written outside the dashboard")
        if audit_row_hash(prev_hash, fields) != row_hash:
            return AuditCheck(
                False,
                rows,
                row_id,
                f"row {row_id} was changed after it was written: its content does not match its hash",
            )
        if prev_hash != previous_hash:
            return AuditCheck(
                False,
                rows,
                row_id,
                f"row {row_id} does not follow row {previous_id}: the chain is broken (a row before it was "
                "removed, replaced or re-chained, or this row was inserted)",
            )
        previous_id, previous_hash = row_id, row_hash
    sequence = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
    if sequence and sequence[0] > previous_id:
        return AuditCheck(
            False,
            rows,
            previous_id + 1,
            f"rows {previous_id + 1} to {sequence[0]} are missing: the log ends at {previous_id} but ids were "
            f"given up to {sequence[0]} (deleted from the end)",
        )
    reason = f"{rows} rows, chain verified"
    present = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    missing_guards = sorted(set(AUDIT_TRIGGERS) - present)
    if missing_guards:
        reason += f" (warning: append-only triggers missing: {', '.join(missing_guards)})"
    return AuditCheck(True, rows, None, reason, previous_hash if rows else None)


# ------------------------------------------------------------------------------------------ passwords
_hasher = None


def _argon2():
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()  # Argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
    return _hasher


def _hash_password(password: str) -> str:
    return _argon2().hash(password)


def _scrypt(password: str, salt: str) -> str:
    """The first release's hash, kept to verify (and then replace) old accounts."""
    return hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1).hex()


def _password_matches(password: str, stored: str, salt: str) -> bool:
    if stored.startswith("$argon2"):
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return _argon2().verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        return hmac.compare_digest(_scrypt(password, salt), stored)
    except ValueError:  # a salt that is not hex: no password can match
        return False


def _needs_rehash(stored: str) -> bool:
    return not stored.startswith("$argon2id$") or _argon2().check_needs_rehash(stored)


# The hash of a random password nobody kept, with the hasher's parameters: checking a password against it
# costs what checking a real account's does.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$PAg0riYXr2hInJR1W8gvpA$ac4tg+fKha47niRytYM8lzd8iSair8PqoHRW3pgsJf4"


def _same_work_as_a_real_check(password: str) -> None:
    """Verify against a hash no password matches, so an unknown user takes as long as a known one."""
    _password_matches(password, _DUMMY_HASH, "")


def _valid_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"passwords must be at least {MIN_PASSWORD_LENGTH} characters; choose a longer one")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"passwords may be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _valid_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return role


def _identity(identity: str) -> tuple[str, str]:
    """(identity as stored, kind): an email (contains '@') in lower case, else an OIDC subject as issued."""
    text = (identity or "").strip()
    if not text:
        raise AccountError("give an email address or an OIDC subject (the identity provider's 'sub' claim)")
    return (text.lower(), "email") if "@" in text else (text, "subject")


# ------------------------------------------------------------------------------------------ the state
class State:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        if not self._is_current():
            self._upgrade()

    @classmethod
    def for_warehouse(cls, directory: str | os.PathLike) -> State:
        """The state of the warehouse in ``directory`` (``$ILP_STATE`` overrides the path)."""
        return cls(os.environ.get("ILP_STATE") or state_path(directory))

    # ---------------------------------------------------------------------------- connections
    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot of the file."""
        con = self._open()
        try:
            con.execute("BEGIN")
            yield con
        finally:
            if con.in_transaction:
                con.execute("ROLLBACK")
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock is taken before anything is read, so no two
        writers (threads or processes) compute from the same state."""
        with self._lock:
            con = self._open()
            try:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                con.close()

    # ---------------------------------------------------------------------------- schema
    def _is_current(self) -> bool:
        try:
            with self._read() as con:
                version = con.execute("SELECT value FROM state_meta WHERE key = 'schema_version'").fetchone()
                triggers = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        except sqlite3.OperationalError:  # no state_meta yet: a new or first-release file
            return False
        return version == (SCHEMA_VERSION,) and set(_TRIGGERS) <= triggers

    def _upgrade(self) -> None:
        """Create the tables, or bring an older file up to date in place: add columns, re-create missing
        guards, and chain audit rows written before the chain existed (once; recorded in the log)."""
        with self._write() as con:
            existing = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            initialised = "state_meta" in existing
            for statement in _TABLES:
                con.execute(statement)
            for table, columns in _ADDED_COLUMNS.items():
                have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
                for name, declaration in columns:
                    if name not in have:
                        con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
            triggers = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            restored = sorted(name for name in _TRIGGERS if name not in triggers) if initialised else []
            for statement in _TRIGGERS.values():
                con.execute(statement)
            meta = dict(con.execute("SELECT key, value FROM state_meta"))
            if "audit_chain" not in meta:
                unchained = [
                    row
                    for row in con.execute(f"SELECT {_AUDIT_FIELDS}, row_hash FROM audit_log ORDER BY id").fetchall()
                    if row[-1] is None
                ]
                if unchained:
                    self._backfill_chain(con, [row[:-1] for row in unchained])
                    note = f"chained {len(unchained)} earlier rows on {_now()}"
                else:
                    note = "chained from the first row"
                con.execute("INSERT INTO state_meta (key, value) VALUES ('audit_chain', ?)", (note,))
            if restored:
                _append_audit(
                    con,
                    user="ilp (state upgrade)",
                    role=None,
                    action="audit_guard_restored",
                    parameters={"triggers": restored},
                )
            con.execute(
                "INSERT INTO state_meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (SCHEMA_VERSION,),
            )

    @staticmethod
    def _backfill_chain(con: sqlite3.Connection, rows: list[tuple]) -> None:
        """Chain a first-release log's rows (all without hashes) from the genesis value, then record it."""
        con.execute("DROP TRIGGER IF EXISTS audit_log_append_only_update")
        previous = GENESIS_HASH
        for row in rows:
            row_hash = audit_row_hash(previous, row)
            con.execute("UPDATE audit_log SET prev_hash = ?, row_hash = ? WHERE id = ?", (previous, row_hash, row[0]))
            previous = row_hash
        con.execute(AUDIT_TRIGGERS["audit_log_append_only_update"])
        _append_audit(
            con,
            user="ilp (state upgrade)",
            role=None,
            action="audit_chain_backfill",
            parameters={"rows": len(rows), "first_id": rows[0][0], "last_id": rows[-1][0]},
        )

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
    ) -> int:
        """Append one row to the audit log (the one writer) and return its id. Parameters whose names say
        they hold a password, token or secret are redacted."""
        with self._write() as con:
            return _append_audit(
                con, user=user, role=role, action=action, page=page, parameters=parameters, data_version=data_version
            )

    def audit_log(
        self,
        limit: int | None = 500,
        action: str | None = None,
        since: dt.date | str | None = None,
        until: dt.date | str | None = None,
        user: str | None = None,
    ) -> pd.DataFrame:
        """The newest ``limit`` rows (None: all), newest first; ``since``/``until`` are dates (UTC), both
        included."""
        start = _as_date(since, "since")
        end = _as_date(until, "until")
        with self._read() as con:
            return pd.read_sql_query(
                f"SELECT {_AUDIT_FIELDS} FROM audit_log "
                "WHERE (? IS NULL OR action = ?) AND (? IS NULL OR user = ?) AND (? IS NULL OR at >= ?) "
                "AND (? IS NULL OR at < ?) ORDER BY id DESC LIMIT ?",
                con,
                params=(
                    action,
                    action,
                    user,
                    user,
                    start and start.isoformat(),
                    start and start.isoformat(),
                    end and (end + dt.timedelta(days=1)).isoformat(),
                    end and (end + dt.timedelta(days=1)).isoformat(),
                    -1 if limit is None else int(limit),
                ),
            )

    def audit_users(self) -> list[str]:
        """Every user name that appears in the audit log, sorted."""
        with self._read() as con:
            return [name for (name,) in con.execute("SELECT DISTINCT user FROM audit_log ORDER BY user")]

    def audit_actions(self) -> list[str]:
        """Every action that appears in the audit log, sorted."""
        with self._read() as con:
            return [name for (name,) in con.execute("SELECT DISTINCT action FROM audit_log ORDER BY action")]

    def verify_audit(self) -> AuditCheck:
        """Check every row of the audit log against its hash and its predecessor's."""
        with self._read() as con:
            return _check_chain(con)

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
        with self._write() as con:
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
            _append_audit(
                con,
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
        with self._write() as con:
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
            _append_audit(
                con,
                user=by,
                role=role,
                action="tasking_update",
                page="taskings",
                parameters={"tasking_id": tasking_id, **{f: merged[f] for f in changed}},
                data_version=data_version,
            )
        return changed

    def taskings(self, status: str | None = None) -> pd.DataFrame:
        with self._read() as con:
            return pd.read_sql_query(
                "SELECT * FROM taskings WHERE ? IS NULL OR status = ? ORDER BY due_date, id",
                con,
                params=(status, status),
            )

    def tasking_history(self, tasking_id: int | None = None) -> pd.DataFrame:
        with self._read() as con:
            return pd.read_sql_query(
                "SELECT * FROM tasking_history WHERE ? IS NULL OR tasking_id = ? ORDER BY id",
                con,
                params=(tasking_id, tasking_id),
            )

    # ------------------------------------------------------------------------------ local accounts
    def add_user(self, username: str, password: str, role: str, *, by: str, by_role: str | None = None) -> None:
        name = (username or "").strip()
        if not _USERNAME.match(name):
            raise AccountError(
                f"user name {username!r} is not allowed: use 1 to 64 letters, digits or . _ @ + - (starting with "
                "a letter or digit)"
            )
        _valid_role(role)
        password_hash = _hash_password(_valid_password(password))
        with self._write() as con:
            taken = con.execute("SELECT username FROM users WHERE lower(username) = lower(?)", (name,)).fetchone()
            if taken:
                raise AccountError(
                    f"user {taken[0]!r} already exists; change it with `ilp users set-role` or `reset-password`"
                )
            con.execute(
                "INSERT INTO users (username, role, salt, password_hash, created_at, disabled, failed_attempts) "
                "VALUES (?, ?, '', ?, ?, 0, 0)",
                (name, role, password_hash, _now()),
            )
            _append_audit(con, user=by, role=by_role, action="user_add", parameters={"username": name, "role": role})

    def set_role(self, username: str, role: str, *, by: str, by_role: str | None = None) -> None:
        _valid_role(role)
        with self._write() as con:
            name, old_role = self._account(con, username, "username, role")
            if old_role == role:
                return
            con.execute("UPDATE users SET role = ? WHERE username = ?", (role, name))
            _append_audit(
                con,
                user=by,
                role=by_role,
                action="user_role_change",
                parameters={"username": name, "old_role": old_role, "role": role},
            )

    def disable_user(self, username: str, *, by: str, by_role: str | None = None) -> None:
        self._set_disabled(username, True, by=by, by_role=by_role)

    def enable_user(self, username: str, *, by: str, by_role: str | None = None) -> None:
        self._set_disabled(username, False, by=by, by_role=by_role)

    def _set_disabled(self, username: str, disabled: bool, *, by: str, by_role: str | None) -> None:
        with self._write() as con:
            name, was = self._account(con, username, "username, disabled")
            if bool(was) == disabled:
                return
            con.execute("UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), name))
            _append_audit(
                con,
                user=by,
                role=by_role,
                action="user_disable" if disabled else "user_enable",
                parameters={"username": name},
            )

    def reset_password(self, username: str, password: str, *, by: str, by_role: str | None = None) -> None:
        """A new password; clears failed attempts and any lockout."""
        password_hash = _hash_password(_valid_password(password))
        with self._write() as con:
            (name,) = self._account(con, username, "username")
            con.execute(
                "UPDATE users SET password_hash = ?, salt = '', failed_attempts = 0, locked_until = NULL "
                "WHERE username = ?",
                (password_hash, name),
            )
            _append_audit(con, user=by, role=by_role, action="user_password_reset", parameters={"username": name})

    @staticmethod
    def _account(con: sqlite3.Connection, username: str, columns: str) -> tuple:
        row = con.execute(
            f"SELECT {columns} FROM users WHERE lower(username) = lower(?)", ((username or "").strip(),)
        ).fetchone()
        if row is None:
            raise AccountError(f"no user {username!r}; `ilp users list` shows the accounts")
        return row

    def users(self) -> pd.DataFrame:
        """Every local account (never the hash): username, role, disabled, created_at, failed_attempts,
        locked_until, last_sign_in."""
        with self._read() as con:
            frame = pd.read_sql_query(
                "SELECT username, role, disabled, created_at, failed_attempts, locked_until, last_sign_in "
                "FROM users ORDER BY lower(username)",
                con,
            )
        return frame.assign(disabled=frame["disabled"].astype(bool))

    def has_users(self) -> bool:
        """True when at least one enabled local account exists."""
        with self._read() as con:
            return con.execute("SELECT 1 FROM users WHERE disabled = 0 LIMIT 1").fetchone() is not None

    def user_role(self, username: str) -> str | None:
        """The account's current role; None when the user is unknown or disabled."""
        with self._read() as con:
            row = con.execute(
                "SELECT role FROM users WHERE lower(username) = lower(?) AND disabled = 0", ((username or "").strip(),)
            ).fetchone()
        return row[0] if row else None

    def authenticate(self, username: str, password: str, *, now: dt.datetime | None = None) -> SignIn:
        """Check a local sign-in and write its audit rows (``sign_in``, ``sign_in_failed`` with the reason,
        ``lockout``). Takes about the same time whether or not the user exists."""
        now = _utc(now)
        name = (username or "").strip()[:128]
        password = password or ""
        with self._read() as con:
            row = con.execute(
                "SELECT username, role, salt, password_hash, disabled, locked_until FROM users "
                "WHERE lower(username) = lower(?)",
                (name,),
            ).fetchone()
        if row is None:
            _same_work_as_a_real_check(password)
            self.record(user=name, role=None, action="sign_in_failed", parameters={"reason": "unknown"})
            return SignIn(False, None, "unknown")
        account, role, salt, stored, disabled, locked = row
        matches = _password_matches(password, stored, salt)
        if disabled:
            self.record(user=account, role=None, action="sign_in_failed", parameters={"reason": "disabled"})
            return SignIn(False, None, "disabled", username=account)
        locked_until = _parse_time(locked)
        if locked_until is not None and locked_until > now:
            self.record(
                user=account,
                role=None,
                action="sign_in_failed",
                parameters={"reason": "locked", "locked_until": locked_until.isoformat()},
            )
            return SignIn(False, None, "locked", locked_until, username=account)
        if not matches:
            return self._failed_password(account, now)
        new_hash = _hash_password(password) if _needs_rehash(stored) else None
        with self._write() as con:
            con.execute(
                "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_sign_in = ?, "
                "password_hash = coalesce(?, password_hash), salt = CASE WHEN ? IS NULL THEN salt ELSE '' END "
                "WHERE username = ?",
                (now.isoformat(timespec="seconds"), new_hash, new_hash, account),
            )
            _append_audit(
                con,
                user=account,
                role=role,
                action="sign_in",
                parameters={"method": "password", **({"rehashed": "argon2id"} if new_hash else {})},
            )
        return SignIn(True, role, "ok", username=account)

    def _failed_password(self, account: str, now: dt.datetime) -> SignIn:
        """Count a wrong password (atomically: concurrent attempts each count) and lock on the fifth."""
        with self._write() as con:
            failures, locked = con.execute(
                "SELECT failed_attempts, locked_until FROM users WHERE username = ?", (account,)
            ).fetchone()
            locked_until = _parse_time(locked)
            if locked_until is not None and locked_until > now:  # locked by a concurrent attempt meanwhile
                _append_audit(con, user=account, role=None, action="sign_in_failed", parameters={"reason": "locked"})
                return SignIn(False, None, "locked", locked_until, username=account)
            if locked_until is not None:  # an expired lock starts a new count
                failures = 0
            failures += 1
            lock = now + dt.timedelta(minutes=LOCKOUT_MINUTES) if failures >= LOCKOUT_FAILURES else None
            con.execute(
                "UPDATE users SET failed_attempts = ?, locked_until = ? WHERE username = ?",
                (failures, lock and lock.isoformat(timespec="seconds"), account),
            )
            _append_audit(
                con,
                user=account,
                role=None,
                action="sign_in_failed",
                parameters={"reason": "wrong_password", "consecutive_failures": failures},
            )
            if lock is not None:
                _append_audit(
                    con,
                    user=account,
                    role=None,
                    action="lockout",
                    parameters={"failures": failures, "minutes": LOCKOUT_MINUTES, "locked_until": lock.isoformat()},
                )
        return SignIn(False, None, "wrong_password", lock, username=account)

    # ------------------------------------------------------------------------------ single sign-on roles
    def assign_identity_role(self, identity: str, role: str, *, by: str, by_role: str | None = None) -> None:
        """Give a single-sign-on identity (an email address or an OIDC subject) a role."""
        key, kind = _identity(identity)
        _valid_role(role)
        with self._write() as con:
            old = con.execute("SELECT role FROM identity_roles WHERE identity = ?", (key,)).fetchone()
            if old and old[0] == role:
                return
            con.execute(
                "INSERT INTO identity_roles (identity, kind, role, assigned_at, assigned_by) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (identity) DO UPDATE SET role = excluded.role, assigned_at = excluded.assigned_at, "
                "assigned_by = excluded.assigned_by",
                (key, kind, role, _now(), by),
            )
            _append_audit(
                con,
                user=by,
                role=by_role,
                action="identity_role_assign",
                parameters={"identity": key, "kind": kind, "role": role, "old_role": old[0] if old else None},
            )

    def remove_identity_role(self, identity: str, *, by: str, by_role: str | None = None) -> None:
        key, kind = _identity(identity)
        with self._write() as con:
            old = con.execute("SELECT role FROM identity_roles WHERE identity = ?", (key,)).fetchone()
            if old is None:
                raise AccountError(f"{key!r} has no role assigned; `ilp users list` shows the assignments")
            con.execute("DELETE FROM identity_roles WHERE identity = ?", (key,))
            _append_audit(
                con,
                user=by,
                role=by_role,
                action="identity_role_remove",
                parameters={"identity": key, "kind": kind, "old_role": old[0]},
            )

    def identity_role(self, subject: str | None, email: str | None) -> str | None:
        """The role assigned to a signed-in identity: by its OIDC subject first, then by its email
        address (case-insensitive); None when neither has one."""
        with self._read() as con:
            if subject:
                row = con.execute("SELECT role FROM identity_roles WHERE identity = ?", (subject.strip(),)).fetchone()
                if row:
                    return row[0]
            if email and email.strip():
                row = con.execute(
                    "SELECT role FROM identity_roles WHERE kind = 'email' AND identity = ?", (email.strip().lower(),)
                ).fetchone()
                if row:
                    return row[0]
        return None

    def identities(self) -> pd.DataFrame:
        """Single-sign-on role assignments: identity, kind ('email' or 'subject'), role, assigned_at, assigned_by."""
        with self._read() as con:
            return pd.read_sql_query(
                "SELECT identity, kind, role, assigned_at, assigned_by FROM identity_roles ORDER BY kind, identity", con
            )

    # ------------------------------------------------------------------------------ migration and backup
    def migrate_from(self, source: str | os.PathLike, *, by: str) -> dict:
        """Copy taskings, their history, the audit log (re-chained in this file's chain) and users from
        another state file (e.g. the first release's data/state.sqlite) into this one, which must hold no
        taskings and no audit rows yet. The source is only read. Returns what was copied."""
        source = Path(source)
        if not source.is_file():
            raise StateMigrationError(f"no state file at {source}")
        if source.resolve() == self.path.resolve():
            raise StateMigrationError(f"{source} is this warehouse's own state file; nothing to migrate")
        try:
            old = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
            old.execute("BEGIN")
            tables = {name for (name,) in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as error:
            raise StateMigrationError(f"{source} is not a readable state file: {error}") from None
        try:
            if "audit_log" not in tables and "taskings" not in tables:
                raise StateMigrationError(f"{source} is not a state file: it has no taskings or audit_log table")
            source_chain = "no hashes (written before the chain existed)"
            audit_columns = (
                {row[1] for row in old.execute("PRAGMA table_info(audit_log)")} if "audit_log" in tables else set()
            )
            if "row_hash" in audit_columns:
                check = _check_chain(old)
                source_chain = "intact" if check.ok else f"broken: {check.reason}"
            with self._write() as con:
                self._refuse_unless_empty(con, old, tables)
                copied = {
                    table: _copy_rows(old, con, table)
                    for table in ("taskings", "tasking_history", "users", "identity_roles")
                    if table in tables
                }
                imported = []
                if "audit_log" in tables:
                    for row in old.execute(
                        "SELECT at, user, role, action, page, parameters, data_version FROM audit_log ORDER BY id"
                    ):
                        at, user, role, action, page, parameters, data_version = row
                        imported.append(
                            _append_audit(
                                con,
                                user=user,
                                role=role,
                                action=action,
                                page=page,
                                parameters_text=parameters,
                                data_version=data_version,
                                at=at,
                            )
                        )
                summary = {
                    "from": str(source.resolve()),
                    "taskings": copied.get("taskings", 0),
                    "tasking_history": copied.get("tasking_history", 0),
                    "users": copied.get("users", 0),
                    "identities": copied.get("identity_roles", 0),
                    "audit_rows": len(imported),
                    "audit_ids": [imported[0], imported[-1]] if imported else None,
                    "source_chain": source_chain,
                }
                _append_audit(con, user=by, role=None, action="state_migrate", parameters=summary)
        finally:
            old.close()
        return summary

    @staticmethod
    def _refuse_unless_empty(con: sqlite3.Connection, old: sqlite3.Connection, tables: set[str]) -> None:
        (taskings,) = con.execute("SELECT count(*) FROM taskings").fetchone()
        (audit,) = con.execute("SELECT count(*) FROM audit_log WHERE action <> 'state_migrate'").fetchone()
        if taskings or audit:
            raise StateMigrationError(
                f"this warehouse's state already holds {taskings} taskings and {audit} audit rows; `ilp state "
                "migrate` only fills a state file that has none, so nothing was copied. Migrate into a warehouse "
                "whose state is new, or move its app-state.sqlite aside first."
            )
        if "users" in tables:
            mine = {name.lower() for (name,) in con.execute("SELECT username FROM users")}
            clash = sorted(name for (name,) in old.execute("SELECT username FROM users") if name.lower() in mine)
            if clash:
                raise StateMigrationError(
                    f"users {', '.join(clash)} exist in both files; nothing was copied. Remove them from one first."
                )

    def backup(self, out: str | os.PathLike, *, by: str) -> Path:
        """A consistent copy of the state file (SQLite's online backup, safe while the dashboard serves)."""
        out = Path(out)
        if out.exists():
            raise StateMigrationError(f"{out} exists; a backup never overwrites a file. Choose a new name.")
        self.record(user=by, role=None, action="state_backup", parameters={"to": str(out.resolve())})
        out.parent.mkdir(parents=True, exist_ok=True)
        con = self._open()
        try:
            target = sqlite3.connect(out)
            try:
                con.backup(target)
            finally:
                target.close()
        finally:
            con.close()
        return out

    # ------------------------------------------------------------------------------ hot-spot forecasts
    # Issued forecasts and their scores (ilp.analytics.hotspot_forecast); tables in FORECAST_TABLES, created
    # on first use so an older state file gains them without a schema bump.
    def _forecast_tables(self) -> None:
        if getattr(self, "_forecast_tables_ready", False):
            return
        with self._write() as con:
            for statement in FORECAST_TABLES:
                con.execute(statement)
        self._forecast_tables_ready = True

    def record_forecast(self, forecast: dict, *, by: str, role: str | None = None, page: str | None = None) -> int:
        """Keep an issued forecast (``hotspot_forecast.Forecast.record``: week, shift, category, district,
        measure, method, parameters, grid, snapshot, source and its ranked cells) and audit it as
        ``forecast_issued`` with a SHA-256 of the cells, in one transaction. Returns the forecast's id."""
        from ilp.analytics.hotspot_forecast import cells_sha256

        self._forecast_tables()
        cells = [tuple(cell) for cell in forecast["cells"]]
        digest = cells_sha256(cells)
        columns = (
            "week shift category district measure method cell_m lat_ref harm_index harm_version area_cells "
            "expected_total source snapshot"
        ).split()
        with self._write() as con:
            cursor = con.execute(
                f"INSERT INTO forecasts (issued_at, issued_by, {', '.join(columns)}, parameters, flagged_cells, "
                f"cells_sha256) VALUES ({', '.join('?' for _ in range(len(columns) + 5))})",
                (
                    _now(),
                    by,
                    *[forecast.get(c) for c in columns],
                    json.dumps(forecast.get("parameters") or {}, default=str, sort_keys=True),
                    len(cells),
                    digest,
                ),
            )
            forecast_id = cursor.lastrowid
            con.executemany(
                "INSERT INTO forecast_cells (forecast_id, rank, cell_x, cell_y, expected, low, high) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(forecast_id, *cell) for cell in cells],
            )
            _append_audit(
                con,
                user=by,
                role=role,
                action="forecast_issued",
                page=page,
                parameters={
                    "forecast_id": forecast_id,
                    **{c: forecast.get(c) for c in ("week", "shift", "category", "district", "measure", "method")},
                    "source": forecast.get("source"),
                    "cells": len(cells),
                    "cells_sha256": digest,
                },
                data_version=forecast.get("snapshot"),
            )
        return forecast_id

    def forecasts(self, *, unscored: bool = False) -> pd.DataFrame:
        """Issued forecasts, oldest first (``unscored``: only those with no score yet)."""
        self._forecast_tables()
        with self._read() as con:
            return pd.read_sql_query(
                "SELECT * FROM forecasts f WHERE NOT ? OR NOT EXISTS "
                "(SELECT 1 FROM forecast_scores s WHERE s.forecast_id = f.id) ORDER BY id",
                con,
                params=(int(unscored),),
            )

    def forecast_cells(self, forecast_id: int) -> pd.DataFrame:
        """One forecast's cells, best first: rank, cell_x, cell_y, expected, low, high."""
        self._forecast_tables()
        with self._read() as con:
            return pd.read_sql_query(
                "SELECT rank, cell_x, cell_y, expected, low, high FROM forecast_cells WHERE forecast_id = ? "
                "ORDER BY rank",
                con,
                params=(int(forecast_id),),
            )

    def record_forecast_scores(
        self, forecast_id: int, rows: list[dict], *, by: str, data_version: str | None = None
    ) -> bool:
        """Score a forecast once its week has data: one row per map ('issued' and the naive baselines) and
        coverage. False (and nothing written) when it already has scores."""
        self._forecast_tables()
        fields = "map method coverage cells observed_in_cells observed_total hit_rate pai pei_star rri".split()
        with self._write() as con:
            if con.execute("SELECT 1 FROM forecast_scores WHERE forecast_id = ?", (forecast_id,)).fetchone():
                return False
            now = _now()
            con.executemany(
                f"INSERT INTO forecast_scores (forecast_id, {', '.join(fields)}, scored_at, snapshot) "
                f"VALUES ({', '.join('?' for _ in range(len(fields) + 3))})",
                [(forecast_id, *[row.get(f) for f in fields], now, data_version) for row in rows],
            )
            issued = next((r for r in rows if r.get("map") == "issued"), {})
            _append_audit(
                con,
                user=by,
                role=None,
                action="forecast_scored",
                parameters={
                    "forecast_id": forecast_id,
                    "maps": sorted({r.get("map") for r in rows}),
                    "pai": issued.get("pai"),
                    "hit_rate": issued.get("hit_rate"),
                },
                data_version=data_version,
            )
        return True

    def forecast_scoreboard(self) -> pd.DataFrame:
        """Every score with its forecast's week, shift, category, district, measure, source and issue time."""
        self._forecast_tables()
        with self._read() as con:
            return pd.read_sql_query(
                "SELECT s.*, f.week, f.shift, f.category, f.district, f.measure, f.source, f.issued_at, "
                "f.method AS issued_method, f.cell_m FROM forecast_scores s JOIN forecasts f ON f.id = s.forecast_id "
                "ORDER BY f.week, s.forecast_id, s.map, s.coverage",
                con,
            )


def _append_audit(
    con: sqlite3.Connection,
    *,
    user: str,
    role: str | None,
    action: str,
    page: str | None = None,
    parameters: dict | None = None,
    data_version: str | None = None,
    parameters_text: str | None = None,
    at: str | None = None,
) -> int:
    """Append one chained row inside the caller's ``BEGIN IMMEDIATE`` transaction; returns its id.
    ``parameters_text`` and ``at`` carry a row over unchanged from another file (``migrate_from``)."""
    if not action or not str(action).strip():
        raise ValueError("an audit row needs an action")
    if parameters_text is None:
        parameters_text = json.dumps(without_secrets(parameters or {}), default=str, sort_keys=True)
    last = con.execute("SELECT id, row_hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    sequence = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
    new_id = max(last[0] if last else 0, sequence[0] if sequence else 0) + 1
    prev_hash = (last[1] if last else None) or GENESIS_HASH
    row = (new_id, at or _now(), user, role, action, page, parameters_text, data_version)
    con.execute(
        f"INSERT INTO audit_log ({_AUDIT_FIELDS}, prev_hash, row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*row, prev_hash, audit_row_hash(prev_hash, row)),
    )
    return new_id


def _copy_rows(old: sqlite3.Connection, con: sqlite3.Connection, table: str) -> int:
    """Copy ``table`` from ``old`` into ``con``, ids kept, over the columns both have."""
    theirs = [row[1] for row in old.execute(f"PRAGMA table_info({table})")]
    mine = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
    columns = [c for c in theirs if c in mine]
    rows = old.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
    con.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        rows,
    )
    return len(rows)


def _as_date(value: dt.date | str | None, name: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise UserError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None


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


# ------------------------------------------------------------------------------------------ hot-spot forecasts
# Issued hot-spot forecasts (ilp.analytics.hotspot_forecast): what was forecast, by which method on which
# snapshot, the cells in rank order, and their scores once the week has data. Created on first use.
FORECAST_TABLES = (
    """CREATE TABLE IF NOT EXISTS forecasts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issued_at TEXT NOT NULL,       -- UTC
    issued_by TEXT NOT NULL,
    source TEXT NOT NULL,          -- 'cli', 'ingest', 'download' (a plan downloaded from the Deployment page)
    week TEXT NOT NULL,            -- Monday of the week forecast
    shift TEXT NOT NULL,           -- 'day', 'evening', 'night' or 'all'
    category TEXT,                 -- NULL: every offence
    district TEXT,                 -- NULL: the whole area
    measure TEXT NOT NULL,         -- 'harm' or 'count': what the cells are ranked by
    method TEXT NOT NULL,
    parameters TEXT NOT NULL,      -- JSON: fitted parameters, how the method was chosen, shift hours
    cell_m REAL NOT NULL,          -- the grid: cell size and reference latitude (ilp.analytics.hotspots.Grid)
    lat_ref REAL NOT NULL,
    harm_index TEXT,
    harm_version TEXT,
    area_cells INTEGER NOT NULL,   -- the study area A of the PAI, in cells
    expected_total REAL,           -- the forecast summed over the whole area (for the RRI)
    flagged_cells INTEGER NOT NULL,
    snapshot TEXT,                 -- the warehouse snapshot the forecast was made from
    cells_sha256 TEXT NOT NULL     -- digest of the cells, also in the forecast_issued audit row
)""",
    """CREATE TABLE IF NOT EXISTS forecast_cells (
    forecast_id INTEGER NOT NULL REFERENCES forecasts(id),
    rank INTEGER NOT NULL,
    cell_x INTEGER NOT NULL,
    cell_y INTEGER NOT NULL,
    expected REAL NOT NULL,
    low REAL,
    high REAL,
    PRIMARY KEY (forecast_id, rank)
)""",
    """CREATE TABLE IF NOT EXISTS forecast_scores (
    forecast_id INTEGER NOT NULL REFERENCES forecasts(id),
    map TEXT NOT NULL,             -- 'issued', or a naive baseline scored on the same week and cells count
    method TEXT NOT NULL,
    coverage REAL NOT NULL,        -- share of the area flagged
    cells INTEGER NOT NULL,
    observed_in_cells REAL NOT NULL,
    observed_total REAL NOT NULL,
    hit_rate REAL,
    pai REAL,
    pei_star REAL,
    rri REAL,
    scored_at TEXT NOT NULL,
    snapshot TEXT,                 -- the snapshot whose data scored it
    PRIMARY KEY (forecast_id, map, coverage)
)""",
)
ACTIONS.update(
    {
        "forecast_issued": "a hot-spot forecast was recorded (CLI, after an ingest, or a downloaded patrol plan)",
        "forecast_scored": "a recorded hot-spot forecast was scored against its week's incidents",
        "evaluation_comparison": "a tasking was first evaluated: the comparison area chosen for it, the weeks it "
        "was chosen from and the weeks then in the data (later evaluations use it)",
        "export_parquet": "the current snapshot was written as Parquet files (ilp export-parquet)",
    }
)
