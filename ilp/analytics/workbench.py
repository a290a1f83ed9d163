"""The analyst workbench: read-only SQL over the current warehouse snapshot, on a hardened connection.

The workbench runs SQL typed by a person, so it gets its own DuckDB instance, locked down in three
layers (DuckDB's "Securing DuckDB" guide, 2.0 option names):

1. **Only one read statement.** The text is parsed first (``extract_statements``); exactly one
   statement of type SELECT (which covers WITH, FROM-first, VALUES, TABLE, DESCRIBE, SHOW, SUMMARIZE)
   or a plain EXPLAIN runs. INSERT/UPDATE/DELETE/CREATE/DROP, ATTACH/DETACH, COPY/EXPORT, INSTALL/LOAD,
   SET/RESET/PRAGMA, CALL, transactions, EXPLAIN ANALYZE (it runs the whole statement, outside the
   limits below) and several statements at once are refused with a message saying why.
2. **A locked connection.** The snapshot is attached ``READ_ONLY`` to a fresh in-memory instance that
   has ``autoinstall_known_extensions``, ``autoload_known_extensions``, ``allow_community_extensions``,
   ``allow_persistent_secrets`` and Python replacement scans off, custom extension repositories
   forbidden, no temporary directory (nothing spills to disk) and a memory limit; then
   ``enable_external_access = false`` (no files, no network, no ATTACH of other files, no
   read_csv/read_text/glob, no INSTALL) and finally ``lock_configuration = true`` so no SET can give
   any of it back. Even a statement that slipped past layer 1 cannot write the snapshot, read a file
   or change a setting.
3. **Limits over the whole path to the screen.** The result is fetched as Arrow in small batches and
   cut at ``ROW_LIMIT`` rows or ``RESULT_BYTE_LIMIT`` bytes, whichever comes first (the page says which);
   a result whose first row alone is over the byte limit is refused (``ResultTooLarge``). Nested values
   turned into text for display count against the same bytes. ``TIME_LIMIT_S`` is one wall-clock
   budget from running the statement to the frame the page draws: a timer thread interrupts DuckDB
   (``connection.interrupt()``), and the conversion for display checks the same deadline. Every failure
   (DuckDB error, interrupt, Arrow or OS error while fetching, out of memory, too large) is a
   ``WorkbenchError`` with a message for the analyst. The byte limit keeps the page's message well under
   Streamlit's ``server.maxMessageSize`` and bounds what a session keeps.

Why not ``duckdb.connect(snapshot, read_only=True, config=...)``: the dashboard already holds the
snapshot open read-only with its own settings (ilp.warehouse.read_config), and DuckDB refuses a second
connection to the same file in one process with a different configuration. Attaching the file
READ_ONLY to a separate locked in-memory instance gives the same guarantees (see
tests/test_workbench.py, which checks each refusal on a copy of a real snapshot).

One fresh instance per query (about 20 ms to open): no state survives from one query to the next.
Never imports streamlit.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ilp.errors import UserError
from ilp.warehouse import SEGMENT_TABLES, attach_segments

ROW_LIMIT = 10_000
RESULT_BYTE_LIMIT = 50 * 1024 * 1024  # 50 MiB of Arrow data (and of text, for nested values) per result
TIME_LIMIT_S = 10.0
FETCH_BATCH_ROWS = 256  # small batches: at most one batch is read past the byte limit
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


class ResultTooLarge(WorkbenchError):
    """Not even one row of the result fits in the workbench's byte limit."""


class _DeadlinePassed(Exception):
    """Raised by display_frame when the wall-clock deadline passes while it converts."""


@dataclass(frozen=True)
class WorkbenchResult:
    frame: pd.DataFrame
    truncated: bool  # the result has more rows than the frame holds (row or byte limit)
    row_limit: int
    seconds: float
    statement_type: str
    byte_limited: bool = False  # the frame stops at the byte limit (before the row limit)
    byte_limit: int = RESULT_BYTE_LIMIT

    @property
    def summary(self) -> str:
        rows = len(self.frame)
        if self.byte_limited:
            return (
                f"Showing the first {rows:,} rows: the result is larger than the {_megabytes(self.byte_limit)} "
                "the workbench shows. Select fewer or narrower columns, add a LIMIT or aggregate. "
                f"({self.seconds:.2f} s)"
            )
        if self.truncated:
            return (
                f"Showing the first {rows:,} rows: the result has more, and the workbench stops at "
                f"{self.row_limit:,}. Add a LIMIT or aggregate to see it all. ({self.seconds:.2f} s)"
            )
        return f"{rows:,} row{'s' if rows != 1 else ''} in {self.seconds:.2f} s."


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:,.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:,.0f} KB"


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
        attach_segments(con, path.parent)  # the large tables' views read the snapshot's segment files
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
    if kind == "EXPLAIN" and EXPLAIN_ANALYZE.search(statements[0].query):
        raise QueryRefused(
            "Refused (EXPLAIN ANALYZE): it runs the whole statement to time it, outside the workbench's row "
            "and size limits. Use EXPLAIN for the plan, or run the query itself. (The word ANALYZE anywhere "
            "in an EXPLAIN statement is refused.)"
        )
    return kind


