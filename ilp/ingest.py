"""Ingest source exports into a new warehouse snapshot, by mapping file.

The whole batch is read, validated and normalised in DuckDB SQL (no Python loops over rows), so a
city's yearly export loads at close to DuckDB's own CSV speed (benchmarks/ingest.py measures it).
The SQL that reads and normalises a file is compiled from the mapping in ``ilp/mapping_sql.py``; this
module runs it and owns the batch: file checks and hashes, content ids for rows without an id, rejects
with their file line numbers and raw lines, the merge into the new snapshot, the plausibility checks
of the parsed times and the ingest log.

Accounting rule, checked on every run: loaded + updated + unchanged + rejected = rows read.
- loaded: an id the warehouse did not have;
- updated: an id it had, with different content (the earlier version goes to incident_history);
- unchanged: an id it had, identical;
- rejected: kept in ``rejects`` with file, line, field, rule, value, reason and the raw line(s), once
  per (file content, line): re-ingesting an unchanged file records nothing new.
A file that cannot be used at all (missing, not a regular file, unreadable, empty, a header that is
not one, the wrong encoding, missing a mapped column) fails the whole batch with one message naming
the file, before anything is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import gzip
import hashlib
import io
import json
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ilp import mapping as mapping_module
from ilp import paths, reference, summaries
from ilp.errors import UserError
from ilp.mapping import Mapping
from ilp.mapping_sql import (
    MAX_LINE_BYTES,
    RULE_DATE_FORMAT,
    RULE_ID_DUPLICATE,
    final_sql,
    parsed_sql,
    read_csv_sql,
)
from ilp.warehouse import Warehouse, next_ingest_id, replace_incidents, writing_table

Progress = Callable[[str, float], None]

MAX_HEADER_BYTES = 1 << 20  # a header line longer than this is not a header (a file with no line breaks)
MAX_COLUMNS = 4096  # more columns than this is a wrong delimiter or not an export
SNIFF_BYTES = 4096  # bytes looked at for the encoding check
MIN_ROWS_FOR_PLAUSIBILITY = 20  # fewer rows than this prove nothing about a distribution of times


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
    # rejects of this run that an earlier ingest of the same file content already recorded, and by which ingests
    rejects_already_recorded: int = 0
    rejects_recorded_by: list[int] = field(default_factory=list)
    # implausible parsed data that loaded anyway: one message each, naming the file and the likely cause
    warnings: list[str] = field(default_factory=list)
    # next week's hot-spot forecast and the scoring of recorded forecasts (hotspot_forecast.after_ingest):
    # what was issued or scored, or why not; a failure there is reported here and never fails the ingest
    forecast: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------ reading
def _printable(text: str, limit: int = 80) -> str:
    """Text for a one-line message: control characters (NUL, CR ...) escaped, cut at ``limit``."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def _opener(path: Path):
    return gzip.open if path.name.lower().endswith(".gz") else open


