"""`ilp export-parquet`: the current snapshot as Parquet files another engine can read, person-level data
left out unless asked for, and an export that fails leaves no half-written folder."""

from __future__ import annotations

import json

import duckdb
import pytest

from ilp.state import State
from ilp.warehouse import Warehouse, connect_read_only


def test_export_matches_the_snapshot_and_leaves_out_persons(demo_warehouse, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("ILP_STATE", str(tmp_path / "state.sqlite"))
    out = tmp_path / "lake"
    code, stdout, _ = run_cli("export-parquet", "--out", out, warehouse=demo_warehouse)
    assert code == 0, stdout
    manifest = json.loads((out / "manifest.json").read_text())
    snapshot = Warehouse(demo_warehouse).require_current()
    assert manifest["snapshot"] == snapshot.stem
    assert "left_out" in manifest["tables"]["incident_persons"] and not (out / "incident_persons").exists()
    assert "segments" not in manifest["tables"] and "superseded" not in manifest["tables"]

    lake = duckdb.connect()
    source = connect_read_only(snapshot)
    # The same rows, read by an engine that knows nothing of the warehouse: hive partitions by year.
    exported = lake.execute(
        f"SELECT count(*), sum(hash(source_id)), min(occurred_at), max(occurred_at), count(DISTINCT year) "
        f"FROM read_parquet('{out}/incidents/*/*.parquet', hive_partitioning = true)"
    ).fetchone()
    original = source.execute(
        "SELECT count(*), sum(hash(source_id)), min(occurred_at), max(occurred_at), "
        "count(DISTINCT year(occurred_at)) FROM incidents"
    ).fetchone()
    assert exported == original and manifest["tables"]["incidents"]["rows"] == original[0]
    assert exported[4] >= 3  # the demo city's years, one partition each
    by_category = lake.execute(
        f"SELECT offense_category, count(*) FROM read_parquet('{out}/incidents/*/*.parquet') GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert (
        by_category
        == source.execute("SELECT offense_category, count(*) FROM incidents GROUP BY 1 ORDER BY 1").fetchall()
    )
    weights = lake.execute(f"SELECT count(*) FROM '{out}/harm_weights/data.parquet'").fetchone()[0]
    assert weights == source.execute("SELECT count(*) FROM harm_weights").fetchone()[0] > 0

    actions = list(State(tmp_path / "state.sqlite").audit_log(limit=5)["action"])
    assert "export_parquet" in actions

    # A second export into the same, now non-empty folder is refused, naming it.
    code, _, stderr = run_cli("export-parquet", "--out", out, warehouse=demo_warehouse)
    assert code == 1 and str(out) in stderr and "not empty" in stderr


def test_persons_only_when_asked(demo_warehouse, tmp_path, monkeypatch):
    from ilp.lake import export_parquet

    manifest = export_parquet(Warehouse(demo_warehouse), tmp_path / "lake", include_persons=True)
    rows = (
        duckdb.connect()
        .execute(f"SELECT count(*) FROM read_parquet('{tmp_path}/lake/incident_persons/**/*.parquet')")
        .fetchone()[0]
    )
    assert rows == manifest["tables"]["incident_persons"]["rows"] > 0


def test_a_failed_export_leaves_nothing(demo_warehouse, tmp_path, monkeypatch):
    from ilp import lake

    def broken(*args, **kwargs):
        raise duckdb.IOException("disk full")

    monkeypatch.setattr(lake, "connect_read_only", broken)
    with pytest.raises(duckdb.IOException):
        lake.export_parquet(Warehouse(demo_warehouse), tmp_path / "lake")
    assert not (tmp_path / "lake").exists() and not (tmp_path / "lake.partial").exists()
