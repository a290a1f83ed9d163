"""The DuckDB SQL an ingest mapping compiles to: what reads and normalises one source file.

A parsed ``Mapping`` (ilp/mapping.py) becomes three pieces of SQL text, run by ilp/ingest.py:

- ``read_csv_sql``: read_csv of one file with the mapping's dialect, every column VARCHAR, CSV-level
  failures kept in a rejects table instead of stopping the batch;
- ``parsed_sql``: one SELECT turning raw text rows into typed values (id, timestamps, offence code,
  coordinates, flags, clearance, other areas) plus a reject field, rule, value and reason;
- ``final_sql``: parsed rows into warehouse rows (location status, common offence category, row hash).

Values in the SQL come from the mapping file the operator chose, never from a dashboard user; they
are still quoted (``sql_string``, ``ident``) so no value can end its literal or identifier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from ilp.mapping import SECONDS_SINCE_MIDNIGHT, Mapping

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
# Every reject carries a rule: the mapping key (or CSV problem) it broke, in words. The governance page
# and `ilp rejects` group by it; the reason adds the row's own value.
RULE_ID_EMPTY = "[id] columns: id is empty"
RULE_ID_DUPLICATE = "[id] columns: id repeated in the batch (the last row wins)"
RULE_DATE_EMPTY = "[occurred] columns: date is empty"
RULE_DATE_FORMAT = "[occurred] formats: unparseable date"
RULE_TIME_EMPTY = "[occurred] time_column: time is empty"
RULE_TIME_FORMAT = "[occurred] time_format: unparseable time"
RULE_CODE_EMPTY = "[offense] code: offence code is empty"


def rule_min_date(m: Mapping) -> str:
    return f"[validity] min_date = {m.min_date}: date too early"


def rule_max_date(m: Mapping) -> str:
    return f"[validity] max_date = {m.max_date}: date too late"


def rule_field_length(m: Mapping) -> str:
    return f"[validity] max_field_length = {m.max_field_length}: value too long"


def _timestamp_expression(columns: Sequence[str], formats: Sequence[str]) -> tuple[str, str]:
    """(raw text expression, parsed timestamp expression) for one or two (date, time) columns."""
    raw = (
        _clean(columns[0])
        if len(columns) == 1
        else f"nullif(trim(concat_ws(' ', {_clean(columns[0])}, {_clean(columns[1])})), '')"
    )
    format_list = "[" + ", ".join(sql_string(f) for f in formats) + "]"
    return raw, f"try_strptime({raw}, {format_list})"


def _time_of_day(raw: str, formats: Sequence[str]) -> str:
    """The time of day in ``raw`` as an INTERVAL since midnight (NULL when no format reads it).

    A format made of digits only ("%H%M", "%H%M%S", "%H") pads a shorter value with leading zeros, as
    exports drop them ("5" is 00:05 under "%H%M", 05:00 under "%H"); a longer value is never cut to fit.
    "seconds" reads whole or decimal seconds since midnight (0 to 86399)."""
    parts = []
    for text in formats:
        if text == SECONDS_SINCE_MIDNIGHT:
            seconds = f"try_cast({raw} AS DOUBLE)"
            parts.append(f"CASE WHEN {seconds} >= 0 AND {seconds} < 86400 THEN to_seconds({seconds}) END")
            continue
        sample = dt.datetime(1900, 1, 1).strftime(text)
        value = raw
        if sample.isdigit():
            value = f"CASE WHEN length({raw}) < {len(sample)} THEN lpad({raw}, {len(sample)}, '0') ELSE {raw} END"
        # strptime of a time alone gives 1900-01-01 hh:mm; its offset from that midnight is the time of day.
        parts.append(f"(try_strptime({value}, {sql_string(text)}) - TIMESTAMP '1900-01-01')")
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


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


def content_key_sql(m: Mapping) -> str:
    """md5 of the row's mapped columns as read (JSON, so no two different rows share a text): the content
    part of an id for a row without one ('h:<md5>#<n>', n counting identical rows in the file)."""
    return (
        "md5(to_json(struct_pack(" + ", ".join(f"{ident(c)} := {ident(c)}" for c in m.columns_used()) + "))::VARCHAR)"
    )


def parsed_sql(m: Mapping, relation: str, file_index: int, today: dt.date) -> str:
    """One SELECT turning raw text rows into typed values plus a reject field, rule, value and reason (all
    NULL if the row is valid). The raw line of a rejected row is read from the file afterwards (only
    files with rejects are read again), which is what keeps ingest near read_csv speed."""
    date_column = m.occurred_columns[0]
    date_raw, date_value = _timestamp_expression(m.occurred_columns, m.occurred_formats)
    if m.time_column:
        time_raw = _clean(m.time_column)
        time_value = _time_of_day(time_raw, m.time_formats)
        occurred = f"(date_trunc('day', {date_value}) + {time_value})"
    else:
        time_raw = time_value = "NULL"
        occurred = date_value
    if m.precision == "month":
        occurred = f"date_trunc('month', {occurred})"
    elif m.precision == "day":
        occurred = f"date_trunc('day', {occurred})"
    if m.reported_columns:
        _, reported = _timestamp_expression(m.reported_columns, m.reported_formats)
    else:
        reported = "NULL::TIMESTAMP"

    if m.id_columns:
        id_parts = [_clean(c) for c in m.id_columns]
        id_any_missing = " OR ".join(f"{p} IS NULL" for p in id_parts)
        source_id = (
            f"CASE WHEN {id_any_missing} THEN NULL "
            f"ELSE concat_ws({sql_string(m.id_separator)}, {', '.join(id_parts)}) END"
        )
    else:
        source_id = "NULL::VARCHAR"  # every row's id comes from its content (ilp.ingest)
    reject_missing_id = "false" if m.id_when_missing == "content_hash" else "source_id IS NULL"

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
    elif m.x:
        # Projected coordinates are reprojected to WGS84 after this SELECT (pyproj, vectorised).
        lat_raw, lon_raw = _clean(m.y), _clean(m.x)
    else:
        lat_raw = lon_raw = "NULL"
    if m.latitude or m.x:
        lat = f"try_cast(replace({lat_raw}, ',', '') AS DOUBLE)"
        lon = f"try_cast(replace({lon_raw}, ',', '') AS DOUBLE)"
    else:
        lat = lon = "NULL"

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
    # only for a row that is too long: which column's length (a CASE on the column name, NULL for the rest)
    too_long_size = (
        'CASE "_too_long_field" '
        + " ".join(f"WHEN {sql_string(c)} THEN length({ident(c)})::VARCHAR" for c in used)
        + " END"
    )
    # Compared as dates, so a max_date of 9999-12-31 needs no "day after" that does not exist.
    min_date = dt.date.fromisoformat(m.min_date)
    max_date = today if m.max_date == "today" else dt.date.fromisoformat(m.max_date)
    max_text = f"today ({today.isoformat()})" if m.max_date == "today" else m.max_date
    valid_range = f"the valid range {m.min_date} .. {max_text}"
    expected_date = " or ".join(m.occurred_formats)
    expected_time = " or ".join(m.time_formats)
    time_field = m.time_column or date_column

    # (condition, field, rule, value, reason) in order: the first that holds rejects the row.
    checks = [
        (
            "too_long_field IS NOT NULL",
            "too_long_field",
            sql_string(rule_field_length(m)),
            "too_long_size || ' characters'",
            sql_string(f"field is over the limit of {m.max_field_length} characters ([validity] max_field_length)"),
        ),
        (
            reject_missing_id,
            sql_string(", ".join(m.id_columns)),
            sql_string(RULE_ID_EMPTY),
            "NULL",
            "'required id is empty'",
        ),
        ("date_raw IS NULL", sql_string(date_column), sql_string(RULE_DATE_EMPTY), "NULL", "'required date is empty'"),
        (
            "date_value IS NULL",
            sql_string(date_column),
            sql_string(RULE_DATE_FORMAT),
            "date_raw",
            f"'unparseable date ' || left(date_raw, 60) || {sql_string(f' (expected {expected_date})')}",
        ),
        (
            "time_raw IS NULL AND has_time",
            sql_string(time_field),
            sql_string(RULE_TIME_EMPTY),
            "NULL",
            "'required time is empty ([occurred] time_column)'",
        ),
        (
            "time_value IS NULL AND has_time",
            sql_string(time_field),
            sql_string(RULE_TIME_FORMAT),
            "time_raw",
            f"'unparseable time ' || left(time_raw, 60) || {sql_string(f' (expected {expected_time})')}",
        ),
        (
            f"occurred_at < DATE '{min_date}'",
            sql_string(date_column),
            sql_string(rule_min_date(m)),
            "occurred_at::VARCHAR",
            f"'date ' || occurred_at || {sql_string(f' outside {valid_range} (before [validity] min_date)')}",
        ),
        (
            f"occurred_at::DATE > DATE '{max_date}'",
            sql_string(date_column),
            sql_string(rule_max_date(m)),
            "occurred_at::VARCHAR",
            f"'date ' || occurred_at || {sql_string(f' outside {valid_range} (after [validity] max_date)')}",
        ),
        (
            "offense_code IS NULL",
            sql_string(m.offense_code),
            sql_string(RULE_CODE_EMPTY),
            "NULL",
            "'required offence code is empty'",
        ),
    ]

    # The conditions are evaluated once per row, into the number of the first that holds; the field, rule,
    # value and reason are then picked by that number (cheap, and only matched for rejected rows).
    first_failed = "CASE " + " ".join(f"WHEN {c[0]} THEN {n}" for n, c in enumerate(checks)) + " END"

    def case(position: int) -> str:
        return "CASE reject_check " + " ".join(f"WHEN {n} THEN {c[position]}" for n, c in enumerate(checks)) + " END"

    return f"""
    WITH sized AS (
        SELECT *, CASE {too_long} ELSE NULL END AS "_too_long_field" FROM {relation}
    ), parsed AS (
        SELECT _row, {file_index} AS _file,
            {source_id} AS source_id,
            {date_raw} AS date_raw,
            {date_value} AS date_value,
            {time_raw} AS time_raw,
            {time_value} AS time_value,
            {"true" if m.time_column else "false"} AS has_time,
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
            "_too_long_field" AS too_long_field,
            {too_long_size} AS too_long_size,
            CASE WHEN {source_id} IS NULL THEN {content_key_sql(m)} END AS content_key
        FROM sized
    ), checked AS (
        SELECT *, {first_failed} AS reject_check FROM parsed
    ), described AS (
        SELECT *, {case(1)} AS reject_field, {case(2)} AS reject_rule, {case(3)} AS reject_value,
            {case(4)} AS reject_reason
        FROM checked
    )
    SELECT _row, _file, source_id, content_key, occurred_at, reported_at, offense_code, offense_description,
        lat_raw, lon_raw, lat_value, lon_value, location_text, district, beat, other_areas, premise_type,
        domestic, arrest, clearance_status, outcome_description, reject_field, reject_rule, reject_value,
        reject_reason
    FROM described
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
        l.reject_field, l.reject_rule, l.reject_value, l.reject_reason
    FROM located l
    LEFT JOIN offence_taxonomy t ON t.source = {sql_string(m.taxonomy)} AND t.offense_code = l.offense_code
    """