def _file_record(path: Path) -> dict:
    """Path, content hash and size of one export. Refuses, naming the file, anything that is not a regular
    file (a folder, a link to /dev/zero, a pipe): hashing an endless stream would never finish."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise IngestError(f"{path}: a link to {os.readlink(path)}, which does not exist.") from None
        raise IngestError(f"{path}: file not found.") from None
    except OSError as error:
        raise IngestError(f"{path}: cannot be read ({error.strerror}).") from None
    if stat.S_ISDIR(info.st_mode):
        raise IngestError(f"{path}: cannot be read (Is a directory): give the export file itself.")
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a character device"
            if stat.S_ISCHR(info.st_mode)
            else "a block device"
            if stat.S_ISBLK(info.st_mode)
            else "a named pipe"
            if stat.S_ISFIFO(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "not a regular file"
        )
        link = f" (a link to {os.readlink(path)})" if path.is_symlink() else ""
        raise IngestError(
            f"{path}: cannot be read as an export: it is {kind}{link}, not a regular file. Give the export file itself."
        )
    if not os.access(path, os.R_OK):
        raise IngestError(f"{path}: cannot be read (permission denied).")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise IngestError(f"{path}: cannot be read ({error.strerror}).") from None
    return {"path": str(path.resolve()), "sha256": digest.hexdigest(), "bytes": info.st_size}


def _check_file(m: Mapping, path: Path, size: int) -> list[str]:
    """Fail the batch, naming the file, when it cannot be used at all; return its column names."""
    if size == 0:
        raise IngestError(f"{path}: the file is empty (0 bytes): there is no header row to map.")
    columns = _header(m, path)
    missing = [column for column in m.columns_used() if column not in columns]
    if missing:
        hint = ""
        if len(columns) == 1:
            hint = (
                f" The file read as a single column {_printable(columns[0])!r}: is the delimiter right? "
                f"The mapping says {m.delimiter!r}."
            )
        raise IngestError(
            f"{path}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (mapping {m.path.name}).{hint} "
            f"Columns found: {', '.join(_printable(c, 60) for c in columns[:40])}."
        )
    return columns


def _check_encoding(m: Mapping, path: Path, head: bytes) -> None:
    """UTF-16 read as UTF-8 (or the other way round) gives NUL bytes or nonsense in every value: refuse it
    with the setting that fixes it, instead of a message full of NUL bytes."""
    utf16_bom = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    nul = b"\x00" in head[:SNIFF_BYTES]
    if m.encoding != "utf-16" and (utf16_bom or nul):
        why = "starts with a UTF-16 byte order mark" if utf16_bom else "has NUL bytes between its characters"
        raise IngestError(
            f"{path}: the file {why}, so it looks like UTF-16 text, but mapping {m.path.name} reads it as "
            f'{m.encoding}: set [file] encoding = "utf-16". (A binary file such as an Excel workbook has NUL '
            f"bytes too: export it as CSV.)"
        )
    if m.encoding == "utf-16" and not utf16_bom and not nul and head:
        raise IngestError(
            f"{path}: mapping {m.path.name} reads the file as utf-16, but it has no UTF-16 byte order mark and no "
            f'NUL bytes: it looks like UTF-8 or another single-byte encoding. Set [file] encoding = "utf-8" '
            f'(or "latin-1").'
        )


def _header(m: Mapping, path: Path) -> list[str]:
    """The file's column names as DuckDB's read_csv will name them (a repeated name gets _1, _2 ...).

    Reads at most the skipped lines and one header line of up to MAX_HEADER_BYTES: a file with no line
    breaks, or a header of millions of columns, fails here at once instead of being handed to DuckDB."""
    limit = MAX_HEADER_BYTES * (m.skip_rows + 1)
    encoding = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "utf-16": "utf-16"}[m.encoding]
    head = b""
    try:
        with _opener(path)(path, "rb") as raw:
            while len(head) < limit:  # until the skipped lines and the header are complete
                chunk = raw.read(1 << 16)
                head = (head + chunk)[:limit]
                if not chunk:
                    break
                lines = io.StringIO(head.decode(encoding, errors="replace"), newline="").readlines()
                if len(lines) > m.skip_rows + 1 or (len(lines) == m.skip_rows + 1 and lines[-1].endswith("\n")):
                    break
    except (OSError, EOFError) as error:
        raise IngestError(f"{path}: cannot be read ({error}).") from None
    _check_encoding(m, path, head)
    text = io.StringIO(head.decode(encoding, errors="replace"), newline="")
    for _ in range(m.skip_rows):
        text.readline()
    first = text.readline()
    if len(head) == limit and not first.endswith(("\n", "\r")):
        raise IngestError(
            f"{path}: the header (line {m.skip_rows + 1}) has no line end within its first "
            f"{MAX_HEADER_BYTES // (1 << 20)} MiB, so this is not a CSV export with a header row (one endless line "
            f"with no line breaks?). Check the file and the mapping's [file] encoding and skip_rows."
        )
    if not first.strip():
        raise IngestError(f"{path}: no header row (the file is empty or starts with a blank line).")
    csv.field_size_limit(max(csv.field_size_limit(), MAX_HEADER_BYTES))
    row = next(csv.reader([first], delimiter=m.delimiter, quotechar=m.quote))
    if len(row) > MAX_COLUMNS:
        raise IngestError(
            f"{path}: the header has {len(row):,} columns, more than {MAX_COLUMNS:,}: is the delimiter right? "
            f"The mapping says {m.delimiter!r}."
        )
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
    one "line", however many lines a quoted field with embedded newlines makes it. ``starts[n - 1]`` and
    ``ends[n - 1]`` are the file lines (as an editor counts) on which DuckDB's line ``n`` starts and ends;
    ``data`` lists DuckDB's line numbers of the non-blank data records, in file order."""

    starts: np.ndarray
    ends: np.ndarray
    data: np.ndarray

    def physical(self, lines: np.ndarray) -> np.ndarray:
        lines = np.asarray(lines, dtype=np.int64)
        if len(lines) and (lines.min() < 1 or lines.max() > len(self.starts)):
            return lines
        return self.starts[lines - 1]

    def spans(self, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first, last) file line of each of DuckDB's ``lines``."""
        lines = np.asarray(lines, dtype=np.int64)
        if len(lines) and (lines.min() < 1 or lines.max() > len(self.starts)):
            return lines, lines
        return self.starts[lines - 1], self.ends[lines - 1]


