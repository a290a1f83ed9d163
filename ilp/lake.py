"""The current snapshot as Parquet files, for engines that do not read DuckDB files (Spark, Trino, a
regional or national view over several forces' exports).

``export_parquet`` writes one folder per table: the large tables split by year (``year=YYYY/`` Hive
partitions, what Spark and Trino prune on), the small ones as one file, plus ``manifest.json`` naming the
snapshot, each table's rows and files. Person-level tables (``incident_persons``: pseudonymous keys) and
the app state are left out unless asked for: a shared lake is not where person-level data belongs.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from ilp.errors import UserError
from ilp.warehouse import SEGMENT_TABLES, Warehouse, connect_read_only

PERSON_LEVEL = ("incident_persons",)
YEAR_COLUMN = {
    "incidents": "occurred_at",
    "calls_for_service": "received_at",
    "use_of_force": "occurred_at",
    "incident_history": "superseded_at",
}
NOT_EXPORTED = ("segments", "superseded")  # how the snapshot is stored, not what it holds


class ExportError(UserError):
    """An export that cannot be written as asked."""


def export_parquet(warehouse: Warehouse, out: str | Path, *, include_persons: bool = False) -> dict:
    """Write the current snapshot's tables under ``out`` (a new or empty folder). Returns the manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out}: the folder is not empty; give a new folder for the export")
    snapshot = warehouse.require_current()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    manifest: dict = {"snapshot": snapshot.stem, "format": "parquet (zstd)", "tables": {}}
    try:
        with contextlib.closing(connect_read_only(snapshot)) as con:
            columns = {
                (table, column)
                for table, column in con.execute(
                    "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()"
                ).fetchall()
            }
            tables = [
                row[0]
                for row in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                    "AND schema_name = 'main' UNION SELECT view_name FROM duckdb_views() "
                    "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal "
                    "ORDER BY 1"
                ).fetchall()
            ]
            for table in tables:
                if table in NOT_EXPORTED or table == "incident_versions":
                    continue
                if table in PERSON_LEVEL and not include_persons:
                    manifest["tables"][table] = {"left_out": "person-level (pass --include-persons to export it)"}
                    continue
                target = partial / table
                year = YEAR_COLUMN.get(table)
                rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                if table in SEGMENT_TABLES and year and (table, year) in columns:
                    con.execute(
                        f"COPY (SELECT *, coalesce(year({year}), 0) AS year FROM {table}) TO '{target}' "
                        "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year))"
                    )
                else:
                    target.mkdir()
                    con.execute(f"COPY {table} TO '{target / 'data.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
                files = sorted(str(p.relative_to(partial)) for p in target.rglob("*.parquet"))
                manifest["tables"][table] = {"rows": rows, "files": files}
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest
