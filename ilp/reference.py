"""Shipped reference data: offence categories, source taxonomies and harm weight tables.

All of it is data under ``data/`` (CSV with provenance columns), loaded into every new warehouse, so an
agency changes a weight or a code mapping by editing a file, not code.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pandas as pd

from ilp import paths
from ilp.errors import UserError


class ReferenceDataError(UserError):
    pass


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple], columns: int) -> None:
    """Insert rows in one statement (DuckDB's executemany runs one INSERT per row: slow for code lists)."""
    if rows:
        frame = pd.DataFrame(rows, columns=[f"c{i}" for i in range(columns)], dtype=object)
        con.register("reference_rows", frame)
        try:
            con.execute(f"INSERT INTO {table} SELECT * FROM reference_rows")
        finally:
            con.unregister("reference_rows")


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if any(value.strip() for value in row.values())]


def _bool(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes", "y")


def load_all(con: duckdb.DuckDBPyConnection) -> None:
    load_categories(con)
    for path in sorted(paths.TAXONOMY_DIR.glob("*.csv")):
        load_taxonomy(con, path.stem, path)
    load_harm_indices(con)


def load_categories(con: duckdb.DuckDBPyConnection) -> None:
    rows = read_csv_rows(paths.DATA_DIR / "offence_categories.csv")
    con.execute("DELETE FROM offence_categories")
    _insert(
        con,
        "offence_categories",
        [
            (
                r["category"],
                r["label"],
                r["crime_group"],
                _bool(r["violent"]),
                _bool(r["property"]),
                _bool(r["proactive"]),
                _bool(r["sensitive"]),
                r["description"],
            )
            for r in rows
        ],
        8,
    )


def known_categories(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SELECT category FROM offence_categories").fetchall()}


def taxonomy_rows(con: duckdb.DuckDBPyConnection, path: Path) -> list[dict[str, str]]:
    """A taxonomy file's rows, each checked to name a known category (the error names file, line and field)."""
    try:
        rows = read_csv_rows(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ReferenceDataError(f"{path}: cannot be read as a UTF-8 CSV taxonomy ({error}).") from None
    missing = {"offense_code", "category"} - set(rows[0] if rows else {"offense_code": "", "category": ""})
    if missing:
        raise ReferenceDataError(
            f"{path}: a taxonomy needs the columns offense_code, offense_description, category, provenance; "
            f"missing {', '.join(sorted(missing))}."
        )
    categories = known_categories(con)
    for number, row in enumerate(rows, start=2):
        if row["category"] not in categories:
            raise ReferenceDataError(
                f"{path}, line {number}, field category: {row['category']!r} is not a category in "
                f"data/offence_categories.csv"
            )
    return rows


def load_taxonomy(con: duckdb.DuckDBPyConnection, source: str, path: Path) -> int:
    rows = taxonomy_rows(con, path)
    con.execute("DELETE FROM offence_taxonomy WHERE source = ?", [source])
    if not rows:
        return 0
    _insert(
        con,
        "offence_taxonomy",
        [
            (source, r["offense_code"].strip(), r.get("offense_description"), r["category"], r.get("provenance"))
            for r in rows
        ],
        5,
    )
    return len(rows)


def load_harm_indices(con: duckdb.DuckDBPyConnection) -> None:
    for index in read_csv_rows(paths.HARM_DIR / "indices.csv"):
        load_harm_table(
            con,
            name=index["index_name"],
            version=index["version"],
            title=index["title"],
            unit=index["unit"],
            provenance=index["provenance"],
            path=paths.HARM_DIR / index["file"],
            is_default=_bool(index["is_default"]),
        )


def load_harm_table(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str,
    version: str,
    title: str,
    unit: str,
    provenance: str,
    path: Path,
    is_default: bool = False,
) -> int:
    """Add (or replace) one harm index version. Every category must get a weight (0 is allowed)."""
    rows = read_csv_rows(path)
    categories = known_categories(con)
    seen = set()
    for number, row in enumerate(rows, start=2):
        if row["category"] not in categories:
            raise ReferenceDataError(f"{path}, line {number}, field category: unknown category {row['category']!r}")
        try:
            weight = float(row["weight"])
        except ValueError:
            raise ReferenceDataError(
                f"{path}, line {number}, field weight: {row['weight']!r} is not a number"
            ) from None
        if weight < 0:
            raise ReferenceDataError(f"{path}, line {number}, field weight: weights cannot be negative")
        seen.add(row["category"])
    missing = sorted(categories - seen - {"unmapped"})
    if missing:
        raise ReferenceDataError(f"{path}: no weight for categories {', '.join(missing)}")
    if is_default:
        con.execute("UPDATE harm_indices SET is_default = false")
    con.execute("DELETE FROM harm_weights WHERE index_name = ? AND version = ?", [name, version])
    con.execute("DELETE FROM harm_indices WHERE index_name = ? AND version = ?", [name, version])
    con.execute(
        "INSERT INTO harm_indices VALUES (?, ?, ?, ?, ?, ?)", [name, version, title, unit, provenance, is_default]
    )
    _insert(
        con,
        "harm_weights",
        [(name, version, r["category"], float(r["weight"]), r.get("provenance")) for r in rows]
        + (
            [(name, version, "unmapped", 0.0, "unmapped codes carry no weight until mapped")]
            if "unmapped" not in seen
            else []
        ),
        5,
    )
    return len(rows)
