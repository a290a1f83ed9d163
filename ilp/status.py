"""What a warehouse snapshot holds: the facts behind `ilp status`, `ilp rejects` and the governance page."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import duckdb
import pandas as pd

from ilp.warehouse import Warehouse, read_meta

DATA_TABLES = (
    "incidents",
    "incident_history",
    "incident_persons",
    "calls_for_service",
    "use_of_force",
    "community_survey",
    "areas",
    "offence_taxonomy",
    "harm_weights",
    "ingest_log",
    "rejects",
    "demo_truth",
)


def status(warehouse: Warehouse) -> dict:
    path = warehouse.require_current()
    warehouse.remove_stale_partials()  # `ilp` did this at start; a library caller may not have
    with contextlib.closing(warehouse.connect()) as con:
        meta = read_meta(con)
        tables = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in DATA_TABLES}
        sources = con.execute(
            """
            SELECT source, count(*) AS incidents, min(occurred_at)::VARCHAR AS first_occurred,
                   max(occurred_at)::VARCHAR AS last_occurred, any_value(occurred_precision) AS precision,
                   count(*) FILTER (WHERE location_status <> 'ok') AS without_location,
                   count(*) FILTER (WHERE offense_category = 'unmapped') AS unmapped
            FROM incidents GROUP BY source ORDER BY source
            """
        ).df()
        ingests = con.execute(
            """
            SELECT ingest_id, kind, source, started_at::VARCHAR AS started_at, rows_read, loaded, updated,
                   unchanged, rejected, snapshot, files
            FROM ingest_log ORDER BY ingest_id DESC LIMIT 10
            """
        ).df()
        unmapped = con.execute(
            """
            SELECT source, offense_code, any_value(offense_description) AS description, count(*) AS incidents
            FROM incidents WHERE offense_category = 'unmapped'
            GROUP BY source, offense_code ORDER BY incidents DESC, source, offense_code LIMIT 50
            """
        ).df()
        harm = con.execute(
            "SELECT index_name, version, title, is_default FROM harm_indices ORDER BY is_default DESC, index_name"
        ).df()
        warnings = ingest_warnings(con)
        content_ids = content_id_duplicates(con)
    source_files = []
    for files in ingests["files"].dropna():
        source_files.extend(record["path"] for record in json.loads(files))
    return {
        "snapshot": {
            "version": meta.get("version", path.stem),
            "created_at": meta.get("created_at"),
            "kind": meta.get("kind"),
            "parent": meta.get("parent") or None,
            "path": str(path),
            "last_write": meta.get("last_write"),
            "source_files": sorted(set(source_files)),
        },
        "tables": tables,
        "sources": sources.to_dict(orient="records"),
        "ingests": ingests.drop(columns=["files"]).to_dict(orient="records"),
        "unmapped_codes": unmapped.to_dict(orient="records"),
        "harm_indices": harm.to_dict(orient="records"),
        "warnings": warnings.to_dict(orient="records"),
        "content_ids": content_ids.to_dict(orient="records"),
        "partial_files": {
            "removed": list(warehouse.removed_partials),
            "present": warehouse.partials_in_progress(),
        },
    }


def format_status(report: dict) -> str:
    snap = report["snapshot"]
    lines = [
        f"Snapshot {snap['version']} ({snap['kind']}), created {snap['created_at']}",
        f"  file: {snap['path']}",
        f"  last write: {snap['last_write']}",
    ]
    if snap["source_files"]:
        lines.append("  source files: " + ", ".join(snap["source_files"]))
    lines.append("\nRows per table")
    lines += [f"  {name:<20}{count:>12,}" for name, count in report["tables"].items()]
    lines.append("\nIncidents by source (date range, precision)")
    for s in report["sources"]:
        lines.append(
            f"  {s['source']:<12}{s['incidents']:>10,}  {s['first_occurred']} .. {s['last_occurred']}  "
            f"({s['precision']}); without usable location {s['without_location']:,}; unmapped {s['unmapped']:,}"
        )
    lines.append("\nLast ingests")
    for i in report["ingests"]:
        lines.append(
            f"  #{i['ingest_id']} {i['kind']:<7}{str(i['source']):<10} {i['started_at']}  read {i['rows_read']:,}, "
            f"loaded {i['loaded']:,}, updated {i['updated']:,}, unchanged {i['unchanged']:,}, rejected {i['rejected']:,}"
        )
    if report["unmapped_codes"]:
        lines.append("\nUnmapped offence codes (add them to the source's taxonomy file, then ingest again)")
        for u in report["unmapped_codes"]:
            lines.append(
                f"  {u['source']:<10}{str(u['offense_code']):<14}{u['incidents']:>8,}  {u['description'] or ''}"
            )
    lines += _onboarding_lines(report)
    lines.append(
        "\nHarm indices: "
        + ", ".join(
            f"{h['index_name']} {h['version']}{' (default)' if h['is_default'] else ''}" for h in report["harm_indices"]
        )
    )
    return "\n".join(lines)


def rejects(warehouse: Warehouse, ingest_id: int | None = None, limit: int | None = 200) -> pd.DataFrame:
    with contextlib.closing(warehouse.connect()) as con:
        return con.execute(
            f"""
            SELECT ingest_id, file, line_number, field, reason, raw_row, rule, value FROM {_REJECTS}
            WHERE $ingest_id IS NULL OR ingest_id = $ingest_id
            ORDER BY ingest_id, file, line_number
            LIMIT coalesce($limit, 9223372036854775807)
            """,
            {"ingest_id": ingest_id, "limit": limit},
        ).df()


def format_rejects(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "No rejected rows."
    lines = []
    for row in frame.itertuples():
        raw = str(row.raw_row)
        # a whole-line CSV error has no field: NULL, which pandas hands over as None or NaN
        field_name = row.field if isinstance(row.field, str) and row.field else "(whole line)"
        lines.append(
            f"ingest {row.ingest_id}  {row.file}:{row.line_number}  field {field_name}: {row.reason}\n"
            f"    raw: {raw[:300]}{'...' if len(raw) > 300 else ''}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ onboarding checks
# rejects as written by any version: a snapshot from before the rule and value columns reads them as NULL
_REJECTS = (
    "(FROM rejects UNION ALL BY NAME "
    "(SELECT NULL::VARCHAR AS rule, NULL::VARCHAR AS value, NULL::VARCHAR AS file_sha256 LIMIT 0))"
)


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", [table]
        ).fetchone()[0]
    )


def ingest_warnings(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The plausibility warnings (ilp.ingest.plausibility_warnings) still in force, newest first: one row per
    (source, file, check) with ingest_id, source, file, check_name, rows and message. A warning retires when
    a later ingest read the same file content with another mapping (the corrected one: if it is still
    wrong, that ingest has its own warning), or when no incident is left whose last ingest is the one that
    warned. Empty for a snapshot written before warnings were kept."""
    columns = ["ingest_id", "source", "file", "check_name", "rows", "message"]
    if not _has_table(con, "ingest_warnings") or not con.execute("SELECT count(*) FROM ingest_warnings").fetchone()[0]:
        return pd.DataFrame(columns=columns)
    # The incidents still carrying a warned ingest: a semi join probing incidents with the few warned
    # ingests (an EXISTS here built a hash table of every incident: 2-4 s and 700 MB at 10M incidents).
    return con.execute(
        """
        WITH in_force AS (
            SELECT DISTINCT i.source, i.last_ingest_id AS ingest_id
            FROM incidents i
            SEMI JOIN ingest_warnings w ON i.source = w.source AND i.last_ingest_id = w.ingest_id
        )
        SELECT w.ingest_id, w.source, w.file, w.check_name, w.rows, w.message
        FROM ingest_warnings w
        SEMI JOIN in_force f ON f.source = w.source AND f.ingest_id = w.ingest_id
        WHERE NOT EXISTS (
              SELECT 1 FROM ingest_log l
              WHERE l.ingest_id > w.ingest_id AND l.source = w.source
                AND l.mapping_sha256 IS DISTINCT FROM w.mapping_sha256
                AND list_contains(json_extract_string(l.files, '$[*].sha256'), w.file_sha256)
          )
        QUALIFY row_number() OVER (PARTITION BY w.source, w.file, w.check_name ORDER BY w.ingest_id DESC) = 1
        ORDER BY w.ingest_id DESC, w.file, w.check_name
        """
    ).df()


