"""What a warehouse snapshot holds: the facts behind `ilp status`, `ilp rejects` and the governance page."""

from __future__ import annotations

import contextlib
import json

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
        lines.append("\nUnmapped offence codes (add them to data/taxonomy/<taxonomy>.csv)")
        for u in report["unmapped_codes"]:
            lines.append(
                f"  {u['source']:<10}{str(u['offense_code']):<14}{u['incidents']:>8,}  {u['description'] or ''}"
            )
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
            """
            SELECT ingest_id, file, line_number, field, reason, raw_row FROM rejects
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
