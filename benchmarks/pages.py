"""Page latency: server-side time of each dashboard page, cold and warm, on the demo city and on Chicago.

    .venv/bin/python benchmarks/pages.py [--warehouse-dir DIR] [--skip-chicago] [--pages brief,trends] [--warm-runs 3]
    .venv/bin/python benchmarks/pages.py --warehouse /work/big/demo10m [--warehouse OTHER] [--pages ...]

Warehouses: the demo city at its default size (`ilp.demo.build_demo_warehouse`) and the three Chicago
files (2016-2018) ingested with the `chicago` mapping. They are built in DIR/demo and DIR/chicago (a
temporary folder, deleted afterwards, unless --warehouse-dir is given; an existing warehouse there is
reused). --warehouse times existing warehouses instead (named by their folder) and builds nothing; nothing
here writes to a warehouse (pages open it read-only, app state goes to a temporary file).

How a page is timed: in a new Python process per (warehouse, page), AppTest runs dashboard.py as a role
that may see the page (analyst; commander for taskings, the role that edits them), exactly as the
server does once the entry point has run: the frame (role, filters, banner, footer) plus the page. The
first run registers the navigation; then every Streamlit cache is cleared (query results, metadata,
the DuckDB connection) and the page is run:

- cold: the first run of the page, nothing cached (the DuckDB file is opened, every query runs);
- warm: the median of the next --warm-runs reruns of the same page with the same filters, answered
  from st.cache_data as a second visitor would be.

Python imports made by the registration run (the role's first page) are not counted as cold. The
time is wall time of `AppTest.run()`: all queries and analytics plus Streamlit's script overhead,
without the browser's drawing. Peak RSS is the page process's maximum resident memory over all its
runs (VmHWM). Target: every page under 1 s warm.

Beside each page, in the same run: *bare*, the time of one bare DuckDB aggregate over the incident columns
the page's queries read (``BARE_AGGREGATES``: a GROUP BY over every incident of the warehouse, on a
read-only connection already warm, the median of three), and the ratio warm / bare. Issue 10's target:
every page's warm time no more than 3x its bare aggregate. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ilp import access  # noqa: E402

CHICAGO_FILES = sorted(glob.glob(str(REPO.parent / "shared" / "data" / "chicago" / "crimes_201*.csv.gz")))
PREFERRED_ROLE = {"taskings": "commander"}

# The incident columns each page's queries read, aggregated bare over the whole incidents table: what
# DuckDB alone takes to answer the page's question from raw rows (the yardstick for its warm time).
_WEEK, _MONTH = "date_trunc('week', occurred_at)", "date_trunc('month', occurred_at)"
_CELL = "floor(latitude / 0.002), floor(longitude / 0.002)"
BARE_AGGREGATES = {
    "brief": f"SELECT {_WEEK}, district, beat, offense_category, count(*) FROM incidents GROUP BY ALL",
    "trends": f"SELECT {_WEEK}, {_MONTH}, district, offense_category, count(*) FROM incidents GROUP BY ALL",
    "deployment": f"SELECT {_CELL}, hour(occurred_at), district, beat, offense_category, count(*) "
    "FROM incidents GROUP BY ALL",
    "deployment_forecast": f"SELECT {_CELL}, {_WEEK}, hour(occurred_at), count(*) FROM incidents GROUP BY ALL",
    "forecast_scoreboard": f"SELECT {_CELL}, {_WEEK}, hour(occurred_at), count(*) FROM incidents GROUP BY ALL",
    "taskings": f"SELECT {_WEEK}, district, beat, offense_category, count(*) FROM incidents GROUP BY ALL",
    "outcomes": f"SELECT {_MONTH}, district, offense_category, clearance_status, arrest, count(*) "
    "FROM incidents GROUP BY ALL",
    "workbench": "SELECT offense_category, count(*) FROM incidents GROUP BY ALL",
    "governance": f"SELECT source, location_status, {_MONTH}, count(*) FROM incidents GROUP BY ALL",
}


def bare_aggregate(warehouse: Path, key: str) -> float | None:
    """Median seconds of three runs of the page's bare aggregate (after one unmeasured run)."""
    from ilp.warehouse import Warehouse

    sql = BARE_AGGREGATES.get(key)
    if sql is None:
        return None
    con = Warehouse(warehouse).connect()
    try:
        con.execute(sql).fetchall()
        times = []
        for _ in range(3):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - started)
    finally:
        con.close()
    return statistics.median(times)


