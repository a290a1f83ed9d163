"""The analyst workbench: read-only SQL over the current warehouse snapshot, on a hardened connection.

The workbench runs SQL typed by a person, so it gets its own DuckDB instance, locked down in three
layers (DuckDB's "Securing DuckDB" guide, 2.0 option names):

1. **Only one read statement.** The text is parsed first (``extract_statements``); exactly one
   statement of type SELECT (which covers WITH, FROM-first, VALUES, TABLE, DESCRIBE, SHOW, SUMMARIZE)
   or EXPLAIN runs. INSERT/UPDATE/DELETE/CREATE/DROP, ATTACH/DETACH, COPY/EXPORT, INSTALL/LOAD,
   SET/RESET/PRAGMA, CALL, transactions and several statements at once are refused with a message
   saying why.
2. **A locked connection.** The snapshot is attached ``READ_ONLY`` to a fresh in-memory instance that
   has ``autoinstall_known_extensions``, ``autoload_known_extensions``, ``allow_community_extensions``,
   ``allow_persistent_secrets`` and Python replacement scans off, custom extension repositories
   forbidden, no temporary directory (nothing spills to disk) and a memory limit; then
   ``enable_external_access = false`` (no files, no network, no ATTACH of other files, no
   read_csv/read_text/glob, no INSTALL) and finally ``lock_configuration = true`` so no SET can give
   any of it back. Even a statement that slipped past layer 1 cannot write the snapshot, read a file
   or change a setting.
3. **Limits.** Results are cut at ``ROW_LIMIT`` rows (the page says so) and a query still running
   after ``TIME_LIMIT_S`` seconds is interrupted by a timer thread (``connection.interrupt()``).

Why not ``duckdb.connect(snapshot, read_only=True, config=...)``: the dashboard already holds the
snapshot open read-only with default settings (ilp.ui.context), and DuckDB refuses a second
connection to the same file in one process with a different configuration. Attaching the file
READ_ONLY to a separate locked in-memory instance gives the same guarantees (see
tests/test_workbench.py, which checks each refusal on a copy of a real snapshot).

One fresh instance per query (about 20 ms to open): no state survives from one query to the next.
Never imports streamlit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ilp.errors import UserError

ROW_LIMIT = 10_000
TIME_LIMIT_S = 10.0
MEMORY_LIMIT = "2GB"
THREADS = 4
DATABASE_ALIAS = "warehouse"

# Set when the instance starts (before anything is attached).
STARTUP_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "allow_extension_repositories": "forbidden",
    "python_enable_replacements": False,  # `FROM some_python_variable` must not read the app's memory
    "temp_directory": "",  # nothing spills to disk: a too-big query fails with a clear message
    "memory_limit": MEMORY_LIMIT,
    "threads": THREADS,
}
# Set after the snapshot is attached, in this order (lock last).
LOCKDOWN = (
    "SET enable_progress_bar = false",  # a session option: no progress bar printed on the server's console
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)

ALLOWED_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})
REFUSAL_REASONS = {
    "INSERT": "writing to the warehouse is not allowed",
    "UPDATE": "writing to the warehouse is not allowed",
    "DELETE": "writing to the warehouse is not allowed",
    "CREATE": "creating tables, views, macros or temporary tables is not allowed",
    "DROP": "dropping objects is not allowed",
    "ALTER": "changing the schema is not allowed",
    "ATTACH": "attaching other databases is not allowed",
    "DETACH": "detaching databases is not allowed",
    "COPY": "reading or writing files is not allowed",
    "COPY_DATABASE": "copying databases is not allowed",
    "EXPORT": "exporting to files is not allowed (use the CSV download under the results)",
    "LOAD": "installing or loading extensions is not allowed",
    "SET": "changing settings is not allowed",
    "VARIABLE_SET": "setting variables is not allowed",
    "PRAGMA": "PRAGMA statements are not allowed (use DESCRIBE <table> or SELECT * FROM pragma_table_info('<table>'))",
    "CALL": "CALL is not allowed (use SELECT * FROM <table function>(...))",
    "TRANSACTION": "transactions are not needed for reading",
    "UPDATE_EXTENSIONS": "updating extensions is not allowed",
}

EXAMPLE_QUERIES: dict[str, str] = {
    "Incidents in the snapshot": "SELECT count(*) AS incidents FROM incidents",
    "Incidents by offence category (with labels)": (
        "SELECT c.label AS offence, count(*) AS incidents\n"
        "FROM incidents i JOIN offence_categories c ON c.category = i.offense_category\n"
        "GROUP BY ALL ORDER BY incidents DESC"
    ),
    "Weekly incidents and CCHI harm by district": (
        "SELECT date_trunc('week', i.occurred_at)::DATE AS week, i.district,\n"
        "       count(*) AS incidents, sum(i.harm) AS harm_days\n"
        "FROM incident_harm('cchi', '2016') i  -- the one definition of harm (proactive offences weigh 0)\n"
        "WHERE i.occurred_at >= (SELECT max(occurred_at) FROM incidents) - INTERVAL 12 WEEK\n"
        "GROUP BY ALL ORDER BY week, district"
    ),
    "Incidents by hour of day and weekday": (
        "SELECT dayname(occurred_at) AS weekday, hour(occurred_at) AS hour, count(*) AS incidents\n"
        "FROM incidents WHERE occurred_precision = 'exact'\n"
        "GROUP BY ALL ORDER BY isodow(any_value(occurred_at)), hour"
    ),
    "Top 20 beats by residential burglary in the last 8 weeks": (
        "SELECT beat, district, count(*) AS burglaries\n"
        "FROM incidents\n"
        "WHERE offense_category = 'burglary_residential'\n"
        "  AND occurred_at >= (SELECT max(occurred_at) FROM incidents) - INTERVAL 8 WEEK\n"
        "GROUP BY ALL ORDER BY burglaries DESC LIMIT 20"
    ),
    "Columns of a table": "DESCRIBE incidents",
}


class WorkbenchError(UserError):
    """A query the workbench would not or could not run; the message is for the analyst."""


class QueryRefused(WorkbenchError):
    """The statement is not a single read statement, or the locked connection refused it."""


class QueryTimedOut(WorkbenchError):
    """The query ran past the time limit and was interrupted."""


@dataclass(frozen=True)
class WorkbenchResult:
    frame: pd.DataFrame
    truncated: bool  # more rows existed than ROW_LIMIT; only the first ROW_LIMIT are in frame
    row_limit: int
    seconds: float
    statement_type: str

    @property
    def summary(self) -> str:
        rows = len(self.frame)
        if self.truncated:
            return (
                f"Showing the first {rows:,} rows: the result has more, and the workbench stops at "
                f"{self.row_limit:,}. Add a LIMIT or aggregate to see it all. ({self.seconds:.2f} s)"
            )
        return f"{rows:,} row{'s' if rows != 1 else ''} in {self.seconds:.2f} s."


# ----------------------------------------------------------------------------------------- connection
def hardened_connection(snapshot_path: str | Path) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB instance with the snapshot attached READ_ONLY and the configuration locked."""
    path = Path(snapshot_path)
    if not path.exists():
        raise WorkbenchError(f"The snapshot {path} does not exist (was it pruned? reload the page).")
    con = duckdb.connect(":memory:", config=dict(STARTUP_CONFIG))
    try:
        con.execute(f"ATTACH {_sql_string(str(path))} AS {DATABASE_ALIAS} (READ_ONLY)")
        con.execute(f"USE {DATABASE_ALIAS}")
        for statement in LOCKDOWN:
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con


