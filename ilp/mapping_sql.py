"""The DuckDB SQL an ingest mapping compiles to: what reads and normalises one source file.

A parsed ``Mapping`` (ilp/mapping.py) becomes three pieces of SQL text, run by ilp/ingest.py:

- ``read_csv_sql``: read_csv of one file with the mapping's dialect, every column VARCHAR, CSV-level
  failures kept in a rejects table instead of stopping the batch;
- ``parsed_sql``: one SELECT turning raw text rows into typed values (id, timestamps, offence code,
  coordinates, flags, clearance, other areas) plus a reject field and reason;
- ``final_sql``: parsed rows into warehouse rows (location status, common offence category, row hash).

Values in the SQL come from the mapping file the operator chose, never from a dashboard user; they
are still quoted (``sql_string``, ``ident``) so no value can end its literal or identifier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from ilp.mapping import Mapping

MAX_LINE_BYTES = 16 * 1024 * 1024  # let long fields reach validation, which rejects them by name


def sql_string(text: str) -> str:
    """Quote a literal for the few places DuckDB takes no parameter (read_csv options, strptime formats).

    Values come from the mapping file the operator chose, never from a dashboard user; quoting still
    doubles single quotes so no value can end the literal.
    """
    return "'" + text.replace("'", "''") + "'"


def ident(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _clean(column: str) -> str:
    """A source text column, trimmed, empty as NULL."""
    return f"nullif(trim({ident(column)}), '')"


# ------------------------------------------------------------------------------------------ reading
def read_csv_sql(m: Mapping, path: Path, index: int | str, columns: Sequence[str]) -> str:
    """read_csv of one file, all VARCHAR, with each data row's ordinal; CSV-level failures are stored in
    csv_rejects_<index> (line, column, error type, raw line) instead of stopping the batch.

    The dialect is the mapping's and the column names are the header's (``ilp.ingest._header``), so
    DuckDB's sniffer is switched off: it would otherwise fail the whole file on one broken line (an
    unterminated quote in a truncated last row) instead of rejecting that line."""
    column_types = "{" + ", ".join(f"{sql_string(c)}: 'VARCHAR'" for c in columns) + "}"
    options = ", ".join(
        [
            "auto_detect = false",
            f"columns = {column_types}",
            f"delim = {sql_string(m.delimiter)}",
            f"quote = {sql_string(m.quote)}",
            f"escape = {sql_string(m.quote)}",
            f"header = {str(m.header).lower()}",
            f"skip = {int(m.skip_rows)}",
            f"encoding = {sql_string(m.encoding)}",
            "all_varchar = true",
            "null_padding = false",
            "store_rejects = true",
            f"rejects_table = {sql_string(f'csv_rejects_{index}')}",
            f"rejects_scan = {sql_string(f'csv_scans_{index}')}",
            f"max_line_size = {MAX_LINE_BYTES}",
        ]
    )
    return f"read_csv({sql_string(str(path))}, {options})"


# ------------------------------------------------------------------------------------------ normalising
def _timestamp_expression(columns: Sequence[str], formats: Sequence[str]) -> tuple[str, str]:
    """(raw text expression, parsed timestamp expression) for one or two (date, time) columns."""
    raw = (
        _clean(columns[0])
        if len(columns) == 1
        else f"nullif(trim(concat_ws(' ', {_clean(columns[0])}, {_clean(columns[1])})), '')"
    )
    format_list = "[" + ", ".join(sql_string(f) for f in formats) + "]"
    return raw, f"try_strptime({raw}, {format_list})"


def _flag(m: Mapping, column: str | None) -> str:
    if not column:
        return "NULL::BOOLEAN"
    value = f"lower(trim({ident(column)}))"
    trues = ", ".join(sql_string(v) for v in m.true_values)
    falses = ", ".join(sql_string(v) for v in m.false_values)
    return f"CASE WHEN {value} IN ({trues}) THEN true WHEN {value} IN ({falses}) THEN false END"


def _in_list(expression: str, values: Sequence[str]) -> str:
    if not values:
        return "false"
    return f"{expression} IN ({', '.join(sql_string(v) for v in values)})"


def parsed_sql(m: Mapping, relation: str, file_index: int, today: dt.date) -> str:
    """One SELECT turning raw text rows into typed values plus a reject field and reason (NULL if valid).

    The raw row (as JSON of the mapped columns) is built only for rejected rows, which is what keeps
    ingest near read_csv speed."""
    occurred_raw, occurred = _timestamp_expression(m.occurred_columns, m.occurred_formats)
    if m.time_column:
        time_raw = _clean(m.time_column)
        padded = f"lpad({time_raw}, {len(dt.time(0, 0).strftime(m.time_format))}, '0')"
        time_value = f"try_strptime({padded}, {sql_string(m.time_format)})"
        # strptime of a time alone gives 1900-01-01 hh:mm; its offset from that midnight is the time of day.
        occurred = f"(date_trunc('day', {occurred}) + ({time_value} - TIMESTAMP '1900-01-01'))"
        occurred_raw = f"concat_ws(' ', {occurred_raw}, {time_raw})"
    if m.precision == "month":
        occurred = f"date_trunc('month', {occurred})"
    elif m.precision == "day":
        occurred = f"date_trunc('day', {occurred})"
    if m.reported_columns:
        _, reported = _timestamp_expression(m.reported_columns, m.reported_formats)
    else:
        reported = "NULL::TIMESTAMP"

    id_parts = [_clean(c) for c in m.id_columns]
    id_any_missing = " OR ".join(f"{p} IS NULL" for p in id_parts)
    source_id = (
        f"CASE WHEN {id_any_missing} THEN NULL ELSE concat_ws({sql_string(m.id_separator)}, {', '.join(id_parts)}) END"
    )

    code = _clean(m.offense_code)
    if m.code_width:
        code = f"CASE WHEN length({code}) < {m.code_width} THEN lpad({code}, {m.code_width}, '0') ELSE {code} END"
    description = (
        f"nullif(concat_ws(' - ', {', '.join(_clean(c) for c in m.offense_description)}), '')"
        if m.offense_description
        else "NULL"
    )

    if m.latitude:
        lat_raw, lon_raw = _clean(m.latitude), _clean(m.longitude)
        lat = f"try_cast(replace({lat_raw}, ',', '') AS DOUBLE)"
        lon = f"try_cast(replace({lon_raw}, ',', '') AS DOUBLE)"
    elif m.x:
        # Projected coordinates are reprojected to WGS84 after this SELECT (pyproj, vectorised).
        lat_raw, lon_raw = _clean(m.y), _clean(m.x)
        lat = f"try_cast(replace({lat_raw}, ',', '') AS DOUBLE)"
        lon = f"try_cast(replace({lon_raw}, ',', '') AS DOUBLE)"
    else:
        lat_raw = lon_raw = lat = lon = "NULL"

    outcome = _clean(m.outcome) if m.outcome else "NULL"
    arrest = _flag(m, m.arrest)
    clearance = (
        "CASE "
        f"WHEN {_in_list(outcome, m.cleared_arrest)} THEN 'cleared_arrest' "
        f"WHEN {_in_list(outcome, m.cleared_other)} THEN 'cleared_other' "
        + (f"WHEN {arrest} THEN 'cleared_arrest' " if m.arrest_means_cleared else "")
        + f"WHEN {_in_list(outcome, m.open_values)} THEN 'open' "
        + ("WHEN " + arrest + " = false THEN 'open' " if m.arrest_means_cleared else "")
        + "ELSE 'unknown' END"
    )
    other_areas = (
        "MAP {" + ", ".join(f"{sql_string(level)}: {_clean(column)}" for level, column in m.other_areas.items()) + "}"
        if m.other_areas
        else "NULL::MAP(VARCHAR, VARCHAR)"
    )
    used = m.columns_used()
    too_long = " ".join(f"WHEN length({ident(c)}) > {m.max_field_length} THEN {sql_string(c)}" for c in used)
    raw_row = "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {ident(c)}" for c in used) + "))::VARCHAR"
    kept_raw = "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {ident('raw:' + c)}" for c in used) + "))::VARCHAR"
    max_date = (
        today + dt.timedelta(days=1)
        if m.max_date == "today"
        else dt.date.fromisoformat(m.max_date) + dt.timedelta(days=1)
    )
    min_date = dt.date.fromisoformat(m.min_date)
    first_date_column = m.occurred_columns[0]

    return f"""
    WITH parsed AS (
        SELECT _row, {file_index} AS _file,
            {source_id} AS source_id,
            {occurred_raw} AS occurred_raw,
            {occurred} AS occurred_at,
            {reported} AS reported_at,
            {code} AS offense_code,
            {description} AS offense_description,
            {lat_raw} AS lat_raw, {lon_raw} AS lon_raw,
            {lat} AS lat_value, {lon} AS lon_value,
            {_clean(m.location_text) if m.location_text else "NULL"} AS location_text,
            {_clean(m.district) if m.district else "NULL"} AS district,
            {_clean(m.beat) if m.beat else "NULL"} AS beat,
            {other_areas} AS other_areas,
            {_clean(m.premise_type) if m.premise_type else "NULL"} AS premise_type,
            {_flag(m, m.domestic)} AS domestic,
            {arrest} AS arrest,
            {clearance} AS clearance_status,
            {outcome} AS outcome_description,
            CASE {too_long} ELSE NULL END AS too_long_field,
            CASE WHEN {source_id} IS NULL THEN md5({raw_row}) END AS content_key,
            {", ".join(f"{ident(c)} AS {ident('raw:' + c)}" for c in used)}
        FROM {relation}
    ), checked AS (
    SELECT *,
        CASE
            WHEN too_long_field IS NOT NULL THEN too_long_field
            WHEN source_id IS NULL AND {sql_string(m.id_when_missing)} = 'reject' THEN {sql_string(", ".join(m.id_columns))}
            WHEN occurred_raw IS NULL OR occurred_at IS NULL OR occurred_at < DATE '{min_date}' OR occurred_at >= DATE '{max_date}'
                THEN {sql_string(first_date_column)}
            WHEN offense_code IS NULL THEN {sql_string(m.offense_code)}
        END AS reject_field,
        CASE
            WHEN too_long_field IS NOT NULL THEN 'field is over the limit of {m.max_field_length} characters ([validity] max_field_length)'
            WHEN source_id IS NULL AND {sql_string(m.id_when_missing)} = 'reject' THEN 'required id is empty'
            WHEN occurred_raw IS NULL THEN 'required date is empty'
            WHEN occurred_at IS NULL THEN 'unparseable date ' || left(occurred_raw, 60) || ' (expected {" or ".join(m.occurred_formats).replace("'", "''")})'
            WHEN occurred_at < DATE '{min_date}' OR occurred_at >= DATE '{max_date}'
                THEN 'date ' || occurred_at || ' outside the valid range {min_date} .. {m.max_date}'
            WHEN offense_code IS NULL THEN 'required offence code is empty'
        END AS reject_reason
    FROM parsed
    )
    SELECT _row, _file, source_id, content_key, occurred_at, reported_at, offense_code, offense_description,
        lat_raw, lon_raw, lat_value, lon_value, location_text, district, beat, other_areas, premise_type,
        domestic, arrest, clearance_status, outcome_description, reject_field, reject_reason,
        CASE WHEN reject_reason IS NOT NULL THEN {kept_raw} END AS raw_row
    FROM checked
    """


# ------------------------------------------------------------------------------------------ warehouse rows
def final_sql(m: Mapping, relation: str) -> str:
    """Parsed rows -> warehouse rows: location status, common category, content hash."""
    bbox = m.bbox
    out_of_box = (
        f"lat_value < {bbox[1]} OR lat_value > {bbox[3]} OR lon_value < {bbox[0]} OR lon_value > {bbox[2]}"
        if bbox
        else "lat_value < -90 OR lat_value > 90 OR lon_value < -180 OR lon_value > 180"
    )
    return f"""
    WITH located AS (
        SELECT *,
            CASE
                WHEN lat_raw IS NULL OR lon_raw IS NULL THEN 'missing'
                WHEN lat_value IS NULL OR lon_value IS NULL OR isnan(lat_value) OR isinf(lat_value)
                     OR isnan(lon_value) OR isinf(lon_value) THEN 'unparseable'
                WHEN lat_value = 0 AND lon_value = 0 THEN 'zero'
                WHEN {out_of_box} THEN 'out_of_bounds'
                ELSE 'ok'
            END AS location_status
        FROM {relation}
    )
    SELECT l._file, l._row, l.source_id, l.content_key, l.occurred_at, l.reported_at, l.offense_code,
        l.offense_description,
        CASE WHEN l.reject_reason IS NULL THEN coalesce(t.category, 'unmapped') END AS offense_category,
        CASE WHEN l.location_status = 'ok' THEN l.lat_value END AS latitude,
        CASE WHEN l.location_status = 'ok' THEN l.lon_value END AS longitude,
        l.location_status, l.location_text, l.district, l.beat, l.other_areas, l.premise_type,
        l.domestic, l.arrest, l.clearance_status, l.outcome_description,
        CASE WHEN l.reject_reason IS NULL THEN
            md5(concat_ws('|', l.occurred_at, l.reported_at, l.offense_code, l.offense_description,
                coalesce(t.category, 'unmapped'), l.lat_value, l.lon_value, l.location_status, l.location_text,
                l.district, l.beat, l.other_areas::VARCHAR, l.premise_type, l.domestic, l.arrest,
                l.clearance_status, l.outcome_description))
        END AS row_hash,
        l.reject_field, l.reject_reason, l.raw_row
    FROM located l
    LEFT JOIN offence_taxonomy t ON t.source = {sql_string(m.taxonomy)} AND t.offense_code = l.offense_code
    """
