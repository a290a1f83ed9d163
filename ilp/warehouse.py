"""Warehouse snapshots: the only way anything reads or writes the DuckDB warehouse.

A warehouse is a folder. Each write builds a *new* snapshot file in it and then atomically replaces
``CURRENT`` (a one-line text file naming the current snapshot file). Readers open the file CURRENT names,
read-only, so they never see a half-written batch and never meet DuckDB's cross-process write lock. A
failed write deletes its unfinished file and leaves CURRENT untouched. The README (section "What is in it")
explains the design.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pandas as pd

from ilp import paths
from ilp.errors import UserError

SCHEMA_VERSION = "1"
CURRENT_FILE = "CURRENT"
SNAPSHOT_PATTERN = re.compile(r"^s(\d{5})-(\d{8}T\d{6}Z)\.duckdb$")
KEEP_SNAPSHOTS = 3


class WarehouseError(UserError):
    """A problem a user can act on (no warehouse yet, mixing demo and real data, ...)."""


def default_directory() -> Path:
    return Path(os.environ.get("ILP_WAREHOUSE", paths.DATA_DIR / "warehouse"))


class Warehouse:
    """A folder of snapshot files plus the CURRENT pointer."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else default_directory()
        self.writing_version: str | None = None
        self.removed_partials: list[dict] = []  # unfinished snapshot files remove_stale_partials deleted

    # ----------------------------------------------------------------------------- reading
    @property
    def pointer(self) -> Path:
        return self.directory / CURRENT_FILE

    def current_path(self) -> Path | None:
        """The current snapshot file, or None when the warehouse has never been written."""
        try:
            name = self.pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not SNAPSHOT_PATTERN.match(name):
            raise WarehouseError(f"{self.pointer}: does not name a snapshot file (found {name!r})")
        path = self.directory / name
        if not path.exists():
            raise WarehouseError(f"{self.pointer} names {name}, which does not exist")
        return path

    def current_version(self) -> str | None:
        path = self.current_path()
        return path.stem if path else None

    def require_current(self) -> Path:
        path = self.current_path()
        if path is None:
            raise WarehouseError(
                f"No warehouse in {self.directory}: build one with `ilp demo` or load exports with `ilp ingest`."
            )
        return path

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the current snapshot. Use one cursor per thread (``con.cursor()``)."""
        return connect_read_only(self.require_current())

    def meta(self) -> dict[str, str]:
        with contextlib.closing(self.connect()) as con:
            return read_meta(con)

    def kind(self) -> str | None:
        """'demo', 'real' or None (no warehouse yet)."""
        if self.current_path() is None:
            return None
        return self.meta().get("kind")

    def snapshots(self) -> list[Path]:
        if not self.directory.exists():
            return []
        return sorted(p for p in self.directory.iterdir() if SNAPSHOT_PATTERN.match(p.name))

    # ----------------------------------------------------------------------------- writing
    @contextlib.contextmanager
    def write(self, *, kind: str, fresh: bool = False, note: str = "") -> Iterator[duckdb.DuckDBPyConnection]:
        """Build a new snapshot and make it current when the block succeeds.

        ``fresh=True`` starts from an empty warehouse (schema and reference data only); otherwise the
        new snapshot starts as a copy of the current one. ``kind`` ('demo' or 'real') must match the
        current snapshot's kind unless ``fresh``: demo and real data never mix.
        """
        if kind not in ("demo", "real"):
            raise ValueError(f"kind must be 'demo' or 'real', not {kind!r}")
        created = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            with self._writer_lock():
                yield from self._write_locked(kind=kind, fresh=fresh, note=note)
        except BaseException:
            if created:  # a failed first write leaves no folder behind, as if it had never run
                with contextlib.suppress(OSError):  # never let the cleanup hide the real error
                    leftovers = list(self.directory.iterdir())
                    if [p.name for p in leftovers] in ([], [".write.lock"]):
                        for path in leftovers:
                            path.unlink(missing_ok=True)
                        self.directory.rmdir()
            raise

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """One writer at a time per warehouse folder; a second ``ilp`` write waits for the first and then
        builds on its snapshot. Readers never take it."""
        import fcntl

        with open(self.directory / ".write.lock", "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _write_locked(self, *, kind: str, fresh: bool, note: str) -> Iterator[duckdb.DuckDBPyConnection]:
        parent = None if fresh else self.current_path()
        if parent is not None:
            parent_kind = read_meta_file(parent).get("kind")
            if parent_kind != kind:
                raise WarehouseError(_mixing_message(self.directory, parent_kind, kind))
        target = self._next_snapshot_path()
        self.writing_version = target.stem  # lets the writer record which snapshot it is building
        partial = target.with_name(target.name + ".partial")
        try:
            if parent is not None:
                shutil.copyfile(parent, partial)
            con = duckdb.connect(str(partial))
            try:
                if parent is None:
                    initialise(con)
                else:  # a snapshot written by older code gains the current harm macros here
                    create_harm_macros(con)
                con.execute("BEGIN TRANSACTION")
                yield con
                write_meta(
                    con,
                    {
                        "version": target.stem,
                        "created_at": _utcnow().isoformat(timespec="seconds") + "Z",
                        "kind": kind,
                        "parent": parent.stem if parent else "",
                        "schema_version": SCHEMA_VERSION,
                        "last_write": note,
                    },
                )
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
            except BaseException:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                raise
            finally:
                con.close()
            _fsync(partial)
            os.replace(partial, target)
            self._point_to(target)
        except BaseException:
            # Never let the cleanup's own failure (a folder that turned read-only) hide the real error: what
            # cannot be removed now is removed when the next `ilp` command starts (remove_stale_partials).
            for leftover in (partial, target, partial.with_name(partial.name + ".wal")):
                with contextlib.suppress(OSError, WarehouseError):
                    if leftover != self.current_path():
                        leftover.unlink()
            raise
        self.prune()

    def _next_snapshot_path(self) -> Path:
        numbers = [int(SNAPSHOT_PATTERN.match(p.name).group(1)) for p in self.snapshots()]
        number = max(numbers, default=0) + 1
        stamp = _utcnow().strftime("%Y%m%dT%H%M%SZ")
        return self.directory / f"s{number:05d}-{stamp}.duckdb"

    def _point_to(self, target: Path) -> None:
        tmp = self.pointer.with_name(f"{CURRENT_FILE}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(target.name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.pointer)
        _fsync_dir(self.directory)

    def prune(self, keep: int = KEEP_SNAPSHOTS) -> list[Path]:
        """Delete all but the newest ``keep`` snapshots (never the current one).

        A reader still holding a pruned file keeps working: on POSIX the data stays until it closes.
        """
        current = self.current_path()
        removed = []
        for old in self.snapshots()[:-keep] if keep else self.snapshots():
            if old != current:
                old.unlink(missing_ok=True)
                removed.append(old)
        for stale in self._partial_files():
            stale.unlink(missing_ok=True)
        return removed

    def _partial_files(self) -> list[Path]:
        """Unfinished snapshot files: ``<snapshot>.partial`` and its ``.partial.wal``."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.name.endswith((".partial", ".partial.wal")))

    def remove_stale_partials(self) -> list[dict]:
        """Delete the unfinished snapshot files a killed write left (a Chicago-size one is ~90 MB), unless a
        write is running now: then they are its own, and stay. Every ``ilp`` command calls this first.
        Returns what was removed ({"file", "bytes"}), also kept in ``removed_partials`` for `ilp status`."""
        if not self._partial_files():
            return []
        import fcntl

        removed: list[dict] = []
        try:
            with open(self.directory / ".write.lock", "a+") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return []  # a write is running: its .partial is not stale
                try:
                    for stale in self._partial_files():
                        with contextlib.suppress(OSError):
                            size = stale.stat().st_size
                            stale.unlink()
                            removed.append({"file": stale.name, "bytes": size})
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        except OSError:
            return []  # a read-only folder: nothing can be removed, status still lists them
        self.removed_partials.extend(removed)
        return removed

    def partials_in_progress(self) -> list[dict]:
        """Unfinished snapshot files still present ({"file", "bytes"}): a write is running, or they could not
        be removed."""
        found = []
        for path in self._partial_files():
            with contextlib.suppress(OSError):
                found.append({"file": path.name, "bytes": path.stat().st_size})
        return found


