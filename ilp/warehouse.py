"""Warehouse snapshots: the only way anything reads or writes the DuckDB warehouse.

A warehouse is a folder. Each write builds a *new* snapshot file in it and then atomically replaces
``CURRENT`` (a one-line text file naming the current snapshot file). Readers open the file CURRENT names,
read-only, so they never see a half-written batch and never meet DuckDB's cross-process write lock. A
failed write deletes its unfinished files and leaves CURRENT untouched.

A snapshot file is a small *catalog*: reference data, areas, the ingest log, rejects, summaries. The large
tables (incidents, their history and persons, calls for service, use of force) live in immutable
*segment* files, ``segments/gNNNNN.duckdb``, which snapshots share: a write adds one segment with its new
rows (a changed incident's new version goes there, and its old version is listed in ``superseded``) and
copies only the catalog, so a 1,000-row ingest costs the same in a large warehouse as in a small one and
kept snapshots cost little disk. Readers attach the snapshot's segments (``connect_read_only``) and read
each large table through a view of the same name over all of them. When segments pile up, a write merges
the newer ones (``compact``). The README (section "What is in it") explains the design.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import duckdb
import pandas as pd

from ilp import paths, stored_analyses, summaries
from ilp.errors import UserError

SCHEMA_VERSION = "2"  # 2: large tables in segment files
CURRENT_FILE = "CURRENT"
SNAPSHOT_PATTERN = re.compile(r"^s(\d{5})-(\d{8}T\d{6}Z)\.duckdb$")
KEEP_SNAPSHOTS = 3
# From this many incidents a write also stores the analyses the pages open with (_store_analyses_locked): the
# Next-week plan computed live took 4.3 s cold at 450k incidents (benchmarks/pages.py, 2 cores), over the 3 s target.
STORE_ANALYSES_FROM_ENV = "ILP_STORE_ANALYSES_FROM"
STORE_ANALYSES_FROM = 400_000
SEGMENTS_DIR = "segments"
SEGMENT_PATTERN = re.compile(r"^g(\d{5})\.duckdb$")
SEGMENT_TABLES = ("incidents", "incident_history", "incident_persons", "calls_for_service", "use_of_force")
# Order each table's rows by, when a segment is written or merged (time order keeps range scans short).
SEGMENT_ORDER = {
    "incidents": "occurred_at, source, source_id",
    "incident_history": "superseded_by_ingest, source, source_id",
    "incident_persons": "source, source_id",
    "calls_for_service": "received_at, source, call_id",
    "use_of_force": "occurred_at, source, event_id",
}
MAX_SEGMENTS = 8  # more than this after a write: the newer ones are merged


class WarehouseError(UserError):
    """A problem a user can act on (no warehouse yet, mixing demo and real data, ...)."""


def default_directory() -> Path:
    return Path(os.environ.get("ILP_WAREHOUSE", paths.DATA_DIR / "warehouse"))


class Warehouse:
    """A folder of snapshot files plus the CURRENT pointer."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else default_directory()
        self.writing_version: str | None = None
        self.writing_segment: str | None = None  # the schema a write puts new large-table rows in, e.g. 'g00012'

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
                self._store_analyses_locked(kind)
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

    def write_in_progress(self) -> bool:
        """Whether a writer holds the warehouse's write lock now (a reader's probe: a shared lock tried without
        waiting and dropped at once, on a read-only handle, so it works on a read-only mount too)."""
        import fcntl

        try:
            handle = open(self.directory / ".write.lock", "rb")  # noqa: SIM115 - closed below
        except OSError:
            return False  # never written here, or not readable: nothing to wait for
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False

    def _store_analyses_locked(self, kind: str) -> None:
        """After a write, whose new rows are already readable: on a warehouse of ``STORE_ANALYSES_FROM`` incidents
        or more, a second snapshot of the same data adds the analyses the pages open with (ilp.stored_analyses),
        so a page's first visit reads them instead of computing them (seconds at a large force's size). Smaller
        warehouses compute them live on the first visit, quickly enough. A failure here never undoes the write."""
        threshold = int(os.environ.get(STORE_ANALYSES_FROM_ENV) or STORE_ANALYSES_FROM)
        with contextlib.closing(self.connect()) as con:
            if not _has_relation(con, "incidents"):
                return
            # the summaries' count, just refreshed (a count over the incidents view takes 0.2 s at 10M)
            counted = "summary.facts" if summaries.stored(con) else "(SELECT count(*) AS incidents FROM incidents)"
            if (con.execute(f"SELECT incidents FROM {counted}").fetchone() or (0,))[0] < threshold:
                return
        try:
            for _ in self._write_locked(
                kind=kind,
                fresh=False,
                note="analyses the pages open with",
                refresh_summaries=False,
                after_meta=stored_analyses.store,
            ):
                pass
        except Exception as error:  # noqa: BLE001 - the data write has succeeded; the pages compute live instead
            print(
                f"ilp: the analyses the pages open with were not stored ({error}); pages compute them live",
                file=sys.stderr,
            )

    def _write_locked(
        self,
        *,
        kind: str,
        fresh: bool,
        note: str,
        refresh_summaries: bool = True,
        after_meta: Callable[[duckdb.DuckDBPyConnection], object] | None = None,
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """The write itself (under the writer lock). ``refresh_summaries=False`` when the write moves rows
        without changing them (``compact``): the summaries stay as they are. ``after_meta(con)`` runs once the
        new snapshot's metadata is written, with every segment attached (``_store_analyses_locked``)."""
        parent = None if fresh else self.current_path()
        if parent is not None:
            parent_kind = read_meta_file(parent).get("kind")
            if parent_kind != kind:
                raise WarehouseError(_mixing_message(self.directory, parent_kind, kind))
        target = self._next_snapshot_path()
        self.writing_version = target.stem  # lets the writer record which snapshot it is building
        partial = target.with_name(target.name + ".partial")
        segment_id = self._next_segment_id()
        segment_file = self.directory / SEGMENTS_DIR / f"{segment_alias(segment_id)}.duckdb"
        self.writing_segment = segment_alias(segment_id)
        kept_segment = False
        try:
            if parent is not None and is_segmented_file(parent):
                shutil.copyfile(parent, partial)  # the catalog only: the segments are shared, not copied
            con = duckdb.connect(str(partial))
            try:
                if parent is None:
                    initialise(con)
                elif not is_segmented(con):  # a snapshot written before segments: its large tables move out
                    _build_catalog_from_single_file(con, parent, self.directory, self._next_segment_id, note)
                else:  # a snapshot written by older code gains the current harm macros and tables here
                    attach_segments(con, self.directory)
                    con.execute(_schema_sql())
                    create_harm_macros(con)
                segment_id = self._next_segment_id()
                segment_file = self.directory / SEGMENTS_DIR / f"{segment_alias(segment_id)}.duckdb"
                self.writing_segment = segment_alias(segment_id)
                attach_segments(con, self.directory)
                segment_file.parent.mkdir(exist_ok=True)
                con.execute(f"ATTACH {_sql_string(str(segment_file))} AS {self.writing_segment}")
                con.execute(segment_schema_sql(f"{self.writing_segment}."))
                define_views(con, extra=[segment_id])
                yield con
                if refresh_summaries:
                    summaries.refresh(con, self.writing_segment)
                kept_segment = _finish_segment(con, segment_id, segment_file, note)
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
                if after_meta is not None:
                    # after the metadata (a stored result names this snapshot's version), on every segment (the
                    # write's own was detached when it was finished)
                    attach_segments(con, self.directory)
                    after_meta(con)
                con.execute("CHECKPOINT")
            finally:
                con.close()
            if kept_segment:
                _fsync(segment_file)
            _fsync(partial)
            os.replace(partial, target)
            self._point_to(target)
        except BaseException:
            # Never let the cleanup's own failure (a folder that turned read-only) hide the real error: what
            # cannot be removed now is removed when the next `ilp` command starts (remove_stale_partials).
            for leftover in (
                partial,
                target,
                partial.with_name(partial.name + ".wal"),
                segment_file,
                segment_file.with_name(segment_file.name + ".wal"),
            ):
                with contextlib.suppress(OSError, WarehouseError):
                    if leftover != self.current_path():
                        leftover.unlink()
            raise
        finally:
            self.writing_segment = None
        self.prune()
        if len(self.segment_ids()) > MAX_SEGMENTS:
            self.compact(kind=kind)

    # ----------------------------------------------------------------------------- segments
    def _next_segment_id(self) -> int:
        folder = self.directory / SEGMENTS_DIR
        numbers = (
            [int(m.group(1)) for p in folder.glob("g*.duckdb") if (m := SEGMENT_PATTERN.match(p.name))]
            if folder.is_dir()
            else []
        )
        return max(numbers, default=0) + 1

    def segment_ids(self) -> list[int]:
        """The segments the current snapshot reads, oldest first."""
        path = self.current_path()
        if path is None or not is_segmented_file(path):
            return []
        with contextlib.closing(open_read_only(path)) as con:
            return [row[0] for row in con.execute("SELECT segment_id FROM segments ORDER BY segment_id").fetchall()]

    def compact(self, *, kind: str) -> None:
        """Merge segments so that few remain: the newer ones into one (their replaced incident versions
        dropped) while together they are smaller than the oldest, else all of them. A write like any other
        (a new snapshot, under the writer lock the caller holds); the snapshots before it are pruned so their
        merged segments can be deleted and kept snapshots stay near the size of one."""
        with contextlib.closing(self.connect()) as con:
            sizes = con.execute("SELECT segment_id, rows FROM segments ORDER BY segment_id").fetchall()
        if len(sizes) <= 1:
            return
        newer = sizes[1:]
        merged = [sid for sid, _ in (newer if sum(r for _, r in newer) < sizes[0][1] else sizes)]
        writing = self._write_locked(
            kind=kind, fresh=False, note=f"merge segments {merged[0]} to {merged[-1]}", refresh_summaries=False
        )
        con = next(writing)
        try:
            ids = ", ".join(str(i) for i in merged)
            for table in SEGMENT_TABLES:
                con.execute(
                    f"INSERT INTO {self.writing_segment}.{table} BY NAME "
                    f"SELECT * FROM ({_union_sql(con, table, merged)}) ORDER BY {SEGMENT_ORDER[table]}"
                )
            con.execute(f"DELETE FROM superseded WHERE segment_id IN ({ids})")
            con.execute(f"DELETE FROM segments WHERE segment_id IN ({ids})")
        except BaseException as error:
            writing.throw(error)
        with contextlib.suppress(StopIteration):
            next(writing)
        self.prune(keep=1)

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
        """Delete all but the newest ``keep`` snapshots (never the current one), and every segment file no
        remaining snapshot reads.

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
        folder = self.directory / SEGMENTS_DIR
        if folder.is_dir():
            used = set()
            for snapshot in self.snapshots():
                with contextlib.suppress(duckdb.Error, OSError):
                    used |= set(segment_files(snapshot))
            for segment in folder.iterdir():
                if (
                    SEGMENT_PATTERN.match(segment.name)
                    and segment.name not in used
                    and segment.stem != self.writing_segment
                ):
                    segment.unlink(missing_ok=True)
                    removed.append(segment)
                elif segment.name.endswith(".duckdb.wal") and segment.name[: -len(".wal")] not in used:
                    segment.unlink(missing_ok=True)
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
# DuckDB's memory for one read-only snapshot (its buffer cache and its queries' working memory). DuckDB's own
# default is 80% of the machine's memory, which a dashboard server holding a 10M-incident snapshot would fill with
# cached blocks; past this limit it evicts cached blocks and spills large operators to a temporary folder.
READ_MEMORY_LIMIT_ENV = "ILP_DUCKDB_MEMORY_LIMIT"
READ_MEMORY_LIMIT = "1GB"


def read_config() -> dict[str, str]:
    """The configuration of a read-only connection: memory limit (``ILP_DUCKDB_MEMORY_LIMIT``, e.g. ``2GB``;
    default 1GB) and a temporary folder for what a query spills (the system's, not beside the snapshot: the
    warehouse folder may be read-only to the server)."""
    spill = Path(os.environ.get("TMPDIR") or "/tmp") / f"ilp-duckdb-{os.getuid()}"
    return {
        "memory_limit": os.environ.get(READ_MEMORY_LIMIT_ENV) or READ_MEMORY_LIMIT,
        "temp_directory": str(spill),
    }


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """The snapshot file ``path`` opened read-only with ``read_config()``, nothing attached. Every read-only
    open in the library goes through here: DuckDB refuses a second connection to a file that one process
    already holds open with a different configuration."""
    return duckdb.connect(str(path), read_only=True, config=read_config())


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to snapshot ``path`` with its segments attached, so the large tables' views
    work, within ``read_config()``'s memory. Use one cursor per thread (``con.cursor()``): cursors share the
    attachments."""
    con = open_read_only(path)
    try:
        attach_segments(con, Path(path).parent)
        # written before summaries: read them through views until the next write (a file with no incidents is not
        # a warehouse snapshot, and has nothing to summarise)
        if not summaries.stored(con) and _has_relation(con, "incidents"):
            if summaries.partly_stored(con):  # an older definition stored some: read a copy with views for the rest
                con.close()
                copy = summaries.copy_with_views(Path(path), lambda c: attach_segments(c, Path(path).parent))
                con = open_read_only(copy)
                attach_segments(con, Path(path).parent)
            else:
                summaries.read_through_views(con)
    except BaseException:
        con.close()
        raise
    return con


# --------------------------------------------------------------------------------- segments
def segment_alias(segment_id: int) -> str:
    """The schema name a segment is attached under (and its file's stem): 'g00012'."""
    return f"g{int(segment_id):05d}"


def is_segmented(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the open snapshot keeps its large tables in segment files (schema 2)."""
    return _has_relation(con, "segments")


def _has_relation(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the open file's main schema has a table or view ``name``."""
    return bool(
        con.execute(
            "SELECT (SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = $name) + (SELECT count(*) FROM duckdb_views() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND view_name = $name)",
            {"name": name},
        ).fetchone()[0]
    )


def is_segmented_file(path: Path) -> bool:
    with contextlib.closing(open_read_only(path)) as con:
        return is_segmented(con)


def segment_files(snapshot: Path) -> list[str]:
    """The segment file names (``gNNNNN.duckdb``) snapshot ``snapshot`` reads."""
    with contextlib.closing(open_read_only(snapshot)) as con:
        if not is_segmented(con):
            return []
        return [Path(row[0]).name for row in con.execute("SELECT file FROM segments").fetchall()]


def attach_segments(con: duckdb.DuckDBPyConnection, directory: Path) -> list[int]:
    """Attach the open snapshot's segments read-only under their aliases; their ids, oldest first."""
    if not is_segmented(con):
        return []
    rows = con.execute("SELECT segment_id, file FROM segments ORDER BY segment_id").fetchall()
    attached = {row[0] for row in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    for segment_id, file in rows:
        alias = segment_alias(segment_id)
        if alias not in attached:
            path = Path(directory) / file
            if not path.exists():
                raise WarehouseError(f"{path}: a segment file of this snapshot is missing; restore it from a backup")
            con.execute(f"ATTACH {_sql_string(str(path))} AS {alias} (READ_ONLY)")
    return [row[0] for row in rows]


def segment_schema_sql(prefix: str) -> str:
    """The large tables' DDL (ilp/segment_schema.sql) for schema ``prefix`` ('' , 'template.' or 'g00012.')."""
    return (paths.PACKAGE_DIR / "segment_schema.sql").read_text(encoding="utf-8").replace("{schema}", prefix)


def _union_sql(con: duckdb.DuckDBPyConnection, table: str, segment_ids: list[int]) -> str:
    """``table``'s rows over ``segment_ids`` (and the empty template), replaced incident versions left out."""
    parts = [f"SELECT * FROM template.{table}"]
    for segment_id in segment_ids:
        alias = segment_alias(segment_id)
        if table == "incidents":  # always anti-joined, so a version replaced during a write disappears at once
            parts.append(
                f"SELECT i.* FROM {alias}.{table} i ANTI JOIN "
                f"(SELECT source, source_id FROM superseded WHERE segment_id = {int(segment_id)}) s "
                "USING (source, source_id)"
            )
        else:
            parts.append(f"SELECT * FROM {alias}.{table}")
    return "\nUNION ALL BY NAME\n".join(parts)


def writing_table(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """Where a write puts new rows of large table ``table``: ``gNNNNN.table`` in the segment the write is
    filling (the one attached segment the catalog does not list yet)."""
    listed = {segment_alias(row[0]) for row in con.execute("SELECT segment_id FROM segments").fetchall()}
    attached = {row[0] for row in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    new = sorted(name for name in attached - listed if SEGMENT_PATTERN.match(f"{name}.duckdb"))
    if len(new) != 1:
        raise WarehouseError(f"not inside a warehouse write (segments being written: {new})")
    return f"{new[0]}.{table}"


def replace_incidents(con: duckdb.DuckDBPyConnection, rows_sql: str, parameters=None) -> int:
    """Replace existing incidents with new versions: ``rows_sql`` selects complete incident rows (every
    column of ``incidents``) whose (source, source_id) exist. Their current versions are listed in
    ``superseded`` and the new ones written to the write's segment. Returns how many were replaced."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE replacing AS {rows_sql}", parameters or [])
    target = writing_table(con, "incidents")
    new_segment = int(target.split(".")[0][1:])
    con.execute(
        "INSERT INTO superseded SELECT v.segment_id, v.source, v.source_id FROM incident_versions v "
        "JOIN replacing r USING (source, source_id) WHERE v.segment_id <> ?",
        [new_segment],
    )
    count = con.execute("SELECT count(*) FROM replacing").fetchone()[0]
    con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM replacing")
    con.execute("DROP TABLE replacing")
    return count


def define_views(con: duckdb.DuckDBPyConnection, extra: list[int] = ()) -> None:
    """(Re)create the large tables' views over the catalog's segments (and ``extra`` ones being written),
    plus ``incident_versions``: every current incident with the segment holding it (for writes)."""
    ids = [row[0] for row in con.execute("SELECT segment_id FROM segments ORDER BY segment_id").fetchall()]
    ids += [i for i in extra if i not in ids]
    for table in SEGMENT_TABLES:
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {_union_sql(con, table, ids)}")
    located = ["SELECT source, source_id, NULL::INTEGER AS segment_id FROM template.incidents"] + [
        f"SELECT source, source_id, {int(i)} AS segment_id FROM {segment_alias(i)}.incidents" for i in ids
    ]
    con.execute(
        "CREATE OR REPLACE VIEW incident_versions AS SELECT v.* FROM (" + " UNION ALL ".join(located) + ") v "
        "ANTI JOIN superseded s USING (segment_id, source, source_id)"
    )


def _finish_segment(con: duckdb.DuckDBPyConnection, segment_id: int, file: Path, note: str) -> bool:
    """Record the segment a write filled (or drop it if the write added no large-table rows); redefine the
    views; detach it. True when the segment is kept."""
    alias = segment_alias(segment_id)
    rows = sum(con.execute(f"SELECT count(*) FROM {alias}.{table}").fetchone()[0] for table in SEGMENT_TABLES)
    if rows:
        con.execute(
            "INSERT INTO segments VALUES (?, ?, ?, ?, ?)",
            [segment_id, f"{SEGMENTS_DIR}/{file.name}", rows, _utcnow(), note],
        )
    define_views(con)
    con.execute(f"CHECKPOINT {alias}")
    con.execute(f"DETACH {alias}")
    if not rows:
        file.unlink(missing_ok=True)
        file.with_name(file.name + ".wal").unlink(missing_ok=True)
    return bool(rows)


def _build_catalog_from_single_file(con, parent: Path, directory: Path, next_id, note: str) -> None:
    """A snapshot from before segments (one file with every table): the new catalog gets its small tables,
    and its large tables become the first segment (written once, in time order)."""
    initialise(con, reference=False)
    con.execute(f"ATTACH {_sql_string(str(parent))} AS old (READ_ONLY)")
    small = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'old' AND schema_name = 'main'"
        ).fetchall()
        if row[0] not in SEGMENT_TABLES and row[0] not in ("segments", "superseded")
    ]
    for table in small:
        con.execute(f"DELETE FROM main.{table}")
        con.execute(f"INSERT INTO main.{table} BY NAME SELECT * FROM old.main.{table}")
    segment_id = next_id()
    alias = segment_alias(segment_id)
    file = directory / SEGMENTS_DIR / f"{alias}.duckdb"
    file.parent.mkdir(exist_ok=True)
    con.execute(f"ATTACH {_sql_string(str(file))} AS {alias}")
    con.execute(segment_schema_sql(f"{alias}."))
    for table in SEGMENT_TABLES:
        con.execute(
            f"INSERT INTO {alias}.{table} BY NAME SELECT * FROM old.main.{table} ORDER BY {SEGMENT_ORDER[table]}"
        )
    con.execute("DETACH old")
    _finish_segment(con, segment_id, file, f"{note} (moved out of a single-file snapshot)")
    _fsync(file)


def _schema_sql() -> str:
    return (paths.PACKAGE_DIR / "schema.sql").read_text(encoding="utf-8")


def _sql_string(text: str) -> str:
    """A SQL string literal for a path the code chose (never user input)."""
    return "'" + text.replace("'", "''") + "'"


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM snapshot_meta").fetchall())


def read_meta_file(path: Path) -> dict[str, str]:
    with contextlib.closing(connect_read_only(path)) as con:
        return read_meta(con)


def write_meta(con: duckdb.DuckDBPyConnection, values: Mapping[str, str]) -> None:
    con.executemany("INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])


# --------------------------------------------------------------------------------- schema
def initialise(con: duckdb.DuckDBPyConnection, *, reference: bool = True) -> None:
    """Create the catalog schema (small tables, the large tables' empty templates and views) and the harm
    macros, and load the shipped reference data (categories, taxonomies, harm tables)."""
    con.execute(_schema_sql())
    con.execute("CREATE SCHEMA IF NOT EXISTS template")
    con.execute(segment_schema_sql("template."))
    define_views(con)
    create_harm_macros(con)
    if reference:
        from ilp import reference as reference_data

        reference_data.load_all(con)


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
