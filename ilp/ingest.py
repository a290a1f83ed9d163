"""Ingest source exports into a new warehouse snapshot, by mapping file.

The whole batch is read, validated and normalised in DuckDB SQL (no Python loops over rows), so a
city's yearly export loads at close to DuckDB's own CSV speed (benchmarks/ingest.py measures it).
The SQL that reads and normalises a file is compiled from the mapping in ``ilp/mapping_sql.py``; this
module runs it and owns the batch: file checks and hashes, rejects with their file line numbers, the
merge into the new snapshot and the ingest log.

Accounting rule, checked on every run: loaded + updated + unchanged + rejected = rows read.
- loaded: an id the warehouse did not have;
- updated: an id it had, with different content (the earlier version goes to incident_history);
- unchanged: an id it had, identical;
- rejected: kept in ``rejects`` with file, line, field, reason and the raw row.
A file that cannot be used at all (unreadable, empty, missing a mapped column) fails the whole batch
with one message naming the file, and no snapshot is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import numpy as np

from ilp import mapping as mapping_module
from ilp.errors import UserError
from ilp.mapping import Mapping
from ilp.mapping_sql import MAX_LINE_BYTES, final_sql, ident, parsed_sql, read_csv_sql
from ilp.warehouse import Warehouse, next_ingest_id

Progress = Callable[[str, float], None]


class IngestError(UserError):
    """The batch cannot be used at all; nothing was written."""


@dataclass
class IngestResult:
    ingest_id: int
    source: str
    mapping: str
    files: list[str]
    rows_read: int
    loaded: int
    updated: int
    unchanged: int
    rejected: int
    unmapped_codes: int
    missing_location: int
    snapshot: str
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------ reading
def _check_file(con: duckdb.DuckDBPyConnection, m: Mapping, path: Path, index: int) -> list[str]:
    """Fail the batch, naming the file, when it cannot be used at all; return its column names."""
    if not path.exists():
        raise IngestError(f"{path}: file not found.")
    if not os.access(path, os.R_OK):
        raise IngestError(f"{path}: cannot be read (permission denied).")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty (0 bytes): there is no header row to map.")
    columns = _header(m, path)
    missing = [column for column in m.columns_used() if column not in columns]
    if missing:
        hint = ""
        if len(columns) == 1:
            hint = (
                f" The file read as a single column {columns[0][:80]!r}: is the delimiter right? "
                f"The mapping says {m.delimiter!r}."
            )
        raise IngestError(
            f"{path}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (mapping {m.path.name}).{hint} "
            f"Columns found: {', '.join(columns[:40])}."
        )
    return columns


def _header(m: Mapping, path: Path) -> list[str]:
    """The file's column names as DuckDB's read_csv will name them (a repeated name gets _1, _2 ...)."""
    import csv
    import gzip
    import io

    opener = gzip.open if path.suffix == ".gz" else open
    encoding = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "utf-16": "utf-16"}[m.encoding]
    try:
        with opener(path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
            for _ in range(m.skip_rows):
                text.readline()
            first = text.readline()
    except (OSError, EOFError) as error:
        raise IngestError(f"{path}: cannot be read ({error}).") from None
    if not first.strip():
        raise IngestError(f"{path}: no header row (the file is empty or starts with a blank line).")
    row = next(csv.reader([first], delimiter=m.delimiter, quotechar=m.quote))
    if not m.header:
        return [f"column{i}" for i in range(len(row))]
    names: list[str] = []
    seen: dict[str, int] = {}
    for position, name in enumerate(cell.strip() for cell in row):
        if not name:
            name = f"column{position}"  # DuckDB's name for an unnamed column
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        seen.setdefault(name, 0)
        names.append(name)
    return names


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:300]


# ------------------------------------------------------------------------------------------ normalising
def _reproject(con: duckdb.DuckDBPyConnection, m: Mapping, table: str) -> None:
    """Turn projected x/y (mapping [location] epsg) into WGS84 lat/lon in place."""
    import pyproj

    frame = con.execute(
        f"SELECT _file, _row, lon_value AS x, lat_value AS y FROM {table} WHERE lon_value IS NOT NULL AND lat_value IS NOT NULL"
    ).df()
    if frame.empty:
        return
    transformer = pyproj.Transformer.from_crs(m.epsg, 4326, always_xy=True)
    lon, lat = transformer.transform(frame["x"].to_numpy(), frame["y"].to_numpy())
    frame["lon"], frame["lat"] = np.asarray(lon), np.asarray(lat)
    zero = (frame["x"] == 0) & (frame["y"] == 0)
    frame.loc[zero, ["lon", "lat"]] = 0.0  # keep "0,0" recognisable as a placeholder
    con.register("reprojected", frame[["_file", "_row", "lon", "lat"]])
    con.execute(
        f"UPDATE {table} SET lon_value = r.lon, lat_value = r.lat FROM reprojected r "
        f"WHERE {table}._file = r._file AND {table}._row = r._row"
    )
    con.unregister("reprojected")


# ------------------------------------------------------------------------------------------ lines
@dataclass
class _Layout:
    """Where a file's records sit, read with the mapping's dialect (:func:`_file_layout`).

    DuckDB numbers lines by record: each skipped line, the header, each blank line and each record is
    one "line", however many lines a quoted field with embedded newlines makes it. ``starts[n - 1]`` is
    the file line (as an editor counts) on which DuckDB's line ``n`` starts; ``data`` lists DuckDB's line
    numbers of the non-blank data records, in file order."""

    starts: np.ndarray
    data: np.ndarray

    def physical(self, lines: np.ndarray) -> np.ndarray:
        lines = np.asarray(lines, dtype=np.int64)
        if len(lines) and (lines.min() < 1 or lines.max() > len(self.starts)):
            return lines
        return self.starts[lines - 1]


def _file_layout(m: Mapping, path: Path) -> _Layout | None:
    """The file's :class:`_Layout`, or None when it cannot be read here (then each record counts as one
    line). Read only for files with rejected rows, whose line numbers a person will look up."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    starts: list[int] = []
    data: list[int] = []
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))  # as long a field as DuckDB reads
    try:
        with opener(path, "rt", encoding=m.encoding, errors="replace", newline="") as handle:
            for line in range(1, m.skip_rows + 1):
                handle.readline()
                starts.append(line)
            reader = csv.reader(handle, delimiter=m.delimiter, quotechar=m.quote, doublequote=True, strict=False)
            end = m.skip_rows
            header_pending = m.header
            for record in reader:
                starts.append(end + 1)
                end = m.skip_rows + reader.line_num
                if header_pending:
                    header_pending = False
                elif record:  # a blank line is a DuckDB line but no record
                    data.append(len(starts))
    except (csv.Error, OSError, EOFError, UnicodeError):
        return None
    return _Layout(np.array(starts, dtype=np.int64), np.array(data, dtype=np.int64))