# Any ANALYZE/ANALYSE in an EXPLAIN statement: `EXPLAIN ANALYZE`, `EXPLAIN (ANALYZE, FORMAT json)`, with comments
# between the words. A false match (a column named analyze) is refused too, which is the safe side.
EXPLAIN_ANALYZE = re.compile(r"\banaly[sz]e\b", re.IGNORECASE)


def _first_lines(error: BaseException, lines: int = 3) -> str:
    return " ".join(str(error).strip().splitlines()[:lines])


# ----------------------------------------------------------------------------------------- running
def run_query(
    snapshot_path: str | Path,
    sql: str,
    *,
    row_limit: int = ROW_LIMIT,
    time_limit_s: float = TIME_LIMIT_S,
    byte_limit: int | None = None,
) -> WorkbenchResult:
    """Run one read-only statement over the snapshot: at most ``row_limit`` rows and ``byte_limit`` bytes
    (default ``RESULT_BYTE_LIMIT``), ``time_limit_s`` seconds from running it to the frame for display.
    Every failure is a WorkbenchError."""
    byte_limit = RESULT_BYTE_LIMIT if byte_limit is None else byte_limit
    started = time.perf_counter()
    con = hardened_connection(snapshot_path)
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        with contextlib.suppress(Exception):
            con.interrupt()

    def stopped() -> QueryTimedOut:
        return QueryTimedOut(
            f"Stopped after {time_limit_s:g} s: the workbench interrupts queries that run longer than "
            f"{time_limit_s:g} seconds, fetching and preparing the result included. Narrow it (a date range, "
            "a LIMIT, fewer or smaller joins or columns) and run it again."
        )

    timer = threading.Timer(time_limit_s, interrupt)
    timer.daemon = True
    reader = None
    try:
        kind = check_statement(con, sql)
        deadline = time.perf_counter() + time_limit_s
        timer.start()
        try:
            reader = con.sql(sql).to_arrow_reader(batch_size=FETCH_BATCH_ROWS)
            table, more, by_bytes = _fetch(reader, row_limit, byte_limit)
        except duckdb.InterruptException:
            raise stopped() from None
        except duckdb.PermissionException as error:
            raise QueryRefused(
                "Refused by the locked connection: the workbench cannot read or write files, use the network, "
                f"load extensions or change settings. DuckDB said: {_first_lines(error, 1)}"
            ) from None
        except (duckdb.OutOfMemoryException, MemoryError):
            if timed_out.is_set():
                raise stopped() from None
            raise WorkbenchError(
                f"The query needs more than the workbench's {MEMORY_LIMIT} of memory. Aggregate or filter "
                "before sorting or joining, select fewer columns, or add a LIMIT."
            ) from None
        except (duckdb.Error, pa.ArrowException, OSError) as error:
            # An interrupt while Arrow reads a batch arrives as OSError("INTERRUPT Error: Interrupted!").
            if timed_out.is_set():
                raise stopped() from None
            if "read-only" in str(error) or "lock" in str(error).lower():
                raise QueryRefused(f"Refused by the read-only connection: {_first_lines(error, 1)}") from None
            raise WorkbenchError(f"DuckDB: {_first_lines(error)}") from None
    finally:
        timer.cancel()
        if reader is not None:
            with contextlib.suppress(Exception):
                reader.close()
        con.close()
    if by_bytes and table.num_rows == 0:
        raise _too_large(byte_limit)
    try:
        frame = display_frame(table, byte_limit=byte_limit, deadline=deadline)
    except _DeadlinePassed:
        raise stopped() from None
    except MemoryError:
        raise _too_large(byte_limit) from None
    if len(frame) < table.num_rows:  # nested values as text took more than the byte limit
        if len(frame) == 0:
            raise _too_large(byte_limit)
        more = by_bytes = True
    return WorkbenchResult(
        frame=frame,
        truncated=more,
        row_limit=row_limit,
        seconds=time.perf_counter() - started,
        statement_type=kind,
        byte_limited=by_bytes,
        byte_limit=byte_limit,
    )


