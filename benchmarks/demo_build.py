"""Demo city build: wall time, CPU time, peak memory and disk size of `ilp demo` at given sizes.

    .venv/bin/python benchmarks/demo_build.py                          # 3 y x 150,000 (the default city), 2 y x 500,000
    .venv/bin/python benchmarks/demo_build.py --sizes 10x1000000 --warehouse /work/big/demo10m

Each size is built by `python -m ilp demo` in a child process of its own; its peak memory is that child's
maximum resident set size (os.wait4's rusage), its CPU time user + system. Target (issue 10): peak memory
under 4 GB at any size, the build streaming a chunk of days at a time. Without --warehouse each build goes
to a temporary folder that is deleted afterwards; with it the (single) build is kept there. On a shared
machine wall time grows with its load (printed next to it); CPU time much less. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(directory: Path, years: int, per_year: int, seed: int) -> dict:
    """Build the demo city into ``directory`` in a child process; its figures."""
    command = [sys.executable, "-m", "ilp", "--warehouse", str(directory), "demo", "--json"]
    command += ["--years", str(years), "--incidents-per-year", str(per_year), "--seed", str(seed)]
    env = dict(os.environ, PYTHONPATH=str(REPO))  # this checkout's ilp, whatever the venv has installed
    load = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode:
        raise SystemExit(f"ilp demo failed (exit {child.returncode}) for {years} x {per_year}")
    summary = json.loads(output)
    disk = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    return {
        "size": f"{years} y x {per_year:,}",
        "incidents": summary["rows"]["incidents"],
        "calls": summary["rows"]["calls_for_service"],
        "chunks": summary.get("chunks"),
        "wall_s": round(seconds, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_mib": round(usage.ru_maxrss / 1024),  # Linux: kB
        "disk_mib": round(disk / 2**20),
        "load_before": round(load, 1),
        "load_after": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3x150000,2x500000", help="YEARSxINCIDENTS_PER_YEAR, comma-separated")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warehouse", type=Path, help="keep the build in this (new) folder; one size only")
    parser.add_argument("--json", action="store_true", help="one JSON line per size instead of a table")
    args = parser.parse_args()
    sizes = [tuple(int(part) for part in size.lower().split("x")) for size in args.sizes.split(",")]
    if args.warehouse and len(sizes) != 1:
        parser.error("--warehouse keeps one build: give one size")
    if args.warehouse and args.warehouse.exists() and any(args.warehouse.iterdir()):
        parser.error(f"{args.warehouse} is not empty: the demo city is built into a new folder")
    print(f"ilp demo build; {os.cpu_count()} cores", flush=True)
    header = "size                   incidents      calls chunks   wall s    cpu s  peak MiB  disk MiB  load"
    if not args.json:
        print(header, flush=True)
    for years, per_year in sizes:
        if args.warehouse:
            result = build(args.warehouse, years, per_year, args.seed)
        else:
            with tempfile.TemporaryDirectory(prefix="ilp-demo-bench-") as folder:
                result = build(Path(folder) / "warehouse", years, per_year, args.seed)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(
                f"{result['size']:20s} {result['incidents']:>11,} {result['calls']:>10,} {result['chunks']:>6} "
                f"{result['wall_s']:>8} {result['cpu_s']:>8} {result['peak_mib']:>9} {result['disk_mib']:>9}  "
                f"{result['load_before']}-{result['load_after']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