def _line_numbers(
    rows: np.ndarray, csv_reject_lines: np.ndarray, first_data_line: int, layout: _Layout | None = None
) -> np.ndarray:
    """File line of each accepted row ordinal (1-based, in DuckDB's reading order), given the DuckDB
    lines the CSV reader rejected. With the file's ``layout`` the numbers are exact (multi-line records,
    blank lines); without it every record is taken to be one line."""
    rows = np.asarray(rows, dtype=np.int64)
    if layout is not None:
        accepted = layout.data[~np.isin(layout.data, csv_reject_lines)]
        if len(rows) == 0 or (rows.min() >= 1 and rows.max() <= len(accepted)):
            return layout.starts[accepted[rows - 1] - 1]
    lines = rows - 1 + first_data_line
    for rejected in np.sort(np.unique(csv_reject_lines)):
        lines[lines >= rejected] += 1
    return lines


# ------------------------------------------------------------------------------------------ the batch

INCIDENT_COLUMNS = (
    "source_id",
    "occurred_at",
    "reported_at",
    "offense_code",
    "offense_description",
    "offense_category",
    "latitude",
    "longitude",
    "location_status",
    "location_text",
    "district",
    "beat",
    "other_areas",
    "premise_type",
    "domestic",
    "arrest",
    "clearance_status",
    "outcome_description",
    "row_hash",
)


