"""Per-snapshot summaries (ilp/summaries.py): what they cost a write, and how small they are.

    .venv/bin/python benchmarks/summaries.py --warehouse /work/big/demo10m [--rows 1000] [--repeats 3]

Works on a scratch copy of the warehouse (its catalog copied, its segment files linked, never written):

- rebuild: a write that builds every summary from all incidents (what the first write after an upgrade
  does to a snapshot written before summaries), and the time spent inside ``summaries.refresh``;
- a write adding --rows new incidents (copies of the latest ones under new ids) with the summaries
  refreshed (only the weeks it touched) and, in the same run, the same write with the refresh switched
  off: the difference is what summaries add to a small ingest (issue 10: a 1,000-row ingest into a 10M
  warehouse in under 2 s);
- the cube's rows against the incidents', and the catalog file's size (copied by every write).

Prints figures; asserts nothing. Timings on a shared machine vary with its load (printed beside them).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ilp import summaries  # noqa: E402
from ilp.warehouse import SEGMENTS_DIR, Warehouse, writing_table  # noqa: E402

REFRESH_SECONDS: list[float] = []
_refresh = summaries.refresh


def timed_refresh(*args, **kwargs):
    started = time.perf_counter()
    try:
        return _refresh(*args, **kwargs)
    finally:
        REFRESH_SECONDS.append(time.perf_counter() - started)


def scratch_copy(source: Warehouse, folder: Path) -> Warehouse:
    """The current snapshot's catalog copied into ``folder``, its segment files linked (read, never written)."""
    current = source.require_current()
    shutil.copyfile(current, folder / current.name)
    (folder / SEGMENTS_DIR).mkdir()
    for segment in (source.directory / SEGMENTS_DIR).glob("g*.duckdb"):
        (folder / SEGMENTS_DIR / segment.name).symlink_to(segment.resolve())
    (folder / "CURRENT").write_text(current.name + "\n", encoding="utf-8")
    return Warehouse(folder)


def add_rows(warehouse: Warehouse, kind: str, rows: int, tag: str) -> float:
    """A write of ``rows`` new incidents: the latest ones again under new ids. Seconds, wall."""
    started = time.perf_counter()
    with warehouse.write(kind=kind, note=f"benchmark: {rows} new incidents ({tag})") as con:
        con.execute(
            f"INSERT INTO {writing_table(con, 'incidents')} SELECT * REPLACE (source_id || ? AS source_id) "
            "FROM (SELECT * FROM incidents ORDER BY occurred_at DESC LIMIT ?)",
            [f"-{tag}", rows],
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True, help="an existing warehouse (only read)")
    parser.add_argument("--rows", type=int, default=1000, help="incidents a small write adds (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="small writes of each kind (median; default 3)")
    args = parser.parse_args()

    source = Warehouse(args.warehouse)
    kind = source.kind()
    summaries.refresh = timed_refresh  # the warehouse calls it through the module
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="ilp-bench-summaries-") as scratch:
        warehouse = scratch_copy(source, Path(scratch))
        with contextlib.closing(warehouse.connect()) as con:
            incidents = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
            had = summaries.stored(con)
        print(f"{args.warehouse}: {incidents:,} incidents; summaries stored: {'yes' if had else 'no'}")

        saved_version = summaries.VERSION
        summaries.VERSION = f"{saved_version}-benchmark"  # forces a full rebuild on the next write
        REFRESH_SECONDS.clear()
        started = time.perf_counter()
        with warehouse.write(kind=kind, note="benchmark: rebuild the summaries"):
            pass
        print(
            f"rebuild: write {time.perf_counter() - started:.2f} s, of which summaries.refresh "
            f"{REFRESH_SECONDS[-1]:.2f} s"
        )

        with_refresh, without_refresh, inside = [], [], []
        for number in range(args.repeats):
            REFRESH_SECONDS.clear()
            with_refresh.append(add_rows(warehouse, kind, args.rows, f"s{number}"))
            inside.append(REFRESH_SECONDS[-1])
            summaries.refresh = lambda *a, **k: "switched off"
            try:
                without_refresh.append(add_rows(warehouse, kind, args.rows, f"n{number}"))
            finally:
                summaries.refresh = timed_refresh
        with contextlib.closing(warehouse.connect()) as con:
            done = con.execute("SELECT value FROM snapshot_meta WHERE key = ?", [summaries.REFRESH_KEY]).fetchone()
            cube = con.execute("SELECT count(*) FROM summary.weeks").fetchone()[0]
        summaries.VERSION = saved_version
        catalog = warehouse.require_current().stat().st_size
        print(
            f"write of {args.rows:,} new incidents, median of {args.repeats}: "
            f"{statistics.median(with_refresh):.2f} s with summaries refreshed "
            f"(refresh {statistics.median(inside):.2f} s; last: {done[0] if done else '?'}), "
            f"{statistics.median(without_refresh):.2f} s with the refresh switched off"
        )
        print(f"  with refresh:    {', '.join(f'{t:.2f}' for t in with_refresh)} s")
        print(f"  without refresh: {', '.join(f'{t:.2f}' for t in without_refresh)} s")
        print(
            f"cube: {cube:,} rows for {incidents:,} incidents ({cube / max(incidents, 1):.2f} per incident); "
            f"catalog file {catalog / 1e6:.1f} MB"
        )
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