def content_id_duplicates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per source whose rows have content ids (no id column, or [id] when_missing = 'content_hash'):
    ``content_ids`` (incidents with one), ``identical_rows`` (the 2nd and later of rows identical in one
    file, kept as separate incidents) and ``likely_duplicates``: incidents whose occurrence time, offence
    code and place equal those of a content-id incident an earlier ingest loaded, with other content. A
    corrected row in a later export gets a new content id, so the old and the corrected version both stay:
    these are the pairs to check."""
    return con.execute(
        """
        WITH content AS (
            SELECT source, source_id, split_part(source_id, '#', 1) AS content, occurred_at, offense_code,
                   concat_ws('|', location_text, latitude, longitude, beat, district) AS place, first_ingest_id
            FROM incidents WHERE source_id LIKE 'h:%'
        ), likely AS (
            SELECT DISTINCT a.source, a.source_id
            FROM content a JOIN content b
              ON a.source = b.source AND a.occurred_at = b.occurred_at AND a.offense_code = b.offense_code
             AND a.place = b.place AND a.content <> b.content AND b.first_ingest_id < a.first_ingest_id
        )
        SELECT c.source, count(*) AS content_ids,
               count(*) FILTER (WHERE NOT c.source_id LIKE '%#1') AS identical_rows,
               count(l.source_id) AS likely_duplicates
        FROM content c LEFT JOIN likely l ON l.source = c.source AND l.source_id = c.source_id
        GROUP BY c.source ORDER BY c.source
        """
    ).df()


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _onboarding_lines(report: dict) -> list[str]:
    """The status lines of what onboarding can get wrong: implausible times that loaded, content ids that
    may hold corrected duplicates, and unfinished snapshot files."""
    lines: list[str] = []
    if report.get("warnings"):
        lines.append("\nWARNINGS: implausible data that loaded (fix the mapping and ingest again)")
        lines += [
            f"  #{w['ingest_id']} {w['source']} {Path(w['file']).name}: {w['message']}" for w in report["warnings"]
        ]
    for c in report.get("content_ids", []):
        lines.append(
            f"\nContent ids ({c['source']}: rows without an id, identified by their content): {c['content_ids']:,} "
            f"incidents; {c['identical_rows']:,} are identical rows of one file kept apart (#2 and later)"
        )
        if c["likely_duplicates"]:
            lines.append(
                f"  WARNING {c['likely_duplicates']:,} look like corrected versions of a row an earlier ingest "
                f"loaded (same time, offence and place, other content): both versions are counted. The README section 'Exports with "
                f"no id column' shows the SQL that lists them."
            )
    partials = report.get("partial_files", {})
    for leftover in partials.get("removed", []):
        lines.append(
            f"\nRemoved {leftover['file']} ({_mib(leftover['bytes'])}): an unfinished snapshot an interrupted "
            f"write left behind."
        )
    for present in partials.get("present", []):
        lines.append(
            f"\nUnfinished snapshot file {present['file']} ({_mib(present['bytes'])}): a write is running now "
            f"(it is removed when it fails or ends)."
        )
    return lines


def likely_duplicate_rows(con: duckdb.DuckDBPyConnection, source: str | None = None) -> pd.DataFrame:
    """The pairs behind ``content_id_duplicates``'s likely_duplicates: the later incident, the earlier one it
    resembles, and what they share (occurred_at, offence code, location text)."""
    return con.execute(
        """
        WITH content AS (
            SELECT source, source_id, split_part(source_id, '#', 1) AS content, occurred_at, offense_code,
                   location_text, concat_ws('|', location_text, latitude, longitude, beat, district) AS place,
                   first_ingest_id
            FROM incidents WHERE source_id LIKE 'h:%' AND ($source IS NULL OR source = $source)
        )
        SELECT a.source, a.source_id AS later_id, a.first_ingest_id AS later_ingest, b.source_id AS earlier_id,
               b.first_ingest_id AS earlier_ingest, a.occurred_at, a.offense_code, a.location_text
        FROM content a JOIN content b
          ON a.source = b.source AND a.occurred_at = b.occurred_at AND a.offense_code = b.offense_code
         AND a.place = b.place AND a.content <> b.content AND b.first_ingest_id < a.first_ingest_id
        ORDER BY a.source, a.occurred_at, a.source_id
        """,
        {"source": source},
    ).df()