def ingest(
    warehouse: Warehouse,
    mapping: str | Path | Mapping,
    files: Sequence[str | Path],
    *,
    progress: Progress | None = None,
    today: dt.date | None = None,
) -> IngestResult:
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    m = mapping if isinstance(mapping, Mapping) else mapping_module.load(mapping)
    if not files:
        raise IngestError("No files given to ingest.")
    paths_ = [Path(f) for f in files]
    today = today or dt.date.today()
    step = progress or (lambda _name, _fraction: None)
    file_records = [_file_record(p) for p in paths_]
    # A file's record layout, read once and only if one of its rows is rejected.
    layout = functools.cache(lambda index: _file_layout(m, paths_[index]))

    with warehouse.write(kind="real", note=f"ingest {m.name}: {', '.join(p.name for p in paths_)}") as con:
        ingest_id = next_ingest_id(con)
        columns = [_check_file(con, m, path, index) for index, path in enumerate(paths_)]
        rows_read = 0
        for index, path in enumerate(paths_):
            step(f"reading {path.name}", 0.8 * index / len(paths_))
            relation = f"(SELECT row_number() OVER () AS _row, * FROM {read_csv_sql(m, path, index, columns[index])})"
            parsed = parsed_sql(m, relation, index, today)
            try:
                if m.x:  # projected coordinates: stage, reproject to WGS84, then finish
                    con.execute(f"CREATE OR REPLACE TEMP TABLE parsed_rows AS {parsed}")
                    _reproject(con, m, "parsed_rows")
                    parsed = "SELECT * FROM parsed_rows"
                statement = final_sql(m, f"({parsed})")
                if index == 0:
                    con.execute(f"CREATE TEMP TABLE batch AS {statement}")
                else:
                    con.execute(f"INSERT INTO batch {statement}")
            except duckdb.Error as error:
                raise IngestError(f"{path}: cannot be read as CSV with this mapping ({_first_line(error)}).") from None
            rows_read += con.execute("SELECT count(*) FROM batch WHERE _file = ?", [index]).fetchone()[0]
            rows_read += _collect_csv_rejects(con, m, path, index, layout)

        step("validating", 0.8)
        _assign_content_ids(con, m)
        _reject_duplicate_ids(con, m)
        _fill_raw_rows(con, m, paths_, columns)
        _collect_validation_rejects(con, paths_, m, layout)

        step("merging", 0.85)
        counts = _merge(con, m, ingest_id, started)
        rejected = con.execute("SELECT count(*) FROM batch_rejects").fetchone()[0]
        con.execute(
            "INSERT INTO rejects SELECT ?, file, line_number, field, reason, raw_row FROM batch_rejects "
            "ORDER BY file, line_number",
            [ingest_id],
        )
        if counts["loaded"] + counts["updated"] + counts["unchanged"] + rejected != rows_read:
            raise AssertionError(f"ingest accounting broken: {counts} + rejected {rejected} != rows read {rows_read}")
        unmapped, missing_location = con.execute(
            "SELECT count(*) FILTER (WHERE offense_category = 'unmapped'), count(*) FILTER (WHERE location_status <> 'ok') "
            "FROM batch WHERE reject_reason IS NULL"
        ).fetchone()
        finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        con.execute(
            "INSERT INTO ingest_log VALUES (?, 'ingest', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ingest_id,
                m.name,
                str(m.path),
                m.sha256,
                json.dumps(file_records),
                started,
                finished,
                rows_read,
                counts["loaded"],
                counts["updated"],
                counts["unchanged"],
                rejected,
                warehouse.writing_version,
            ],
        )
        con.execute(
            "INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)",
            [f"source.{m.name}.timezone", m.timezone or "unspecified (local wall time)"],
        )
        step("writing snapshot", 0.95)
    step("done", 1.0)
    return IngestResult(
        ingest_id=ingest_id,
        source=m.name,
        mapping=str(m.path),
        files=[str(p) for p in paths_],
        rows_read=rows_read,
        rejected=rejected,
        unmapped_codes=unmapped,
        missing_location=missing_location,
        snapshot=warehouse.current_version(),
        seconds=(dt.datetime.now(dt.UTC).replace(tzinfo=None) - started).total_seconds(),
        **counts,
    )


