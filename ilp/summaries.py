"""Per-snapshot summaries: small tables, built when a snapshot is written, that pages read instead of
scanning every incident.

A summary is the rows of a table macro in ``ilp/summaries.sql`` stored as a table in the snapshot's schema
``summary``:

- ``summary.weeks``, the weekly cube: incidents counted by week (and month) x district x beat x offence
  category x precision x shift, with located / with-location-text / domestic counts and the first and
  last time. Harm is not stored: a query multiplies ``incidents`` by ``category_harm``'s weight
  (ilp/harm.sql), so it equals ``incident_harm`` summed over the same incidents under any harm index,
  including one loaded later.
- ``summary.victims`` (victim links with their incident's time and place, so repeat-victim figures read
  the days they need) and ``summary.source_weeks`` (the data-quality cube: incidents by week, source,
  location status, clearance status, arrest flag recorded, unmapped code), kept by week like the cube
  (``WEEKLY_TABLES``).
- ``summary.facts`` (one row: first and last day, counts of what the incidents carry),
  ``summary.districts`` and ``summary.categories`` (those with incidents): the snapshot's metadata,
  computed from ``summary.weeks``.

Maintenance (:func:`refresh`, called by ``Warehouse._write_locked`` after the writer's body): only the
weeks the write touched are recomputed, those of the incidents in the write's new segment and of the
versions they replace; they are deleted from the cube and re-aggregated from ``incidents``, one range of
consecutive weeks at a time, so a 1,000-row ingest costs the same in a large warehouse as in a small one.
The cube is rebuilt in full when it is missing (a snapshot written before summaries: on its next write)
or was built by another definition (``VERSION``). Until then a reader of such a snapshot reads the same
macros through views (:func:`read_through_views`): every figure is the same, only slower.
"""

from __future__ import annotations

import atexit
import datetime as dt
import shutil
import tempfile
import threading
from pathlib import Path

import duckdb

from ilp import paths

VERSION = "2"  # raise when ilp/summaries.sql changes what a stored summary holds: the next write rebuilds
META_KEY = "summaries"  # snapshot_meta key holding the VERSION the stored summaries were built by
REFRESH_KEY = "summaries_refresh"  # snapshot_meta key saying what the write did to them ('rebuilt', ...)
TABLES = {  # summary table -> the macro giving its rows
    "weeks": "week_rows('-infinity', 'infinity', true)",
    "facts": "facts_rows()",
    "districts": "district_rows()",
    "categories": "category_rows()",
}
# Issue 10: summaries kept by week like the cube (each macro takes week_from, week_to, undated; each table has
# a `week` column, NULL for undated incidents): summary table -> (macro, row order of a rebuild).
WEEKLY_TABLES = {
    "victims": ("victim_rows", "occurred_at"),  # victim links with their incident's time and place
    "source_weeks": ("source_week_rows", "week, source"),  # the data-quality cube
}
MAX_RANGES = 24  # more separate ranges of touched weeks than this: rebuild the cube in one pass
CUBE_ORDER = "week, month, district, beat, category"  # time order keeps a page's week range a short scan


def _macros() -> list[str]:
    """The statements of ilp/summaries.sql, in order: the cube's macro (and the scalar macro it uses) first; the
    others read the cube, and DuckDB checks a macro's tables when it is created."""
    text = (paths.PACKAGE_DIR / "summaries.sql").read_text(encoding="utf-8")
    return [statement for statement in text.split(";\n") if statement.strip()]


def _create(con: duckdb.DuckDBPyConnection, make_weeks: str) -> None:
    """The macros, with ``make_weeks`` (which creates ``summary.weeks``) run just after the cube's."""
    statements = _macros()
    cube = next(k for k, statement in enumerate(statements) if "MACRO summary.week_rows(" in statement) + 1
    for statement in statements[:cube]:
        con.execute(statement)
    con.execute(make_weeks)
    for statement in statements[cube:]:
        con.execute(statement)


def stored(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the open snapshot stores its summaries (a snapshot written before them does not)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'summary' AND list_contains($tables, table_name)",
        {"tables": [*TABLES, *WEEKLY_TABLES]},
    ).fetchone()[0]
    return found == len(TABLES) + len(WEEKLY_TABLES)