def _file_layout(m: Mapping, path: Path) -> _Layout | None:
    """The file's :class:`_Layout`, or None when it cannot be read here (then each record counts as one
    line). Read only for files with rejected rows, whose line numbers a person will look up."""
    starts: list[int] = []
    ends: list[int] = []
    data: list[int] = []
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))  # as long a field as DuckDB reads
    try:
        with _opener(path)(path, "rt", encoding=m.encoding, errors="replace", newline="") as handle:
            for line in range(1, m.skip_rows + 1):
                handle.readline()
                starts.append(line)
                ends.append(line)
            reader = csv.reader(handle, delimiter=m.delimiter, quotechar=m.quote, doublequote=True, strict=False)
            end = m.skip_rows
            header_pending = m.header
            for record in reader:
                starts.append(end + 1)
                end = m.skip_rows + reader.line_num
                ends.append(end)
                if header_pending:
                    header_pending = False
                elif record:  # a blank line is a DuckDB line but no record
                    data.append(len(starts))
    except (csv.Error, OSError, EOFError, UnicodeError):
        return None
    return _Layout(np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), np.array(data, dtype=np.int64))


def _record_lines(
    rows: np.ndarray, csv_reject_lines: np.ndarray, first_data_line: int, layout: _Layout | None = None
) -> np.ndarray:
    """DuckDB's line number (one per record: see :class:`_Layout`) of each accepted row ordinal (1-based,
    in DuckDB's reading order), given the DuckDB lines the CSV reader rejected. Linear in the rows."""
    rows = np.asarray(rows, dtype=np.int64)
    if layout is not None:
        accepted = layout.data[~np.isin(layout.data, csv_reject_lines)]
        if len(rows) == 0 or (rows.min() >= 1 and rows.max() <= len(accepted)):
            return accepted[rows - 1]
    base = rows - 1 + first_data_line
    rejected = np.sort(np.unique(np.asarray(csv_reject_lines, dtype=np.int64)))
    # The k-th accepted line is its place among all lines plus the rejected lines before it: rejected line
    # number j (0-based, ascending) comes before a row whose base line is at least rejected[j] - j.
    return base + np.searchsorted(rejected - np.arange(len(rejected)), base, side="right")


def _line_numbers(
    rows: np.ndarray, csv_reject_lines: np.ndarray, first_data_line: int, layout: _Layout | None = None
) -> np.ndarray:
    """File line (as an editor counts) on which each accepted row ordinal starts. With the file's
    ``layout`` the numbers are exact (multi-line records, blank lines); without it every record is taken
    to be one line."""
    lines = _record_lines(rows, csv_reject_lines, first_data_line, layout)
    return layout.physical(lines) if layout is not None else lines