def _file_record(path: Path) -> dict:
    if not path.exists():
        raise IngestError(f"{path}: file not found.")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise IngestError(f"{path}: cannot be read ({error.strerror}).") from None
    return {"path": str(path.resolve()), "sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def _collect_csv_rejects(
    con: duckdb.DuckDBPyConnection, m: Mapping, path: Path, index: int, layout: Callable[[int], _Layout | None]
) -> int:
    """Move the CSV reader's rejected lines into batch_rejects, numbered as the file's lines (DuckDB
    counts records: see :class:`_Layout`); return how many lines it rejected."""
    hint = {
        "INVALID ENCODING": f"bytes that are not valid {m.encoding} (set [file] encoding if the file uses another)",
        "MISSING COLUMNS": "too few fields (a truncated or broken line?)",
        "TOO MANY COLUMNS": "too many fields (an unquoted delimiter inside a value?)",
        "UNQUOTED VALUE": "a quote that is never closed (a truncated line?) or a quote inside an unquoted value",
        "LINE SIZE OVER MAXIMUM": "line longer than the reader's maximum",
    }
    con.execute(
        "CREATE TEMP TABLE IF NOT EXISTS batch_rejects (file VARCHAR, line_number BIGINT, field VARCHAR,"
        " reason VARCHAR, raw_row VARCHAR)"
    )
    frame = con.execute(
        f"SELECT line, any_value(column_name) AS field, any_value(error_type) AS error_type, "
        f"any_value(error_message) AS message, any_value(csv_line) AS raw FROM csv_rejects_{index} "
        f"GROUP BY line ORDER BY line"
    ).df()
    shape = layout(index) if len(frame) else None
    lines = shape.physical(frame["line"].to_numpy()) if shape is not None else frame["line"].to_numpy()
    for row, line in zip(frame.itertuples(), lines):
        reason = hint.get(str(row.error_type), str(row.message).splitlines()[0])
        field_name = row.field if isinstance(row.field, str) else None
        raw = row.raw.lstrip("\r\n") if isinstance(row.raw, str) else row.raw  # DuckDB prefixes blank lines before it
        con.execute(
            "INSERT INTO batch_rejects VALUES (?, ?, ?, ?, ?)",
            [str(path), int(line), field_name, f"unreadable line: {reason}", raw],
        )
    # Remember the CSV-rejected lines so accepted rows get their true line numbers.
    con.execute(f"CREATE OR REPLACE TEMP TABLE csv_lines_{index} AS SELECT DISTINCT line FROM csv_rejects_{index}")
    con.execute(f"DROP TABLE csv_rejects_{index}")
    con.execute(f"DROP TABLE csv_scans_{index}")
    return len(frame)


def _assign_content_ids(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """[id] when_missing = 'content_hash': rows with no id get 'h:<md5 of the raw row>#<n>'.

    n counts identical raw rows within the batch, so re-ingesting the same file gives the same ids.
    """
    if m.id_when_missing != "content_hash":
        return
    con.execute(
        """
        UPDATE batch SET source_id = ids.new_id FROM (
            SELECT _file, _row, 'h:' || content_key || '#' ||
                   row_number() OVER (PARTITION BY content_key ORDER BY _file, _row) AS new_id
            FROM batch WHERE source_id IS NULL
        ) ids
        WHERE batch._file = ids._file AND batch._row = ids._row
        """
    )


def _reject_duplicate_ids(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """Within one batch the last row of an id wins; earlier rows are rejected (the reason names the winner)."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE duplicate_winners AS
        SELECT _file, _row, win_file, win_row FROM (
            SELECT _file, _row,
                   last_value(_file) OVER w AS win_file, last_value(_row) OVER w AS win_row
            FROM batch WHERE source_id IS NOT NULL AND reject_reason IS NULL
            WINDOW w AS (PARTITION BY source_id ORDER BY _file, _row
                         ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
        ) WHERE (_file, _row) <> (win_file, win_row)
        """
    )
    con.execute(
        """
        UPDATE batch SET reject_field = ?, reject_reason = 'duplicate id ' || batch.source_id || ' in this batch'
        FROM duplicate_winners d WHERE batch._file = d._file AND batch._row = d._row
        """,
        [", ".join(m.id_columns)],
    )


def _fill_raw_rows(
    con: duckdb.DuckDBPyConnection, m: Mapping, paths_: Sequence[Path], columns: Sequence[Sequence[str]]
) -> None:
    """Rows rejected after parsing (duplicate ids) have no raw row yet: read their files again for it.

    Only files with such rows are read again, so a clean batch pays nothing."""
    files = con.execute(
        "SELECT DISTINCT _file FROM batch WHERE reject_reason IS NOT NULL AND raw_row IS NULL ORDER BY _file"
    ).fetchall()
    used = m.columns_used()
    raw_row = "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {ident(c)}" for c in used) + "))::VARCHAR"
    for (index,) in files:
        tag = f"again_{int(index)}"
        relation = (
            f"(SELECT row_number() OVER () AS _row, * FROM {read_csv_sql(m, paths_[index], tag, columns[index])})"
        )
        con.execute(
            f"""
            UPDATE batch SET raw_row = r.raw_row
            FROM (SELECT _row, {raw_row} AS raw_row FROM {relation}) r
            WHERE batch._file = ? AND batch._row = r._row AND batch.reject_reason IS NOT NULL AND batch.raw_row IS NULL
            """,
            [index],
        )
        con.execute(f"DROP TABLE IF EXISTS csv_rejects_{tag}")
        con.execute(f"DROP TABLE IF EXISTS csv_scans_{tag}")


