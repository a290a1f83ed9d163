"""Warehouse snapshots: readers keep their snapshot while an ingest completes, a failed ingest changes
nothing, old snapshots are pruned to three, demo and real data never mix, re-ingest is a no-op and a
reclassification is an update that keeps the earlier version in incident_history."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from ilp import ingest as ingest_module
from ilp.ingest import IngestError, ingest
from ilp.warehouse import KEEP_SNAPSHOTS, SNAPSHOT_PATTERN, Warehouse, WarehouseError, connect_read_only, segment_files

BAD_INPUT = Path(__file__).resolve().parent / "bad_input"
MAPPING = BAD_INPUT / "mapping.toml"
GOOD = BAD_INPUT / "good.csv"


def count(con, sql: str = "SELECT count(*) FROM incidents") -> int:
    return con.execute(sql).fetchone()[0]


def write_rows(path: Path, *rows: str) -> Path:
    header = GOOD.read_text(encoding="utf-8").splitlines()[0]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def more_rows(tmp_path: Path, first_id: int, n: int, name: str | None = None) -> Path:
    rows = [
        f"{first_id + i},02/0{1 + i % 9}/2017 10:00:00 AM,00{i % 10}XX W LAKE ST,0820,THEFT,false,41.8850,-87.6300"
        for i in range(n)
    ]
    return write_rows(tmp_path / (name or f"more_{first_id}.csv"), *rows)


# ------------------------------------------------------------------------------------------ readers
def test_reader_keeps_its_snapshot_while_an_ingest_completes(real_warehouse, tmp_path):
    ingest(real_warehouse, MAPPING, [GOOD])
    old_path = real_warehouse.current_path()
    reader = connect_read_only(old_path)
    try:
        assert count(reader) == 3
        result = ingest(real_warehouse, MAPPING, [more_rows(tmp_path, 2000, 2)])
        assert result.loaded == 2
        new_path = real_warehouse.current_path()
        assert new_path != old_path and new_path.stem == result.snapshot
        # the old connection still answers, with the old counts
        assert count(reader) == 3
        assert count(reader, "SELECT count(*) FROM ingest_log") == 1
        with contextlib.closing(real_warehouse.connect()) as fresh:
            assert count(fresh) == 5
            assert count(fresh, "SELECT count(*) FROM ingest_log") == 2
    finally:
        reader.close()


def test_reader_survives_its_snapshot_being_pruned(real_warehouse, tmp_path):
    ingest(real_warehouse, MAPPING, [GOOD])
    old_path = real_warehouse.current_path()
    with contextlib.closing(connect_read_only(old_path)) as reader:
        for i in range(KEEP_SNAPSHOTS + 1):
            ingest(real_warehouse, MAPPING, [more_rows(tmp_path, 3000 + 10 * i, 1)])
        assert not old_path.exists()  # pruned
        assert count(reader) == 3  # POSIX keeps the data until the reader closes
    with contextlib.closing(real_warehouse.connect()) as con:
        assert count(con) == 3 + KEEP_SNAPSHOTS + 1


# ------------------------------------------------------------------------------------------ failures change nothing
def test_failed_ingest_missing_column_leaves_current_identical(real_warehouse, folder_state):
    ingest(real_warehouse, MAPPING, [GOOD])
    before = folder_state(real_warehouse.directory)
    with pytest.raises(IngestError, match=r"missing_column\.csv: missing required column 'IUCR'"):
        ingest(real_warehouse, MAPPING, [BAD_INPUT / "missing_column.csv"])
    assert folder_state(real_warehouse.directory) == before


@pytest.mark.parametrize("exception", [RuntimeError("injected failure mid-merge"), KeyboardInterrupt()])
def test_exception_mid_merge_leaves_current_identical(real_warehouse, folder_state, monkeypatch, tmp_path, exception):
    ingest(real_warehouse, MAPPING, [GOOD])
    before = folder_state(real_warehouse.directory)
    real_merge = ingest_module._merge
    calls = []

    def merge_then_fail(con, *args, **kwargs):
        counts = real_merge(con, *args, **kwargs)  # the rows are in the new snapshot's tables by now
        calls.append(counts)
        assert count(con) == 5
        raise exception

    monkeypatch.setattr(ingest_module, "_merge", merge_then_fail)
    changed = write_rows(
        tmp_path / "changed.csv",
        "1002,01/02/2017 01:30:00 PM,002XX W MADISON ST,0460,BATTERY,true,41.8819,-87.6340",
        "2001,01/05/2017 10:00:00 AM,001XX W LAKE ST,0820,THEFT,false,41.8850,-87.6300",
        "2002,01/06/2017 10:00:00 AM,002XX W LAKE ST,0820,THEFT,false,41.8850,-87.6300",
    )
    with pytest.raises(type(exception)):
        ingest(real_warehouse, MAPPING, [changed])
    assert calls == [{"loaded": 2, "updated": 1, "unchanged": 0}]
    assert folder_state(real_warehouse.directory) == before
    with contextlib.closing(real_warehouse.connect()) as con:
        assert count(con) == 3
        assert count(con, "SELECT count(*) FROM incident_history") == 0
        assert con.execute("SELECT offense_code FROM incidents WHERE source_id = '1002'").fetchone()[0] == "0820"

    # the next ingest works as if the failed one never ran
    monkeypatch.setattr(ingest_module, "_merge", real_merge)
    result = ingest(real_warehouse, MAPPING, [changed])
    assert (result.loaded, result.updated, result.unchanged, result.rejected) == (2, 1, 0, 0)
    assert result.ingest_id == 2


def test_cli_reports_a_failure_mid_merge_in_one_line(real_warehouse, run_cli, folder_state, monkeypatch):
    def fail(*_args, **_kwargs):
        raise OSError("disk on fire")  # what a failing disk raises (the CLI reports user and I/O errors in one line)

    monkeypatch.setattr(ingest_module, "_merge", fail)
    before = folder_state(real_warehouse.directory)
    code, out, err = run_cli("ingest", "--mapping", MAPPING, GOOD, warehouse=real_warehouse)
    assert code == 1 and out == ""
    assert err.strip() == "ilp ingest: error: disk on fire"
    assert folder_state(real_warehouse.directory) == before


def test_interrupted_ingest_exits_130_and_changes_nothing(real_warehouse, run_cli, folder_state, monkeypatch):
    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_module, "_merge", interrupt)
    before = folder_state(real_warehouse.directory)
    code, _, err = run_cli("ingest", "--mapping", MAPPING, GOOD, warehouse=real_warehouse)
    assert code == 130
    assert "current snapshot is unchanged" in err
    assert folder_state(real_warehouse.directory) == before


# ------------------------------------------------------------------------------------------ pruning
def test_old_snapshots_are_pruned_to_three(real_warehouse, tmp_path):
    results = [ingest(real_warehouse, MAPPING, [more_rows(tmp_path, 4000 + 10 * i, 1)]) for i in range(5)]
    files = sorted(p.name for p in real_warehouse.directory.iterdir())
    snapshots = [name for name in files if SNAPSHOT_PATTERN.match(name)]
    assert len(snapshots) == KEEP_SNAPSHOTS == 3
    assert snapshots == [f"{r.snapshot}.duckdb" for r in results[-3:]]
    # no .partial, .wal or pointer temp files left; the writers' lock file stays (it is empty); the segments
    # folder holds exactly the segments the kept snapshots read
    assert files == sorted([*snapshots, "CURRENT", ".write.lock", "segments"])
    used = set()
    for name in snapshots:
        used |= set(segment_files(real_warehouse.directory / name))
    assert sorted(p.name for p in (real_warehouse.directory / "segments").iterdir()) == sorted(used)
    assert (real_warehouse.directory / "CURRENT").read_text() == f"{results[-1].snapshot}.duckdb\n"
    with contextlib.closing(real_warehouse.connect()) as con:
        assert count(con, "SELECT count(*) FROM ingest_log") == 5  # history travels with the snapshots
        assert count(con) == 5
        log = con.execute("SELECT ingest_id, snapshot FROM ingest_log ORDER BY ingest_id").fetchall()
    assert [snapshot for _, snapshot in log] == [r.snapshot for r in results]


# ------------------------------------------------------------------------------------------ demo and real never mix
@pytest.fixture
def demo_warehouse_dir(tmp_path) -> Warehouse:
    warehouse = Warehouse(tmp_path / "demo")
    with warehouse.write(kind="demo", fresh=True):
        pass
    return warehouse


def test_real_exports_are_refused_in_a_demo_warehouse(demo_warehouse_dir, run_cli, folder_state):
    before = folder_state(demo_warehouse_dir.directory)
    code, out, err = run_cli("ingest", "--mapping", MAPPING, GOOD, warehouse=demo_warehouse_dir)
    assert code == 1 and out == ""
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "synthetic demo city" in err
    assert "--warehouse" in err  # says how to use another warehouse
    assert folder_state(demo_warehouse_dir.directory) == before
    assert demo_warehouse_dir.kind() == "demo"
    with pytest.raises(WarehouseError, match="never mixed"):
        ingest(demo_warehouse_dir, MAPPING, [GOOD])


def test_demo_data_is_refused_in_a_real_warehouse(real_warehouse, folder_state):
    before = folder_state(real_warehouse.directory)
    with pytest.raises(WarehouseError, match="holds real data"):
        with real_warehouse.write(kind="demo"):
            raise AssertionError("the block must not run")
    assert folder_state(real_warehouse.directory) == before


# ------------------------------------------------------------------------------------------ re-ingest and updates
def test_reingesting_the_same_file_changes_nothing(real_warehouse):
    first = ingest(real_warehouse, MAPPING, [GOOD])
    with contextlib.closing(real_warehouse.connect()) as con:
        rows_before = con.execute("SELECT * EXCLUDE (last_ingest_id) FROM incidents ORDER BY source_id").fetchall()
    again = ingest(real_warehouse, MAPPING, [GOOD])
    assert (first.loaded, first.unchanged) == (3, 0)
    assert (again.rows_read, again.loaded, again.updated, again.unchanged, again.rejected) == (3, 0, 0, 3, 0)
    with contextlib.closing(real_warehouse.connect()) as con:
        assert (
            con.execute("SELECT * EXCLUDE (last_ingest_id) FROM incidents ORDER BY source_id").fetchall() == rows_before
        )
        assert count(con, "SELECT count(*) FROM incident_history") == 0


def test_reclassification_updates_and_keeps_history(real_warehouse, tmp_path):
    ingest(real_warehouse, MAPPING, [GOOD])
    lines = GOOD.read_text(encoding="utf-8").splitlines()
    assert lines[2].startswith("1002,") and ",0820,THEFT," in lines[2]
    reclassified = tmp_path / "good_reclassified.csv"
    lines[2] = lines[2].replace(",0820,THEFT,", ",0460,BATTERY,")
    reclassified.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = ingest(real_warehouse, MAPPING, [reclassified])
    assert (result.rows_read, result.loaded, result.updated, result.unchanged, result.rejected) == (3, 0, 1, 2, 0)
    with contextlib.closing(real_warehouse.connect()) as con:
        current = con.execute(
            "SELECT offense_code, offense_description, offense_category, first_ingest_id, last_ingest_id "
            "FROM incidents WHERE source_id = '1002'"
        ).fetchone()
        history = con.execute(
            "SELECT source, source_id, superseded_by_ingest, offense_code, offense_description, offense_category, "
            "previous_row FROM incident_history"
        ).fetchall()
    assert current == ("0460", "BATTERY", "violence_without_injury", 1, 2)
    assert len(history) == 1
    source, source_id, superseded_by, code, description, category, previous = history[0]
    assert (source, source_id, superseded_by, code, description, category) == (
        "bad_input",
        "1002",
        2,
        "0820",
        "THEFT",
        "theft_other",
    )
    assert json.loads(previous)["offense_code"] == "0820"

    # the same reclassified export again: nothing more changes
    again = ingest(real_warehouse, MAPPING, [reclassified])
    assert (again.updated, again.unchanged) == (0, 3)
    with contextlib.closing(real_warehouse.connect()) as con:
        assert count(con, "SELECT count(*) FROM incident_history") == 1


def test_concurrent_writers_are_serialised(tmp_path):
    """Two writes at once: the second waits for the first and builds on its snapshot; neither is lost."""
    import threading

    from ilp.warehouse import Warehouse

    warehouse = Warehouse(tmp_path / "wh")
    with warehouse.write(kind="real", fresh=True) as con:
        con.execute("INSERT INTO snapshot_meta VALUES ('marker', '0')")
    first_inside, release = threading.Event(), threading.Event()

    def slow_writer():
        with Warehouse(tmp_path / "wh").write(kind="real") as con:
            con.execute("INSERT INTO harm_indices VALUES ('a', '1', 'A', 'u', 'p', false)")
            first_inside.set()
            release.wait(10)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert first_inside.wait(10)
    second_done = threading.Event()

    def second_writer():
        with Warehouse(tmp_path / "wh").write(kind="real") as con:
            con.execute("INSERT INTO harm_indices VALUES ('b', '1', 'B', 'u', 'p', false)")
        second_done.set()

    other = threading.Thread(target=second_writer)
    other.start()
    assert not second_done.wait(1.0), "the second writer must wait for the first"
    release.set()
    thread.join(10)
    other.join(10)
    import contextlib

    with contextlib.closing(warehouse.connect()) as con:
        names = {row[0] for row in con.execute("SELECT index_name FROM harm_indices").fetchall()}
    assert {"a", "b"} <= names