def _raw_records(m: Mapping, path: Path, spans: Sequence[tuple[int, int]]) -> dict[int, str]:
    """The text of the file lines ``first..last`` of each span, as they are in the file (a record over
    several lines keeps its line breaks; the final line break is dropped), keyed by the first line. One
    pass over the file, only for files with rejected rows."""
    wanted = sorted(set(spans))
    found: dict[int, str] = {}
    if not wanted:
        return found
    encoding = "utf-8-sig" if m.encoding == "utf-8" else m.encoding
    position = 0
    parts: list[str] = []
    try:
        with _opener(path)(path, "rt", encoding=encoding, errors="replace", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                while position < len(wanted) and wanted[position][1] < number:
                    position += 1  # a span that ended before it began (cannot happen; never loop on it)
                if position == len(wanted):
                    break
                first, last = wanted[position]
                if number < first:
                    continue
                parts.append(line)
                if number == last:
                    found[first] = "".join(parts).removesuffix("\n").removesuffix("\r")
                    parts = []
                    position += 1
    except (OSError, EOFError, UnicodeError):
        pass  # the reject keeps its other facts; its raw text stays empty
    return found


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
BATCH_REJECT_COLUMNS = "file VARCHAR, file_index INTEGER, line_number BIGINT, field VARCHAR, rule VARCHAR, value VARCHAR, reason VARCHAR, raw_row VARCHAR"


def ingest(
    warehouse: Warehouse,
    mapping: str | Path | Mapping,
    files: Sequence[str | Path],
    *,
    progress: Progress | None = None,
    today: dt.date | None = None,
    hotspot_forecast: bool = False,
) -> IngestResult:
    """Load ``files`` into a new snapshot. ``hotspot_forecast`` (what ``ilp ingest`` asks for): afterwards,
    score recorded hot-spot forecasts whose week now has data and forecast the next week (``result.forecast``);
    off for other callers, whose ingests stay as fast as the load itself."""
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    m = mapping if isinstance(mapping, Mapping) else mapping_module.load(mapping)
    if not files:
        raise IngestError("No files given to ingest.")
    paths_ = [Path(f) for f in files]
    today = today or dt.date.today()
    step = progress or (lambda _name, _fraction: None)
    # Every file is checked before a snapshot is copied: a batch that cannot load fails at once.
    file_records = [_file_record(p) for p in paths_]
    columns = [_check_file(m, path, record["bytes"]) for path, record in zip(paths_, file_records)]
    # A file's record layout, read once and only if one of its rows is rejected.
    layout = functools.cache(lambda index: _file_layout(m, paths_[index]))

    with warehouse.write(kind="real", note=f"ingest {m.name}: {', '.join(p.name for p in paths_)}") as con:
        upgrade_schema(con)
        ingest_id = next_ingest_id(con)
        taxonomy_sha256 = _load_taxonomy(con, m)
        con.execute(f"CREATE TEMP TABLE batch_rejects ({BATCH_REJECT_COLUMNS})")
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
        _collect_validation_rejects(con, paths_, m, layout)

        step("merging", 0.85)
        counts = _merge(con, m, ingest_id, started)
        rejected, already, recorded_by = _store_rejects(con, ingest_id, file_records)
        if counts["loaded"] + counts["updated"] + counts["unchanged"] + rejected != rows_read:
            raise AssertionError(f"ingest accounting broken: {counts} + rejected {rejected} != rows read {rows_read}")
        unmapped, missing_location = con.execute(
            "SELECT count(*) FILTER (WHERE offense_category = 'unmapped'), count(*) FILTER (WHERE location_status <> 'ok') "
            "FROM batch WHERE reject_reason IS NULL"
        ).fetchone()
        warnings = plausibility_warnings(con, m, paths_)
        _store_warnings(con, m, ingest_id, paths_, file_records, warnings)
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
        _record_taxonomy(con, m, taxonomy_sha256)
        step("writing snapshot", 0.95)
    step("done", 1.0)
    result = IngestResult(
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
        rejects_already_recorded=already,
        rejects_recorded_by=recorded_by,
        warnings=[f"{paths_[w.file_index].name}: {w.message}" for w in warnings],
        **counts,
    )
    if hotspot_forecast:
        result.forecast = _forecast_after_ingest(warehouse, today)
    return result


def _forecast_after_ingest(warehouse: Warehouse, today: dt.date) -> dict:
    """Score recorded hot-spot forecasts whose week now has data and forecast the week after the data's last
    complete week (ilp.analytics.hotspot_forecast.after_ingest). Isolated: the new snapshot is already
    current, and any failure here is returned, not raised."""
    try:
        from ilp.analytics.hotspot_forecast import after_ingest

        return after_ingest(warehouse, today=today)
    except Exception as error:  # noqa: BLE001 - a forecast failure must not fail a successful ingest
        return {"error": f"{type(error).__name__}: {error}"}


def upgrade_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a snapshot written by older code up to ilp/schema.sql (every statement there is idempotent
    and additive: new tables, new columns), so the rejects' rules and the ingest warnings have a place."""
    con.execute((paths.PACKAGE_DIR / "schema.sql").read_text(encoding="utf-8"))
    # Rejects stored before file hashes were: take the hash from their ingest's file list (matched by the
    # file's name), so the file's next ingest does not store them again.
    con.execute(
        """
        UPDATE rejects SET file_sha256 = f.sha256
        FROM (
            SELECT ingest_id, parse_filename(json_extract_string(entry, '$.path')) AS name,
                   any_value(json_extract_string(entry, '$.sha256')) AS sha256
            FROM (SELECT ingest_id, unnest(json_extract(files, '$[*]')) AS entry FROM ingest_log WHERE files IS NOT NULL)
            GROUP BY ALL HAVING count(DISTINCT json_extract_string(entry, '$.sha256')) = 1
        ) f
        WHERE rejects.file_sha256 IS NULL AND rejects.ingest_id = f.ingest_id
          AND parse_filename(rejects.file) = f.name
        """
    )


# ------------------------------------------------------------------------------------------ taxonomy
def _load_taxonomy(con: duckdb.DuckDBPyConnection, m: Mapping) -> str:
    """Bring the mapping's taxonomy in this snapshot up to its file (an edit to it takes effect at the next
    ingest), refusing one that would replace a different file of the same name another source in the
    warehouse uses. Returns the file's sha256."""
    path = m.taxonomy_path or (paths.TAXONOMY_DIR / f"{m.taxonomy}.csv")
    meta = dict(con.execute("SELECT key, value FROM snapshot_meta").fetchall())
    registered = meta.get(f"taxonomy.{m.taxonomy}.file")
    users = sorted(
        key.split(".", 1)[1].rsplit(".", 1)[0]
        for key, value in meta.items()
        if key.startswith("source.") and key.endswith(".taxonomy") and value == m.taxonomy
    )
    others = [name for name in users if name != m.name]
    if registered and others and Path(registered) != _shown_path(path):
        raise IngestError(
            f"{m.path}: taxonomy {m.taxonomy!r} is {path}, but this warehouse already has a taxonomy of that "
            f"name from {registered}, used by source {', '.join(others)}: rename one of the two files."
        )
    rows = reference.taxonomy_rows(con, path)
    wanted = {(r["offense_code"].strip(), r["category"]) for r in rows}
    stored = set(
        con.execute("SELECT offense_code, category FROM offence_taxonomy WHERE source = ?", [m.taxonomy]).fetchall()
    )
    if stored != wanted:  # changing the table before the batch slows every row's lookup: only when needed
        reference.load_taxonomy(con, m.taxonomy, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shown_path(path: Path) -> Path:
    """A taxonomy file as the snapshot records it: relative to the project when it is one of ours."""
    resolved = path.resolve()
    return resolved.relative_to(paths.PROJECT_DIR) if resolved.is_relative_to(paths.PROJECT_DIR) else resolved


def _record_taxonomy(con: duckdb.DuckDBPyConnection, m: Mapping, sha256: str) -> None:
    """Which taxonomy each source uses, and where it came from; then drop the taxonomies no source of this
    warehouse uses (a new warehouse starts with the shipped ones; only those in use stay)."""
    path = m.taxonomy_path or (paths.TAXONOMY_DIR / f"{m.taxonomy}.csv")
    con.executemany(
        "INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)",
        [
            (f"source.{m.name}.taxonomy", m.taxonomy),
            (f"taxonomy.{m.taxonomy}.file", str(_shown_path(path))),
            (f"taxonomy.{m.taxonomy}.sha256", sha256),
        ],
    )
    # The sources with incidents: from the data-quality summary (thousands of rows) rather than a scan of every
    # incident (0.3 s at 10M), plus this load's own, whose rows the summary gets after this body.
    query = (
        "SELECT DISTINCT source FROM summary.source_weeks"
        if summaries.stored(con)
        else "SELECT DISTINCT source FROM incidents"
    )
    sources = {row[0] for row in con.execute(query).fetchall()} | {m.name}
    meta = dict(con.execute("SELECT key, value FROM snapshot_meta").fetchall())
    used = {meta.get(f"source.{source}.taxonomy") for source in sources} | {m.taxonomy}
    if None in used:
        return  # a source loaded by older code does not say which taxonomy it used: keep them all
    con.execute("DELETE FROM offence_taxonomy WHERE NOT list_contains(?, source)", [sorted(used)])


# ------------------------------------------------------------------------------------------ rejects
CSV_PROBLEMS = {
    # DuckDB's error type: (rule, reason)
    "INVALID ENCODING": ("[file] encoding: bytes not valid in it", "bytes that are not valid {encoding}"),
    "MISSING COLUMNS": ("CSV: too few fields", "too few fields (a truncated or broken line?)"),
    "TOO MANY COLUMNS": ("CSV: too many fields", "too many fields (an unquoted delimiter inside a value?)"),
    "UNQUOTED VALUE": (
        "CSV: quote never closed",
        "a quote that is never closed (a truncated line?) or a quote inside an unquoted value",
    ),
    "LINE SIZE OVER MAXIMUM": ("CSV: line too long", "line longer than the reader's maximum"),
}


def _collect_csv_rejects(
    con: duckdb.DuckDBPyConnection, m: Mapping, path: Path, index: int, layout: Callable[[int], _Layout | None]
) -> int:
    """Move the CSV reader's rejected lines into batch_rejects, numbered as the file's lines (DuckDB
    counts records: see :class:`_Layout`); return how many lines it rejected."""
    frame = con.execute(
        f"SELECT line, any_value(column_name) AS field, any_value(error_type) AS error_type, "
        f"any_value(error_message) AS message, any_value(csv_line) AS raw FROM csv_rejects_{index} "
        f"GROUP BY line ORDER BY line"
    ).df()
    if len(frame):
        shape = layout(index)
        lines = shape.physical(frame["line"].to_numpy()) if shape is not None else frame["line"].to_numpy()
        rules, reasons = [], []
        for error_type, message in zip(frame["error_type"].astype(str), frame["message"].astype(str)):
            rule, reason = CSV_PROBLEMS.get(error_type, ("CSV: unreadable line", message.splitlines()[0]))
            if error_type == "INVALID ENCODING":
                reason = reason.format(encoding=m.encoding) + " (set [file] encoding if the file uses another)"
            rules.append(rule)
            reasons.append(f"unreadable line: {reason}")
        rejects = pd.DataFrame(
            {
                "file": str(path),
                "file_index": index,
                "line_number": np.asarray(lines, dtype=np.int64),
                "field": [f if isinstance(f, str) else None for f in frame["field"]],
                "rule": rules,
                "value": None,
                "reason": reasons,
                # DuckDB prefixes the blank lines before a rejected line to it
                "raw_row": [r.lstrip("\r\n") if isinstance(r, str) else None for r in frame["raw"]],
            }
        )
        con.register("csv_rejects_frame", rejects)
        con.execute("INSERT INTO batch_rejects SELECT * FROM csv_rejects_frame")
        con.unregister("csv_rejects_frame")
    # Remember the CSV-rejected lines so accepted rows get their true line numbers.
    con.execute(f"CREATE OR REPLACE TEMP TABLE csv_lines_{index} AS SELECT DISTINCT line FROM csv_rejects_{index}")
    con.execute(f"DROP TABLE csv_rejects_{index}")
    con.execute(f"DROP TABLE csv_scans_{index}")
    return len(frame)


def _assign_content_ids(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """Rows with no id (no id column at all, or [id] when_missing = 'content_hash') get
    'h:<md5 of the row's mapped values>#<n>', n counting identical rows within their file.

    Two identical rows of one file are two incidents (#1 and #2); re-ingesting the file, alone or in any
    batch, gives the same ids, and the same row in an overlapping later export is the same incident."""
    if not m.content_ids:
        return
    con.execute(
        """
        UPDATE batch SET source_id = ids.new_id FROM (
            SELECT _file, _row, 'h:' || content_key || '#' ||
                   row_number() OVER (PARTITION BY _file, content_key ORDER BY _row) AS new_id
            FROM batch WHERE source_id IS NULL AND content_key IS NOT NULL
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
        UPDATE batch SET reject_field = ?, reject_rule = ?, reject_value = batch.source_id,
               reject_reason = 'duplicate id ' || batch.source_id || ' in this batch'
        FROM duplicate_winners d WHERE batch._file = d._file AND batch._row = d._row
        """,
        [", ".join(m.id_columns) or "(content id)", RULE_ID_DUPLICATE],
    )


def _collect_validation_rejects(
    con: duckdb.DuckDBPyConnection, paths_: Sequence[Path], m: Mapping, layout: Callable[[int], _Layout | None]
) -> None:
    """Rows rejected after parsing (validation, duplicate ids) into batch_rejects with their file line and
    their raw line(s) read from the file. Vectorised per file: linear in the rejects."""
    frame = con.execute(
        """
        SELECT b._file, b._row, b.reject_field, b.reject_rule, b.reject_value, b.reject_reason, d.win_file, d.win_row
        FROM batch b LEFT JOIN duplicate_winners d ON b._file = d._file AND b._row = d._row
        WHERE b.reject_reason IS NOT NULL ORDER BY b._file, b._row
        """
    ).df()
    if frame.empty:
        return
    first_data_line = 1 + m.skip_rows + (1 if m.header else 0)

    @functools.cache
    def csv_lines(index: int) -> np.ndarray:
        return con.execute(f"SELECT line FROM csv_lines_{index}").df()["line"].to_numpy()

    frame["line_number"] = 0
    frame["raw_row"] = None
    for file_index in frame["_file"].unique():
        index = int(file_index)
        selector = (frame["_file"] == file_index).to_numpy()
        shape = layout(index)
        records = _record_lines(frame.loc[selector, "_row"].to_numpy(), csv_lines(index), first_data_line, shape)
        first, last = shape.spans(records) if shape is not None else (records, records)
        frame.loc[selector, "line_number"] = first
        raw = _raw_records(m, paths_[index], list(zip(first.tolist(), last.tolist())))
        frame.loc[selector, "raw_row"] = [raw.get(line) for line in first.tolist()]

    duplicate = frame["win_file"].notna().to_numpy()
    if duplicate.any():
        win_lines = np.zeros(len(frame), dtype=np.int64)
        win_files = frame["win_file"].fillna(-1).astype(np.int64).to_numpy()
        for win_file in np.unique(win_files[duplicate]):
            selector = win_files == win_file
            win_lines[selector] = _line_numbers(
                frame.loc[selector, "win_row"].astype(np.int64).to_numpy(),
                csv_lines(int(win_file)),
                first_data_line,
                layout(int(win_file)),
            )
        frame.loc[duplicate, "reject_reason"] = [
            f"{reason}: superseded by {paths_[win_file].name} line {win_line}"
            for reason, win_file, win_line in zip(
                frame.loc[duplicate, "reject_reason"], win_files[duplicate].tolist(), win_lines[duplicate].tolist()
            )
        ]

    rejects = pd.DataFrame(
        {
            "file": [str(paths_[int(i)]) for i in frame["_file"]],
            "file_index": frame["_file"].astype(np.int64),
            "line_number": frame["line_number"].astype(np.int64),
            "field": frame["reject_field"],
            "rule": frame["reject_rule"],
            "value": frame["reject_value"],
            "reason": frame["reject_reason"],
            "raw_row": frame["raw_row"],
        }
    )
    con.register("validation_rejects", rejects)
    con.execute("INSERT INTO batch_rejects SELECT * FROM validation_rejects")
    con.unregister("validation_rejects")


def _store_rejects(
    con: duckdb.DuckDBPyConnection, ingest_id: int, file_records: Sequence[dict]
) -> tuple[int, int, list[int]]:
    """Keep this batch's rejects, once per (file content, line): a line an earlier ingest of the same file
    content already recorded is not stored again, so re-ingesting an unchanged file records nothing new.
    Returns (rejected in this batch, of them already recorded, by which ingests)."""
    hashes = pd.DataFrame({"file_index": range(len(file_records)), "sha256": [r["sha256"] for r in file_records]})
    con.register("batch_file_hashes", hashes)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE batch_rejects_hashed AS
        SELECT b.*, h.sha256 AS file_sha256, r.ingest_id AS recorded_by
        FROM batch_rejects b JOIN batch_file_hashes h USING (file_index)
        LEFT JOIN (SELECT file_sha256, line_number, min(ingest_id) AS ingest_id FROM rejects
                   WHERE file_sha256 IS NOT NULL GROUP BY ALL) r
               ON r.file_sha256 = h.sha256 AND r.line_number = b.line_number
        """
    )
    con.unregister("batch_file_hashes")
    con.execute(
        """
        INSERT INTO rejects (ingest_id, file, line_number, field, reason, raw_row, rule, value, file_sha256)
        SELECT ?, file, line_number, field, reason, raw_row, rule, value, file_sha256
        FROM batch_rejects_hashed WHERE recorded_by IS NULL
        QUALIFY row_number() OVER (PARTITION BY file_sha256, line_number ORDER BY file_index) = 1
        ORDER BY file, line_number
        """,
        [ingest_id],
    )
    rejected, already, recorded_by = con.execute(
        "SELECT count(*), count(recorded_by), list(DISTINCT recorded_by ORDER BY recorded_by) "
        "FILTER (WHERE recorded_by IS NOT NULL) FROM batch_rejects_hashed"
    ).fetchone()
    return rejected, already, [int(i) for i in recorded_by or []]


# ------------------------------------------------------------------------------------------ plausibility
@dataclass(frozen=True)
class PlausibilityWarning:
    file_index: int
    check: str  # a short name: all_midnight, first_hour, minutes_below_24, no_afternoon, first_of_month, ...
    rows: int  # the loaded rows the check looked at
    message: str  # what is implausible and the likely cause, naming the mapping key to change


def plausibility_warnings(
    con: duckdb.DuckDBPyConnection, m: Mapping, paths_: Sequence[Path]
) -> list[PlausibilityWarning]:
    """Check the occurred times each file loaded for distributions no real export has, which a mapping
    mistake produces: every time at midnight, every time in the first hour, every minute below 24 (hours
    read as minutes), nothing after 12:59 (a 12-hour clock without AM/PM), every date on the 1st (months
    only), every day of the month 12 or less over many months (day and month swapped). One aggregate
    query over the batch; files with fewer than MIN_ROWS_FOR_PLAUSIBILITY loaded rows are not judged."""
    if m.precision == "month":
        return []
    stats = con.execute(
        f"""
        WITH rows AS (
            SELECT _file, occurred_at, reject_rule,
                   reject_reason IS NULL AND occurred_at IS NOT NULL AS ok FROM batch
        )
        SELECT _file, count(*) FILTER (WHERE ok) AS n,
               count(*) FILTER (WHERE ok AND occurred_at = date_trunc('day', occurred_at)) AS midnight,
               max(hour(occurred_at)) FILTER (WHERE ok) AS max_hour,
               count(DISTINCT hour(occurred_at)) FILTER (WHERE ok) AS hours,
               max(minute(occurred_at)) FILTER (WHERE ok) AS max_minute,
               count(*) FILTER (WHERE ok AND day(occurred_at) = 1) AS firsts,
               max(day(occurred_at)) FILTER (WHERE ok) AS max_day,
               (min(occurred_at) FILTER (WHERE ok))::DATE AS first,
               (max(occurred_at) FILTER (WHERE ok))::DATE AS last,
               count(*) FILTER (WHERE reject_rule = {_quote(RULE_DATE_FORMAT)}) AS unparseable_dates
        FROM rows GROUP BY _file ORDER BY _file
        """
    ).fetchall()
    warnings = []
    for index, n, midnight, max_hour, hours, max_minute, firsts, max_day, first, last, unparseable in stats:
        if n < MIN_ROWS_FOR_PLAUSIBILITY:
            continue
        found: list[tuple[str, str]] = []
        if m.precision == "exact":
            time_keys = "[occurred] time_format" if m.time_column else "[occurred] formats"
            if midnight == n:
                found.append(
                    (
                        "all_midnight",
                        f"every occurred time is 00:00 ({n:,} rows): the times look missing. If the export has a "
                        f"time column, map it ([occurred] time_column and time_format); if it has dates only, set "
                        f'[occurred] precision = "day" so no analysis reads them as midnight.',
                    )
                )
            elif max_hour == 0 and max_minute < 24:
                found.append(
                    (
                        "first_hour",
                        f"every occurred time falls in the first hour (00:00-00:59) and every minute is below 24 "
                        f"({n:,} rows): the time looks like an hour 0-23 read as minutes. If the column holds the "
                        f'hour only, set {time_keys} = "%H".',
                    )
                )
            elif max_hour == 0:
                found.append(
                    (
                        "first_hour",
                        f"every occurred time falls in the first hour (00:00-00:59) ({n:,} rows): the hour is not "
                        f"being read. Check {time_keys} against the values in the file.",
                    )
                )
            elif 0 < max_minute < 24:
                found.append(
                    (
                        "minutes_below_24",
                        f"every occurred minute is below 24 ({n:,} rows): the minutes look like hours. Are %H and "
                        f"%M swapped in {time_keys}?",
                    )
                )
            if max_hour is not None and 0 < max_hour <= 12 and hours > 1 and midnight < n:
                found.append(
                    (
                        "no_afternoon",
                        f"no occurred time is after 12:59 ({n:,} rows): a 12-hour clock read as a 24-hour one? If "
                        f"the export has AM/PM, read it with %I and %p in {time_keys}.",
                    )
                )
        if firsts == n:
            found.append(
                (
                    "first_of_month",
                    f"every occurred date is the 1st of a month ({n:,} rows): the export seems to give months only. "
                    f'Set [occurred] precision = "month".',
                )
            )
        elif max_day <= 12 and (last - first).days > 31:
            rejected = f"; {unparseable:,} rows were rejected as unparseable dates" if unparseable else ""
            found.append(
                (
                    "day_month_swapped",
                    f"every occurred date has a day of the month of 12 or less, over {first} .. {last} ({n:,} rows"
                    f"{rejected}): day and month look swapped in [occurred] formats (%d/%m against %m/%d).",
                )
            )
        warnings += [PlausibilityWarning(int(index), check, int(n), message) for check, message in found]
    return warnings


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _store_warnings(
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    ingest_id: int,
    paths_: Sequence[Path],
    file_records: Sequence[dict],
    warnings: Sequence[PlausibilityWarning],
) -> None:
    """Record each warning in ingest_warnings, once per (file content, mapping, check): re-ingesting an
    unchanged file with an unchanged mapping records nothing new. `ilp status` and the governance page
    show the warnings of ingests whose rows are still in the warehouse."""
    for w in warnings:
        sha256 = file_records[w.file_index]["sha256"]
        known = con.execute(
            "SELECT count(*) FROM ingest_warnings WHERE file_sha256 = ? AND mapping_sha256 = ? AND check_name = ?",
            [sha256, m.sha256, w.check],
        ).fetchone()[0]
        if not known:
            con.execute(
                "INSERT INTO ingest_warnings (ingest_id, source, file, file_sha256, mapping_sha256, check_name, rows, "
                "message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [ingest_id, m.name, str(paths_[w.file_index]), sha256, m.sha256, w.check, w.rows, w.message],
            )


# ------------------------------------------------------------------------------------------ merging
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
            INSERT INTO {writing_table(con, "incident_history")}
            SELECT i.source, i.source_id, ?, ?, i.offense_code, i.offense_description, i.offense_category,
                   i.clearance_status, i.arrest, to_json(i)
            FROM incidents i JOIN ({chosen.format("updated")}) u ON i.source = ? AND i.source_id = u.source_id
            """,
            [ingest_id, now, m.name],
        )
        # the new version keeps what the export does not carry (precision, first ingest); the old one is superseded
        replace_incidents(
            con,
            f"""
            SELECT i.* REPLACE ({", ".join(f"u.{c} AS {c}" for c in INCIDENT_COLUMNS if c != "source_id")},
                                ?::INTEGER AS last_ingest_id)
            FROM incidents i JOIN ({chosen.format("updated")}) u ON i.source = ? AND i.source_id = u.source_id
            """,
            [ingest_id, m.name],
        )
    if counts.get("loaded"):
        columns = ", ".join(INCIDENT_COLUMNS)
        con.execute(
            f"""
            INSERT INTO {writing_table(con, "incidents")} (source, occurred_precision, {columns}, first_ingest_id,
                                                         last_ingest_id)
            SELECT ?, ?, {columns}, ?, ?
            FROM ({chosen.format("loaded")})
            ORDER BY occurred_at
            """,
            [m.name, m.precision, ingest_id, ingest_id],
        )
    return {
        "loaded": counts.get("loaded", 0),
        "updated": counts.get("updated", 0),
        "unchanged": counts.get("unchanged", 0),
    }
