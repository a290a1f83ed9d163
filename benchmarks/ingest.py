"""Ingest speed and memory: `ilp ingest --mapping chicago` vs DuckDB's bare CSV load, same files, same run.

    .venv/bin/python benchmarks/ingest.py [--files ../shared/data/chicago/crimes_201*.csv.gz] [--repeat 3]

Each measurement runs in its own subprocess so peak memory (max RSS) is that load's alone. The bare
load is `CREATE TABLE t AS SELECT * FROM read_csv([...])` into a new DuckDB file, closed (so it is
written), which is the least any loader must do. Target: ingest within 3x of the bare load.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILES = sorted(glob.glob(str(REPO.parent / "shared" / "data" / "chicago" / "crimes_201*.csv.gz")))

BARE = textwrap.dedent(
    """
    import json, resource, sys, time, duckdb
    files, target = json.loads(sys.argv[1]), sys.argv[2]
    started = time.perf_counter()
    con = duckdb.connect(target)
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv($files)", {"files": files})
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    con.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)

INGEST = textwrap.dedent(
    """
    import json, resource, sys, time
    from ilp.ingest import ingest
    from ilp.warehouse import Warehouse
    files, target = json.loads(sys.argv[1]), sys.argv[2]
    started = time.perf_counter()
    result = ingest(Warehouse(target), "chicago", files)
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": result.rows_read, "loaded": result.loaded, "rejected": result.rejected,
                      "seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def measure(script: str, files: list[str], target: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", script, json.dumps(files), target], check=True, capture_output=True, text=True, cwd=REPO
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.files:
        sys.exit("No input files: ../shared/data/chicago/crimes_201*.csv.gz not found; pass --files.")
    files = [str(Path(f).resolve()) for f in args.files]
    print(f"Files: {', '.join(Path(f).name for f in files)}")
    bare, ilp = [], []
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch:
            bare.append(measure(BARE, files, str(Path(scratch) / "bare.duckdb")))
            ilp.append(measure(INGEST, files, str(Path(scratch) / "warehouse")))
        print(f"  run {attempt + 1}: bare {bare[-1]['seconds']:.2f} s, ilp ingest {ilp[-1]['seconds']:.2f} s")
    bare_s = statistics.median(r["seconds"] for r in bare)
    ilp_s = statistics.median(r["seconds"] for r in ilp)
    rows = ilp[0]["rows"]
    print()
    print(f"{'loader':<34}{'rows':>10}{'median s':>10}{'rows/s':>12}{'peak MiB':>10}")
    print(
        f"{'DuckDB bare CTAS read_csv':<34}{bare[0]['rows']:>10,}{bare_s:>10.2f}{bare[0]['rows'] / bare_s:>12,.0f}"
        f"{max(r['peak_mib'] for r in bare):>10.0f}"
    )
    print(
        f"{'ilp ingest --mapping chicago':<34}{rows:>10,}{ilp_s:>10.2f}{rows / ilp_s:>12,.0f}"
        f"{max(r['peak_mib'] for r in ilp):>10.0f}"
    )
    print(
        f"\nilp ingest / bare load time: {ilp_s / bare_s:.2f}x (target: within 3x); "
        f"loaded {ilp[0]['loaded']:,}, rejected {ilp[0]['rejected']:,}"
    )


if __name__ == "__main__":
    main()