def _collect_validation_rejects(
    con: duckdb.DuckDBPyConnection, paths_: Sequence[Path], m: Mapping, layout: Callable[[int], _Layout | None]
) -> None:
    frame = con.execute(
        "SELECT _file, _row, reject_field, reject_reason, raw_row FROM batch WHERE reject_reason IS NOT NULL "
        "ORDER BY _file, _row"
    ).df()
    if frame.empty:
        return
    winners = con.execute("SELECT _file, _row, win_file, win_row FROM duplicate_winners").df()
    first_data_line = 1 + m.skip_rows + (1 if m.header else 0)
    line_of: dict[int, np.ndarray] = {}
    frame["line_number"] = 0
    for file_index in frame["_file"].unique():
        csv_lines = con.execute(f"SELECT line FROM csv_lines_{int(file_index)}").df()["line"].to_numpy()
        line_of[int(file_index)] = csv_lines
        selector = frame["_file"] == file_index
        frame.loc[selector, "line_number"] = _line_numbers(
            frame.loc[selector, "_row"].to_numpy(), csv_lines, first_data_line, layout(int(file_index))
        )
    if not winners.empty:
        winners = winners.set_index(["_file", "_row"])
        for position, row in frame.iterrows():
            key = (row["_file"], row["_row"])
            if key in winners.index:
                win_file, win_row = winners.loc[key, ["win_file", "win_row"]]
                win_csv = line_of.get(int(win_file))
                if win_csv is None:
                    win_csv = line_of[int(win_file)] = (
                        con.execute(f"SELECT line FROM csv_lines_{int(win_file)}").df()["line"].to_numpy()
                    )
                win_line = int(_line_numbers(np.array([win_row]), win_csv, first_data_line, layout(int(win_file)))[0])
                frame.at[position, "reject_reason"] = (
                    f"{row['reject_reason']}: superseded by {paths_[int(win_file)].name} line {win_line}"
                )
    frame["file"] = [str(paths_[int(i)]) for i in frame["_file"]]
    con.register("validation_rejects", frame[["file", "line_number", "reject_field", "reject_reason", "raw_row"]])
    con.execute(
        "INSERT INTO batch_rejects SELECT file, line_number, reject_field, reject_reason, raw_row FROM validation_rejects"
    )
    con.unregister("validation_rejects")


def _merge(con: duckdb.DuckDBPyConnection, m: Mapping, ingest_id: int, now: dt.datetime) -> dict[str, int]:
    """Classify valid rows as loaded / updated / unchanged against the warehouse, and apply them."""
    con.execute(
        """
        CREATE TEMP TABLE classified AS
        SELECT b._file, b._row, CASE WHEN i.source_id IS NULL THEN 'loaded'
                                     WHEN i.row_hash = b.row_hash THEN 'unchanged' ELSE 'updated' END AS outcome
        FROM batch b LEFT JOIN incidents i ON i.source = ? AND i.source_id = b.source_id
        WHERE b.reject_reason IS NULL
        """,
        [m.name],
    )
    counts = dict(con.execute("SELECT outcome, count(*) FROM classified GROUP BY outcome").fetchall())
    chosen = "SELECT b.* FROM batch b JOIN classified k USING (_file, _row) WHERE k.outcome = '{}'"
    if counts.get("updated"):
        con.execute(
            f"""
            INSERT INTO incident_history
            SELECT i.source, i.source_id, ?, ?, i.offense_code, i.offense_description, i.offense_category,
                   i.clearance_status, i.arrest, to_json(i)
            FROM incidents i JOIN ({chosen.format("updated")}) u ON i.source = ? AND i.source_id = u.source_id
            """,
            [ingest_id, now, m.name],
        )
        assignments = ", ".join(f"{c} = u.{c}" for c in INCIDENT_COLUMNS if c != "source_id")
        con.execute(
            f"""
            UPDATE incidents SET {assignments}, last_ingest_id = ?
            FROM ({chosen.format("updated")}) u
            WHERE incidents.source = ? AND incidents.source_id = u.source_id
            """,
            [ingest_id, m.name],
        )
    if counts.get("loaded"):
        columns = ", ".join(INCIDENT_COLUMNS)
        con.execute(
            f"""
            INSERT INTO incidents (source, occurred_precision, {columns}, first_ingest_id, last_ingest_id)
            SELECT ?, ?, {columns}, ?, ?
            FROM ({chosen.format("loaded")})
            """,
            [m.name, m.precision, ingest_id, ingest_id],
        )
    return {
        "loaded": counts.get("loaded", 0),
        "updated": counts.get("updated", 0),
        "unchanged": counts.get("unchanged", 0),
    }