def _mixing_message(directory: Path, existing: str | None, wanted: str) -> str:
    if existing == "demo":
        return (
            f"{directory} holds the synthetic demo city; real exports are never mixed into it. "
            f"Use another warehouse, e.g. `ilp --warehouse data/agency ingest ...`."
        )
    return (
        f"{directory} holds real data; the synthetic demo city is never mixed into it. "
        f"Use another warehouse, e.g. `ilp --warehouse data/demo demo`."
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------- connections
def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM snapshot_meta").fetchall())


def read_meta_file(path: Path) -> dict[str, str]:
    with contextlib.closing(connect_read_only(path)) as con:
        return read_meta(con)


def write_meta(con: duckdb.DuckDBPyConnection, values: Mapping[str, str]) -> None:
    con.executemany("INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])


# --------------------------------------------------------------------------------- schema
def initialise(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schema and the harm macros, and load the shipped reference data (categories,
    taxonomies, harm tables)."""
    con.execute((paths.PACKAGE_DIR / "schema.sql").read_text(encoding="utf-8"))
    create_harm_macros(con)
    from ilp import reference

    reference.load_all(con)


def create_harm_macros(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create ``category_harm`` and ``incident_harm``, the one definition of harm (ilp/harm.sql)."""
    con.execute((paths.PACKAGE_DIR / "harm.sql").read_text(encoding="utf-8"))


def next_ingest_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingest_log").fetchone()[0]


# --------------------------------------------------------------------------------- named queries
_PARAMETER = re.compile(r"(?<![:$\w])\$([A-Za-z_]\w*)")
_query_cache: dict[str, tuple[float, str, frozenset[str]]] = {}
_query_lock = threading.Lock()
HARM_MACROS = re.compile(r"\b(?:category_harm|incident_harm)\b")


def query_text(name: str) -> tuple[str, frozenset[str]]:
    """The SQL of ``queries/<name>.sql`` and the set of ``$parameters`` it uses."""
    path = paths.QUERIES_DIR / f"{name}.sql"
    if not path.exists():
        raise KeyError(f"No named query {name!r} (looked for {path})")
    mtime = path.stat().st_mtime
    with _query_lock:
        cached = _query_cache.get(name)
        if cached and cached[0] == mtime:
            return cached[1], cached[2]
        sql = path.read_text(encoding="utf-8")
        parameters = frozenset(_PARAMETER.findall(_strip_comments(sql)))
        _query_cache[name] = (mtime, sql, parameters)
        return sql, parameters


def _strip_comments(sql: str) -> str:
    sql = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def run_query(con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Run the named query with bound parameters and return a DataFrame.

    Every ``$parameter`` the SQL uses must be given (``None`` means "all" where the SQL says so);
    extra keys are ignored so pages can pass their whole filter dict.
    """
    sql, wanted = query_text(name)
    params = dict(params or {})
    missing = sorted(wanted - params.keys())
    if missing:
        raise KeyError(f"Query {name!r} needs parameters {missing}")
    bound = {key: params[key] for key in wanted}
    try:
        return con.execute(sql, bound).df() if bound else con.execute(sql).df()
    except duckdb.CatalogException as error:
        if HARM_MACROS.search(str(error)):
            raise WarehouseError(
                f"Query {name!r} needs the harm macros (category_harm, incident_harm), which this snapshot "
                f"predates. Any `ilp` write adds them: run `ilp demo` again for the demo city, or re-run the "
                f"last `ilp ingest` for a real warehouse."
            ) from error
        raise