def _built_version(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute("SELECT value FROM snapshot_meta WHERE key = ?", [META_KEY]).fetchone()
    return row[0] if row else None


# ------------------------------------------------------------------------------------------ writing
def refresh(con: duckdb.DuckDBPyConnection, segment: str) -> str:
    """Bring the summaries of the snapshot being written up to date with its incidents: ``segment`` is the
    schema the write put its new rows in ('g00012'). Returns
    what was done, also kept in snapshot_meta: 'rebuilt', 'updated N weeks' or 'unchanged'."""
    done = _refresh(con, segment)
    con.execute("INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)", [REFRESH_KEY, done])
    return done


def _refresh(con: duckdb.DuckDBPyConnection, segment: str) -> str:
    if not stored(con) or _built_version(con) != VERSION:
        rebuild(con)
        return "rebuilt"
    _create(con, "SELECT 1")
    weeks, undated = touched_weeks(con, segment)
    if not weeks and not undated:
        return "unchanged"
    ranges = _consecutive(weeks)
    cube_weeks = con.execute("SELECT count(DISTINCT week) FROM summary.weeks").fetchone()[0]
    if len(ranges) > MAX_RANGES or len(weeks) * 2 > cube_weeks:
        rebuild(con)
        return "rebuilt"
    con.execute("CREATE OR REPLACE TEMP TABLE summary_touched (week DATE)")
    con.executemany("INSERT INTO summary_touched VALUES (?)", [(week,) for week in weeks])
    con.execute(
        "DELETE FROM summary.weeks WHERE week IN (SELECT week FROM summary_touched)"
        + (" OR week IS NULL" if undated else "")
    )
    con.execute("DROP TABLE summary_touched")
    for first, last in ranges:
        con.execute(
            f"INSERT INTO summary.weeks SELECT * FROM summary.week_rows(?, ?, false) ORDER BY {CUBE_ORDER}",
            [first, last + dt.timedelta(days=7)],
        )
    if undated:
        con.execute("INSERT INTO summary.weeks SELECT * FROM summary.week_rows(NULL, NULL, true)")
    _refresh_weekly_tables(con, ranges, undated)
    _store_metadata(con)
    return f"updated {len(weeks)} weeks"


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every summary of the snapshot being written from all its incidents."""
    con.execute("CREATE SCHEMA IF NOT EXISTS summary")
    _create(
        con, f"CREATE OR REPLACE TABLE summary.weeks AS SELECT * FROM summary.{TABLES['weeks']} ORDER BY {CUBE_ORDER}"
    )
    for table, (macro, order) in WEEKLY_TABLES.items():
        con.execute(
            f"CREATE OR REPLACE TABLE summary.{table} AS "
            f"SELECT * FROM summary.{macro}('-infinity', 'infinity', true) ORDER BY {order}"
        )
    _store_metadata(con)
    con.execute("INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)", [META_KEY, VERSION])


def _store_metadata(con: duckdb.DuckDBPyConnection) -> None:
    for table, rows in TABLES.items():
        if table != "weeks":
            con.execute(f"CREATE OR REPLACE TABLE summary.{table} AS SELECT * FROM summary.{rows}")


def _refresh_weekly_tables(
    con: duckdb.DuckDBPyConnection, ranges: list[tuple[dt.date, dt.date]], undated: bool
) -> None:
    """WEEKLY_TABLES: delete the touched weeks (``ranges`` of Mondays; the undated rows when ``undated``) and
    re-aggregate them from ``incidents``, as for the cube."""
    for table, (macro, _) in WEEKLY_TABLES.items():
        for first, last in ranges:
            con.execute(f"DELETE FROM summary.{table} WHERE week >= ? AND week <= ?", [first, last])
        if undated:
            con.execute(f"DELETE FROM summary.{table} WHERE week IS NULL")
        for first, last in ranges:
            con.execute(
                f"INSERT INTO summary.{table} SELECT * FROM summary.{macro}(?, ?, false)",
                [first, last + dt.timedelta(days=7)],
            )
        if undated:
            con.execute(f"INSERT INTO summary.{table} SELECT * FROM summary.{macro}(NULL, NULL, true)")


def touched_weeks(con: duckdb.DuckDBPyConnection, segment: str) -> tuple[list[dt.date], bool]:
    """The weeks (Mondays, oldest first) holding an incident the write added or replaced (its new version
    in ``segment``; the version it replaced, listed in ``superseded``, in an earlier segment) or linked to a
    person the write added (summary.victims), and whether any of them is undated. A write that only adds
    incidents (with their people) reads nothing but its own segment."""
    from ilp.warehouse import segment_alias

    same_incident = "n.source = o.source AND n.source_id = o.source_id"
    replaced = con.execute(
        f"SELECT DISTINCT o.segment_id FROM superseded o SEMI JOIN {segment}.incidents n ON {same_incident}"
    ).fetchall()
    parts = [f"SELECT occurred_at FROM {segment}.incidents"] + [
        f"SELECT o.occurred_at FROM {segment_alias(row[0])}.incidents o SEMI JOIN {segment}.incidents n ON {same_incident}"
        for row in replaced
    ]
    # people the write links to an incident it did not write (itself in an earlier segment)
    linked_elsewhere = f"SELECT source, source_id FROM {segment}.incident_persons ANTI JOIN {segment}.incidents USING (source, source_id)"
    if con.execute(f"SELECT EXISTS ({linked_elsewhere})").fetchone()[0]:
        parts.append(
            f"SELECT i.occurred_at FROM incidents i SEMI JOIN ({linked_elsewhere}) p USING (source, source_id)"
        )
    rows = con.execute(
        "SELECT DISTINCT CAST(date_trunc('week', occurred_at) AS DATE) AS week FROM ("
        + " UNION ALL ".join(parts)
        + ") ORDER BY week NULLS LAST"
    ).fetchall()
    weeks = [row[0] for row in rows if row[0] is not None]
    return weeks, len(weeks) < len(rows)


def _consecutive(weeks: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted Mondays as ranges of consecutive weeks: [(first Monday, last Monday), ...]."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for week in weeks:
        if ranges and week - ranges[-1][1] == dt.timedelta(days=7):
            ranges[-1] = (ranges[-1][0], week)
        else:
            ranges.append((week, week))
    return ranges


# ------------------------------------------------------------------------------------------ reading
def read_through_views(con: duckdb.DuckDBPyConnection) -> None:
    """On a read-only connection to a snapshot written before summaries: offer ``summary.<table>`` as views
    over the same macros, in an in-memory database named ``summary`` (cursors of the connection share it).
    Queries give the same figures as on a snapshot that stores them, more slowly; any write stores them."""
    con.execute("ATTACH ':memory:' AS summary (READ_WRITE)")
    _create(con, f"CREATE VIEW summary.weeks AS SELECT * FROM summary.{TABLES['weeks']}")
    for table, rows in TABLES.items():
        if table != "weeks":
            con.execute(f"CREATE VIEW summary.{table} AS SELECT * FROM summary.{rows}")
    for table, (macro, _) in WEEKLY_TABLES.items():
        con.execute(f"CREATE VIEW summary.{table} AS SELECT * FROM summary.{macro}('-infinity', 'infinity', true)")


# Issue 10: a snapshot whose summaries were built by an older definition that lacked some of today's tables
# (summaries VERSION 1 stored weeks, facts, districts and categories only) cannot take the in-memory schema
# of read_through_views: its own schema `summary` would make every `summary.<table>` ambiguous. It is read
# from a private copy of its catalog (a few MB; the segments are only attached) in which the missing tables
# are views over their macros, reopened read-only; the warehouse is never written, and its next write stores
# them.
_copies: dict[Path, Path] = {}
_copies_lock = threading.Lock()
_copies_folder: Path | None = None


def partly_stored(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the open snapshot has a schema ``summary`` (it stores some summaries, maybe not all)."""
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_schemas() WHERE database_name = current_database() AND schema_name = 'summary'"
        ).fetchone()[0]
    )