def role_for(page: access.PageSpec) -> str:
    role = PREFERRED_ROLE.get(page.key, "analyst")
    return role if role in page.roles else sorted(page.roles)[0]


# ------------------------------------------------------------------------------------------ worker
def time_page(key: str, role: str, warm_runs: int) -> dict:
    """Runs in its own process, with ILP_WAREHOUSE and ILP_STATE set by the parent."""
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest
    from streamlit.testing.v1 import app_test as app_test_module

    class EntryPointHasRun(PagesManager):
        # A server runs page URLs through dashboard.py once any session has run it; AppTest starts
        # every run as a fresh server would (page files run bare). See tests/test_page_access.py.
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    app_test_module.PagesManager = EntryPointHasRun

    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=900)
    at.query_params["role"] = role  # demo city; a real warehouse takes ILP_ROLE
    started = time.perf_counter()
    at.run()
    registration = time.perf_counter() - started
    if at.exception:
        return {"error": "dashboard.py: " + at.exception[0].message}

    st.cache_data.clear()
    st.cache_resource.clear()
    at.switch_page(str(REPO / "pages" / f"{key}.py"))
    times = []
    for _ in range(1 + warm_runs):
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
        if at.exception:
            return {"error": f"{key}: {at.exception[0].message}"}
        refused = [e.value for e in at.error if e.value.startswith("Access refused")]
        if refused:
            return {"error": f"{key}: {refused[0][:80]}"}
    drawn = {name: len(at.get(name)) for name in ("dataframe", "plotly_chart", "deck_gl_json_chart", "metric")}
    return {
        "cold": times[0],
        "warm": statistics.median(times[1:]),
        "warm_runs": times[1:],
        "registration": registration,
        "drawn": drawn,
        "peak_rss_mib": peak_rss_mib(),
    }


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux carries that across
    execve, so a page process started by this benchmark reported the benchmark's own peak (its bare aggregates)
    whenever that was higher than the page's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def worker(args) -> None:
    result = time_page(args.page, args.role, args.warm_runs)
    print("RESULT " + json.dumps(result))


def measure(warehouse: Path, state: Path, page: access.PageSpec, warm_runs: int) -> dict:
    role = role_for(page)
    env = {**os.environ, "ILP_WAREHOUSE": str(warehouse), "ILP_STATE": str(state), "ILP_ROLE": role}
    command = [sys.executable, __file__, "--worker", "--page", page.key, "--role", role, "--warm-runs", str(warm_runs)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"role": role, "error": f"worker exited {done.returncode}: {tail[0][:120]}"}
    return {"role": role, **json.loads(lines[-1][len("RESULT ") :])}


# ------------------------------------------------------------------------------------------ warehouses
def demo_warehouse(folder: Path) -> Path:
    from ilp.demo import build_demo_warehouse
    from ilp.warehouse import Warehouse

    target = folder / "demo"
    if Warehouse(target).current_path() is not None:
        print(f"demo city: reusing {target}")
        return target
    started = time.perf_counter()
    summary = build_demo_warehouse(target)
    print(
        f"demo city: built {summary['rows']['incidents']:,} incidents in {time.perf_counter() - started:.1f} s -> {target}"
    )
    return target