def _sql_string(text: str) -> str:
    """A SQL string literal (used only for the snapshot path, which the code chooses, never the user)."""
    return "'" + text.replace("'", "''") + "'"


# ----------------------------------------------------------------------------------------- checking
def check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The statement type when ``sql`` is exactly one SELECT/EXPLAIN statement; else QueryRefused."""
    if not sql or not sql.strip().strip(";").strip():
        raise QueryRefused("Type a SELECT statement to run.")
    try:
        statements = con.extract_statements(sql)
    except duckdb.ParserException as error:
        raise WorkbenchError(f"DuckDB could not parse the query: {_first_lines(error)}") from None
    except (duckdb.Error, ValueError) as error:
        # e.g. statement types the Python client has no name for (UPDATE EXTENSIONS)
        raise QueryRefused(
            "The workbench is read-only and runs only SELECT statements; this statement is not one "
            f"({_first_lines(error)})."
        ) from None
    if len(statements) != 1:
        raise QueryRefused(f"Run one statement at a time: found {len(statements)} statements separated by ';'.")
    try:
        kind = statements[0].type.name
    except ValueError:  # a statement type the Python client has no name for (e.g. UPDATE EXTENSIONS)
        kind = "UNKNOWN"
    if kind not in ALLOWED_STATEMENTS:
        reason = REFUSAL_REASONS.get(kind, "only reading statements run here")
        raise QueryRefused(
            f"Refused ({kind} statement): the workbench is read-only and {reason}. "
            "Only SELECT (including WITH ..., FROM ..., DESCRIBE, SUMMARIZE) and EXPLAIN run."
        )
    return kind


def _first_lines(error: BaseException, lines: int = 3) -> str:
    return " ".join(str(error).strip().splitlines()[:lines])


# ----------------------------------------------------------------------------------------- running
def run_query(
    snapshot_path: str | Path, sql: str, *, row_limit: int = ROW_LIMIT, time_limit_s: float = TIME_LIMIT_S
) -> WorkbenchResult:
    """Run one read-only statement over the snapshot; at most ``row_limit`` rows, at most ``time_limit_s``."""
    started = time.perf_counter()
    con = hardened_connection(snapshot_path)
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        with contextlib.suppress(Exception):
            con.interrupt()

    timer = threading.Timer(time_limit_s, interrupt)
    timer.daemon = True
    try:
        kind = check_statement(con, sql)
        timer.start()
        try:
            reader = con.sql(sql).to_arrow_reader(batch_size=min(row_limit + 1, 100_000))
            batches, rows = [], 0
            while rows <= row_limit:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                batches.append(batch)
                rows += batch.num_rows
            table = pa.Table.from_batches(batches, schema=reader.schema)
        except duckdb.InterruptException:
            raise QueryTimedOut(
                f"Stopped after {time_limit_s:g} s: the workbench interrupts queries that run longer than "
                f"{time_limit_s:g} seconds. Narrow it (a date range, a LIMIT, fewer or smaller joins) and run it again."
            ) from None
        except duckdb.PermissionException as error:
            raise QueryRefused(
                "Refused by the locked connection: the workbench cannot read or write files, use the network, "
                f"load extensions or change settings. DuckDB said: {_first_lines(error, 1)}"
            ) from None
        except duckdb.OutOfMemoryException:
            raise WorkbenchError(
                f"The query needs more than the workbench's {MEMORY_LIMIT} of memory. Aggregate or filter "
                "before sorting or joining, or add a LIMIT."
            ) from None
        except duckdb.Error as error:
            if timed_out.is_set():
                raise QueryTimedOut(f"Stopped after {time_limit_s:g} s (time limit).") from None
            if "read-only" in str(error) or "lock" in str(error).lower():
                raise QueryRefused(f"Refused by the read-only connection: {_first_lines(error, 1)}") from None
            raise WorkbenchError(f"DuckDB: {_first_lines(error)}") from None
    finally:
        timer.cancel()
        con.close()
    truncated = table.num_rows > row_limit
    frame = display_frame(table.slice(0, row_limit))
    return WorkbenchResult(
        frame=frame,
        truncated=truncated,
        row_limit=row_limit,
        seconds=time.perf_counter() - started,
        statement_type=kind,
    )


def display_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow result -> DataFrame a table, a chart and a CSV can all take.

    Duplicate column names get a suffix (``n``, ``n_2``); decimals become floats; nested values
    (lists, structs, maps) and intervals become text.
    """
    names, seen = [], {}
    for name in table.column_names:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    table = table.rename_columns(names)
    columns = {}
    for name, column in zip(table.column_names, table.columns):
        kind = column.type
        if pa.types.is_decimal(kind):
            columns[name] = column.cast(pa.float64()).to_pandas()
        elif pa.types.is_nested(kind) or pa.types.is_interval(kind) or pa.types.is_binary(kind):
            columns[name] = pd.Series([None if v is None else str(v) for v in column.to_pylist()], dtype=object)
        else:
            columns[name] = column.to_pandas()
    return pd.DataFrame(columns, columns=names)