def copy_with_views(snapshot: Path, attach) -> Path:
    """A private copy of catalog ``snapshot`` whose missing summaries are views (made once per process);
    ``attach(con)`` attaches the warehouse's segments to a connection."""
    global _copies_folder
    snapshot = Path(snapshot).resolve()
    with _copies_lock:
        if snapshot in _copies:
            return _copies[snapshot]
        if _copies_folder is None:
            _copies_folder = Path(tempfile.mkdtemp(prefix="ilp-summaries-"))
            atexit.register(shutil.rmtree, _copies_folder, True)
        copy = _copies_folder / f"{len(_copies):04d}" / snapshot.name  # same name: same current_database()
        copy.parent.mkdir()
        shutil.copyfile(snapshot, copy)
        con = duckdb.connect(str(copy))
        try:
            attach(con)
            present = {
                row[0]
                for row in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                    "AND schema_name = 'summary'"
                ).fetchall()
            }
            for statement in _macros():
                con.execute(statement)
            for table, rows in TABLES.items():
                if table not in present:
                    arguments = rows if table != "weeks" else TABLES["weeks"]
                    con.execute(f"CREATE VIEW summary.{table} AS SELECT * FROM summary.{arguments}")
            for table, (macro, _) in WEEKLY_TABLES.items():
                if table not in present:
                    con.execute(
                        f"CREATE VIEW summary.{table} AS SELECT * FROM summary.{macro}('-infinity', 'infinity', true)"
                    )
            con.execute("CHECKPOINT")
        finally:
            con.close()
        _copies[snapshot] = copy
        return copy