def _too_large(byte_limit: int) -> ResultTooLarge:
    return ResultTooLarge(
        f"Result too large: its first row alone is more than the {_megabytes(byte_limit)} the workbench shows. "
        "Select fewer or smaller columns, or compute a summary (len(list), count, sum, min/max) instead of "
        "returning the values themselves."
    )


def _fetch(reader: pa.RecordBatchReader, row_limit: int, byte_limit: int) -> tuple[pa.Table, bool, bool]:
    """Read batches until the rows or the bytes run out: (table, more rows exist, stopped by bytes)."""
    batches: list[pa.RecordBatch] = []
    rows = size = 0
    more = by_bytes = False
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        if rows + batch.num_rows > row_limit:
            batch, more = batch.slice(0, row_limit - rows), True
        fit = _rows_within(batch, byte_limit - size)
        if fit < batch.num_rows:
            batch, more, by_bytes = batch.slice(0, fit), True, True
        if batch.num_rows:
            batches.append(batch)
            rows += batch.num_rows
            size += batch.nbytes
        if more:
            break
    return pa.Table.from_batches(batches, schema=reader.schema), more, by_bytes


def _rows_within(batch: pa.RecordBatch, budget: int) -> int:
    """The most leading rows of ``batch`` whose Arrow data fits in ``budget`` bytes."""
    if batch.nbytes <= budget:
        return batch.num_rows
    low, high = 0, batch.num_rows  # slice(0, low) fits, slice(0, high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if batch.slice(0, middle).nbytes <= budget:
            low = middle
        else:
            high = middle
    return low


def _as_text(kind: pa.DataType) -> bool:
    return pa.types.is_nested(kind) or pa.types.is_interval(kind) or pa.types.is_binary(kind)


TEXT_CHUNK_ROWS = 256


def display_frame(table: pa.Table, *, byte_limit: int | None = None, deadline: float | None = None) -> pd.DataFrame:
    """Arrow result -> DataFrame a table, a chart and a CSV can all take.

    Duplicate column names get a suffix (``n``, ``n_2``); decimals become floats; nested values
    (lists, structs, maps), intervals and binary values become text. With ``byte_limit``, rows stop
    where the other columns' Arrow bytes plus that text would pass it (the frame may have fewer rows
    than the table); with ``deadline`` (a ``time.perf_counter()`` value), the text conversion stops
    with ``_DeadlinePassed`` once it has passed.
    """
    names, seen = [], {}
    for name in table.column_names:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    table = table.rename_columns(names)
    textual = [name for name, column in zip(table.column_names, table.columns) if _as_text(column.type)]
    texts, rows = {}, table.num_rows
    if textual:
        budget = None if byte_limit is None else byte_limit - table.drop_columns(textual).nbytes
        texts, rows = _text_columns(table, textual, budget, deadline)
    columns = {}
    for name, column in zip(table.column_names, table.columns):
        if name in texts:
            columns[name] = pd.Series(texts[name], dtype=object)
        elif pa.types.is_decimal(column.type):
            columns[name] = column.slice(0, rows).cast(pa.float64()).to_pandas()
        else:
            columns[name] = column.slice(0, rows).to_pandas()
    return pd.DataFrame(columns, columns=names)


def _text_columns(
    table: pa.Table, names: list[str], budget: int | None, deadline: float | None
) -> tuple[dict[str, list], int]:
    """The ``names`` columns as text, row chunk by row chunk, until ``budget`` characters or ``deadline``."""
    texts: dict[str, list] = {name: [] for name in names}
    used = 0
    for start in range(0, table.num_rows, TEXT_CHUNK_ROWS):
        if deadline is not None and time.perf_counter() > deadline:
            raise _DeadlinePassed
        chunk = {
            name: [None if v is None else str(v) for v in table[name].slice(start, TEXT_CHUNK_ROWS).to_pylist()]
            for name in names
        }
        for offset in range(len(chunk[names[0]])):
            used += sum(len(chunk[name][offset] or "") for name in names)
            if budget is not None and used > budget:
                for name in names:
                    texts[name].extend(chunk[name][:offset])
                return texts, start + offset
        for name in names:
            texts[name].extend(chunk[name])
    return texts, table.num_rows


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
        # the large tables are views over the segment files: their rows are the segments' rows
        rows = con.execute(
            'SELECT table_name AS "table", sum(estimated_size)::BIGINT AS rows FROM duckdb_tables() '
            "WHERE database_name = ? OR (database_name LIKE 'g%' AND list_contains(?, table_name)) GROUP BY ALL",
            [DATABASE_ALIAS, list(SEGMENT_TABLES)],
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