# ----------------------------------------------------------------------------------------- schema
@lru_cache(maxsize=4)
def schema(snapshot_path: str) -> pd.DataFrame:
    """One row per (table, column) of the snapshot: table, column, type, ordinal, table rows."""
    con = hardened_connection(snapshot_path)
    try:
        columns = con.execute(
            'SELECT table_name AS "table", column_name AS "column", data_type AS type, column_index AS position '
            "FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
            "ORDER BY table_name, column_index",
            [DATABASE_ALIAS],
        ).df()
        rows = con.execute(
            'SELECT table_name AS "table", estimated_size AS rows FROM duckdb_tables() WHERE database_name = ?',
            [DATABASE_ALIAS],
        ).df()
    finally:
        con.close()
    return columns.merge(rows, on="table", how="left")


# ----------------------------------------------------------------------------------------- charts
CHART_KINDS = ("bar", "line", "scatter")


def chart_figure(
    frame: pd.DataFrame,
    *,
    kind: str,
    x: str,
    y: str,
    colour: str | None = None,
    title: str | None = None,
    y_unit: str = "",
):
    """A plotly figure of the result: ``kind`` in CHART_KINDS, y against x, optionally coloured by a column."""
    import plotly.express as px

    if kind not in CHART_KINDS:
        raise ValueError(f"chart type must be one of {', '.join(CHART_KINDS)}")
    for column in (x, y, colour):
        if column is not None and column not in frame.columns:
            raise ValueError(f"no column {column!r} in the result")
    draw = {"bar": px.bar, "line": px.line, "scatter": px.scatter}[kind]
    data = frame.sort_values(x) if kind == "line" else frame
    options = {"color": colour} if colour else {}
    if kind == "bar" and colour:
        options["barmode"] = "group"
    y_label = f"{y} ({y_unit})" if y_unit else f"{y} (units as returned by the query)"
    fig = draw(
        data,
        x=x,
        y=y,
        title=title or f"{y} by {x}" + (f" and {colour}" if colour else ""),
        labels={x: x, y: y_label},
        **options,
    )
    fig.update_layout(xaxis_title=x, yaxis_title=y_label, legend_title_text=colour or "")
    return fig
