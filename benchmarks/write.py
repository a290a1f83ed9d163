"""Small writes into a large warehouse: a 1,000-row ingest's time and the disk its kept snapshots use.

    .venv/bin/python benchmarks/write.py --warehouse-dir DIR [DIR ...] [--rows 1000] [--repeat 4]

For each warehouse DIR (never written: the benchmark works on a copy beside it whose segment files are
hard links, so a 10M-incident warehouse is "copied" in a moment, and deletes the copy afterwards):

- new rows: ``--repeat`` ingests of ``--rows`` new Chicago-format rows (the last rows of
  ../shared/data/chicago/crimes_2018.csv.gz with new ids, dated in the week after the warehouse's last day)
  with the ``chicago`` mapping, each in its own process, timed around ``ilp.ingest.ingest`` until the new
  rows are readable (the load alone: ``ilp ingest`` also scores and issues hot-spot forecasts afterwards,
  measured by benchmarks/hotspots.py); on a warehouse of 1M incidents or more the write then stores the
  analyses the pages open with in a second snapshot, timed apart (``then_analyses_s``);
- updated rows: the first batch again with every description changed, so each row replaces its earlier
  version (the ``superseded`` path);
- disk: the folder's bytes (hard links counted once) after those writes, against the bytes one snapshot
  reads (its catalog file plus its segment files), with the number of snapshots kept.

A demo warehouse refuses real ingests (the two are never mixed), so the copy of a demo warehouse is
relabelled as a real one first (its snapshot_meta ``kind``); the rows it reads and writes are unchanged.
Target (issue 10): under 2 s and independent of the warehouse's size; kept snapshots at most 1.3x one
snapshot's disk. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ilp.warehouse import (  # noqa: E402
    CURRENT_FILE,
    SEGMENTS_DIR,
    Warehouse,
    read_meta_file,
    segment_files,
    write_meta,
)

CHICAGO_2018 = REPO.parent / "shared" / "data" / "chicago" / "crimes_2018.csv.gz"

INGEST = textwrap.dedent(
    """
    import json, resource, sys, time
    from ilp.ingest import ingest
    from ilp.warehouse import Warehouse
    target, file = sys.argv[1], sys.argv[2]
    store, analyses = Warehouse._store_analyses_locked, []
    def timed(self, kind):  # the second snapshot, made after the new rows are readable
        began = time.perf_counter()
        store(self, kind)
        analyses.append(time.perf_counter() - began)
    Warehouse._store_analyses_locked = timed
    started = time.perf_counter()
    result = ingest(Warehouse(target), "chicago", [file])
    seconds = time.perf_counter() - started
    print(json.dumps({"loaded": result.loaded, "updated": result.updated, "rejected": result.rejected,
                      "seconds": seconds - sum(analyses), "analyses_seconds": sum(analyses),
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def working_copy(source: Path, parent: Path) -> Path:
    """The current snapshot of ``source`` in a new folder under ``parent``: catalog copied, segments hard-linked."""
    warehouse = Warehouse(source)
    current = warehouse.require_current()
    copy = Path(tempfile.mkdtemp(prefix="write-bench-", dir=parent))
    shutil.copyfile(current, copy / current.name)
    (copy / SEGMENTS_DIR).mkdir()
    for name in segment_files(current):
        os.link(source / SEGMENTS_DIR / name, copy / SEGMENTS_DIR / name)
    (copy / CURRENT_FILE).write_text(current.name + "\n", encoding="utf-8")
    if read_meta_file(copy / current.name).get("kind") != "real":
        import duckdb

        con = duckdb.connect(str(copy / current.name))
        try:
            write_meta(con, {"kind": "real"})
        finally:
            con.close()
    return copy


def incidents_and_last_day(directory: Path) -> tuple[int, dt.date]:
    from ilp.warehouse import connect_read_only

    con = connect_read_only(Warehouse(directory).require_current())
    try:
        return con.execute("SELECT count(*), max(occurred_at)::DATE FROM incidents").fetchone()
    finally:
        con.close()


def sample_rows(count: int) -> tuple[list[str], list[list[str]]]:
    with gzip.open(CHICAGO_2018, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    return header, rows[-count:]


def write_batch(path: Path, header, rows, *, first_id: int, start: dt.date, description_suffix: str = "") -> None:
    column = {name: i for i, name in enumerate(header)}
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for n, row in enumerate(rows):
            row = list(row)
            row[column["ID"]] = str(first_id + n)
            row[column["Case Number"]] = f"ZZ{first_id + n}"
            when = dt.datetime.combine(start + dt.timedelta(days=n % 7), dt.time(n % 24, (7 * n) % 60))
            row[column["Date"]] = when.strftime("%m/%d/%Y %I:%M:%S %p")
            row[column["Description"]] += description_suffix
            writer.writerow(row)


def ingest_once(directory: Path, file: Path) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", INGEST, str(directory), str(file)], check=True, capture_output=True, text=True, cwd=REPO
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def folder_bytes(directory: Path) -> int:
    seen, total = set(), 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            stat = os.stat(os.path.join(root, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def snapshot_bytes(directory: Path) -> int:
    current = Warehouse(directory).require_current()
    return current.stat().st_size + sum((directory / SEGMENTS_DIR / n).stat().st_size for n in segment_files(current))


def bench(source: Path, rows: int, repeat: int) -> dict:
    header, sample = sample_rows(rows)
    copy = working_copy(source, source.parent)
    try:
        incidents, last = incidents_and_last_day(copy)
        start = last + dt.timedelta(days=1)
        batches = []
        for k in range(repeat):
            file = copy / f"batch{k}.csv"
            write_batch(file, header, sample, first_id=2_000_000_000 + k * rows, start=start + dt.timedelta(days=7 * k))
            batches.append(ingest_once(copy, file))
            file.unlink()
        file = copy / "updated.csv"
        write_batch(file, header, sample, first_id=2_000_000_000, start=start, description_suffix=" (REVISED)")
        updated = ingest_once(copy, file)
        file.unlink()
        one = snapshot_bytes(copy)
        total = folder_bytes(copy)
        kept = len(Warehouse(copy).snapshots())
        return {
            "warehouse": str(source),
            "incidents": incidents,
            "new_rows_seconds": [round(b["seconds"], 2) for b in batches],
            "new_rows_median_s": round(statistics.median(b["seconds"] for b in batches), 2),
            "then_analyses_s": [round(b["analyses_seconds"], 2) for b in batches],
            "loaded_per_batch": batches[0]["loaded"],
            "updated_rows_seconds": round(updated["seconds"], 2),
            "updated": updated["updated"],
            "peak_mib": round(max(b["peak_mib"] for b in [*batches, updated])),
            "snapshots_kept": kept,
            "one_snapshot_mib": round(one / 2**20, 1),
            "folder_mib": round(total / 2**20, 1),
            "disk_ratio": round(total / one, 3),
        }
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse-dir", nargs="+", required=True, type=Path)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    print(
        f"{'warehouse':<40} {'incidents':>11} {'new rows (median s)':>20} {'updated s':>10} {'peak MiB':>9} "
        f"{'kept':>5} {'disk ratio':>11}"
    )
    for directory in args.warehouse_dir:
        result = bench(directory.resolve(), args.rows, args.repeat)
        print(
            f"{directory.name:<40} {result['incidents']:>11,} {result['new_rows_median_s']:>20} "
            f"{result['updated_rows_seconds']:>10} {result['peak_mib']:>9} {result['snapshots_kept']:>5} "
            f"{result['disk_ratio']:>11}"
        )
        print(json.dumps(result))


if __name__ == "__main__":
    main()