def chicago_warehouse(folder: Path) -> Path | None:
    from ilp.ingest import ingest
    from ilp.warehouse import Warehouse

    target = folder / "chicago"
    if Warehouse(target).current_path() is not None:
        print(f"chicago: reusing {target}")
        return target
    if not CHICAGO_FILES:
        print("chicago: skipped, ../shared/data/chicago/crimes_201*.csv.gz not found")
        return None
    started = time.perf_counter()
    result = ingest(Warehouse(target), "chicago", CHICAGO_FILES)
    print(
        f"chicago: ingested {result.loaded:,} incidents from {len(CHICAGO_FILES)} files "
        f"in {time.perf_counter() - started:.1f} s -> {target}"
    )
    return target


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--warehouse-dir", type=Path, help="build or reuse warehouses here (default: a temporary folder)"
    )
    parser.add_argument(
        "--warehouse",
        type=Path,
        action="append",
        help="time this existing warehouse (read-only; repeatable); builds nothing",
    )
    parser.add_argument("--skip-chicago", action="store_true", help="time the demo city only")
    parser.add_argument("--pages", help="comma-separated page keys (default: all)")
    parser.add_argument("--warm-runs", type=int, default=3, help="reruns whose median is the warm time (default 3)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--page", help=argparse.SUPPRESS)
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    pages = [access.PAGE_BY_KEY[k] for k in args.pages.split(",")] if args.pages else list(access.PAGES)
    scratch = None
    folder = args.warehouse_dir
    if folder is None:
        scratch = tempfile.mkdtemp(prefix="ilp-bench-pages-")
        folder = Path(scratch)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if args.warehouse:
            warehouses = {path.name: path for path in args.warehouse}
            for path in warehouses.values():
                print(f"{path.name}: {path} (existing, read-only)")
        else:
            warehouses = {"demo": demo_warehouse(folder)}
        if not args.skip_chicago and not args.warehouse:
            chicago = chicago_warehouse(folder)
            if chicago is not None:
                warehouses["chicago"] = chicago

        print(f"\nload average before timing: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        rows = []
        for name, warehouse in warehouses.items():
            for page in pages:
                with tempfile.TemporaryDirectory() as state_dir:
                    result = measure(warehouse, Path(state_dir) / "state.sqlite", page, args.warm_runs)
                result["bare"] = bare_aggregate(warehouse, page.key)
                rows.append((page.key, name, result))
                if "error" in result:
                    print(f"  {name:<8} {page.key:<11} ERROR {result['error']}", flush=True)
                else:
                    print(
                        f"  {name:<8} {page.key:<11} cold {result['cold']:6.2f} s  warm {result['warm']:6.2f} s  "
                        f"bare {_seconds(result['bare'])}  peak RSS {result['peak_rss_mib']:,.0f} MiB  "
                        f"(reruns {', '.join(f'{t:.2f}' for t in result['warm_runs'])}; drew "
                        f"{', '.join(f'{n} {k}' for k, n in result['drawn'].items() if n) or 'no data element'})",
                        flush=True,
                    )

        print()
        print(
            f"{'page':<20}{'warehouse':<14}{'role':<12}{'cold s':>8}{'warm s':>8}{'bare s':>8}{'warm/bare':>11}"
            f"{'RSS MiB':>9}  warm < 1 s  warm <= 3x bare"
        )
        for name in warehouses:
            cold_total = warm_total = 0.0
            for key, warehouse, result in (r for r in rows if r[1] == name):
                if "error" in result:
                    print(f"{key:<20}{warehouse:<14}{result['role']:<12}{'error':>8}{'':>8}  {result['error']}")
                    continue
                cold_total += result["cold"]
                warm_total += result["warm"]
                bare = result.get("bare")
                ratio = result["warm"] / bare if bare else None
                print(
                    f"{key:<20}{warehouse:<14}{result['role']:<12}{result['cold']:>8.2f}{result['warm']:>8.2f}"
                    f"{_seconds(bare):>8}{'' if ratio is None else f'{ratio:.1f}x':>11}"
                    f"{result['peak_rss_mib']:>9,.0f}  "
                    f"{'yes' if result['warm'] < 1 else 'NO':<11}"
                    f"{'' if ratio is None else ('yes' if ratio <= 3 else 'NO')}"
                )
            print(f"{'total':<20}{name:<14}{'':<12}{cold_total:>8.2f}{warm_total:>8.2f}")
        print(f"\nload average after timing: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
