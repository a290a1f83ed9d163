"""Per-snapshot summaries: small tables, built when a snapshot is written, that pages read instead of
scanning every incident.

A summary is the rows of a table macro in ``ilp/summaries.sql`` stored as a table in the snapshot's schema
``summary``:

- ``summary.weeks``, the weekly cube: incidents counted by week (and month) x district x beat x offence
  category x precision x shift, with located / with-location-text / domestic counts and the first and
  last time. Harm is not stored: a query multiplies ``incidents`` by ``category_harm``'s weight
  (ilp/harm.sql), so it equals ``incident_harm`` summed over the same incidents under any harm index,
  including one loaded later.
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

import datetime as dt

import duckdb

from ilp import paths

VERSION = "1"  # raise when ilp/summaries.sql changes what a stored summary holds: the next write rebuilds
META_KEY = "summaries"  # snapshot_meta key holding the VERSION the stored summaries were built by
REFRESH_KEY = "summaries_refresh"  # snapshot_meta key saying what the write did to them ('rebuilt', ...)
TABLES = {  # summary table -> the macro giving its rows
    "weeks": "week_rows('-infinity', 'infinity', true)",
    "facts": "facts_rows()",
    "districts": "district_rows()",
    "categories": "category_rows()",
}
MAX_RANGES = 24  # more separate ranges of touched weeks than this: rebuild the cube in one pass
CUBE_ORDER = "week, month, district, beat, category"  # time order keeps a page's week range a short scan


def _macros() -> list[str]:
    """The statements of ilp/summaries.sql, in order: the cube's macro first (the others read the cube, and
    DuckDB checks a macro's tables when it is created)."""
    text = (paths.PACKAGE_DIR / "summaries.sql").read_text(encoding="utf-8")
    return [statement for statement in text.split(";\n") if statement.strip()]


def _create(con: duckdb.DuckDBPyConnection, make_weeks: str) -> None:
    """The macros, with ``make_weeks`` (which creates ``summary.weeks``) run between the cube's and the rest."""
    first, *rest = _macros()
    con.execute(first)
    con.execute(make_weeks)
    for statement in rest:
        con.execute(statement)


def stored(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the open snapshot stores its summaries (a snapshot written before them does not)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'summary' AND table_name IN ('weeks', 'facts', 'districts', 'categories')"
    ).fetchone()[0]
    return found == len(TABLES)


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
    _store_metadata(con)
    return f"updated {len(weeks)} weeks"


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every summary of the snapshot being written from all its incidents."""
    con.execute("CREATE SCHEMA IF NOT EXISTS summary")
    _create(
        con, f"CREATE OR REPLACE TABLE summary.weeks AS SELECT * FROM summary.{TABLES['weeks']} ORDER BY {CUBE_ORDER}"
    )
    _store_metadata(con)
    con.execute("INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)", [META_KEY, VERSION])


def _store_metadata(con: duckdb.DuckDBPyConnection) -> None:
    for table, rows in TABLES.items():
        if table != "weeks":
            con.execute(f"CREATE OR REPLACE TABLE summary.{table} AS SELECT * FROM summary.{rows}")


def touched_weeks(con: duckdb.DuckDBPyConnection, segment: str) -> tuple[list[dt.date], bool]:
    """The weeks (Mondays, oldest first) holding an incident the write added or replaced (its new version
    in ``segment``; the version it replaced, listed in ``superseded``, in an earlier segment), and whether
    any of them is undated. A write that only adds incidents reads nothing but its own segment."""
    from ilp.warehouse import segment_alias

    same_incident = "n.source = o.source AND n.source_id = o.source_id"
    replaced = con.execute(
        f"SELECT DISTINCT o.segment_id FROM superseded o SEMI JOIN {segment}.incidents n ON {same_incident}"
    ).fetchall()
    parts = [f"SELECT occurred_at FROM {segment}.incidents"] + [
        f"SELECT o.occurred_at FROM {segment_alias(row[0])}.incidents o SEMI JOIN {segment}.incidents n ON {same_incident}"
        for row in replaced
    ]
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
