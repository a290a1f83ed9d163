"""What every page does on every warehouse shape, and how long it takes (issue 9's closing note).

    .venv/bin/python benchmarks/shapes.py [--markdown] [--shapes full,many_districts] [--pages brief,trends]
                                          [--cold-runs 3] [--warm-runs 3] [--warehouse-dir DIR]
                                          [--save FILE.json] [--load FILE.json]

Every shape of tests/shapes.py (1, 2, 40 and 200 districts, no area level, no coordinates, month-only
dates, 10 weeks of history, ...) is built with ``shapes.build`` in DIR/<shape>/warehouse (a temporary
folder, deleted afterwards, unless --warehouse-dir is given; a warehouse already there is reused).
Then, in a new Python process per shape, every page is run with Streamlit's AppTest inside
dashboard.py, as a single workstation (``ILP_ROLE``) whose role may see the page: analyst, commander
for taskings (as benchmarks/pages.py does; tests/test_shapes.py runs every allowed role). The first
run of each page only loads Python modules and is not counted; then, per page:

- cold: every Streamlit cache cleared, then the page run (the DuckDB file opened, every query and
  analytic computed); the median of --cold-runs such runs, wall time and CPU time of the process's
  threads (the CPU time is less disturbed by other processes on a shared machine);
- warm: the median of --warm-runs reruns with the same filters after the first cold run (answered
  from st.cache_data).

Prints (1) the matrix shape x page, each cell "works", "degrades: <message>" or "ERROR: <exception>",
and (2) each shape's total and slowest page time, cold and warm, slowest shape (by cold CPU) first. A page
*degrades* when it shows an info, warning or error message that the full shape does not show on that
page, or a caption sentence saying what the data lacks (one with "no", "not", "only", "without", ...)
that the full shape does not show (numbers ignored when comparing); the cell names the first such
message (alerts before captions), shortened, and how many more there are (the plain output lists them).
A page *fails* (ERROR) on an exception, or on the page's own "could not be shown" message (the error
boundary, ilp/ui/error_boundary.py), with the exception it logged. With --markdown the matrix is
printed as a Markdown table. Times are of ``AppTest.run()`` (queries, analytics and Streamlit's script
overhead, without the browser's drawing) on a shared machine: the load average is printed next to
them. --save writes the measurements to a JSON file and --load prints them again (e.g. as Markdown)
without measuring. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import shapes  # noqa: E402  (tests/shapes.py)

from ilp import access  # noqa: E402

PREFERRED_ROLE = {"taskings": "commander"}
MESSAGE_KINDS = ("error", "warning", "info")  # alerts
NOTE_KINDS = ("caption",)  # where pages put small notes, e.g. "No district or beat boundaries are drawn"
# a caption sentence counts when it says what the data lacks (captions also carry figures that vary by shape)
LIMITATION = re.compile(r"\b(no|not|none|only|cannot|without|needs?)\b", re.IGNORECASE)
FAILED = "could not be shown"  # the error boundary's words
SHORT = 80


def role_for(page: access.PageSpec) -> str:
    role = PREFERRED_ROLE.get(page.key, "analyst")
    return role if role in page.roles else sorted(page.roles)[0]


def shorten(text: str, width: int = SHORT) -> str:
    text = " ".join(text.replace("**", "").split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


# ------------------------------------------------------------------------------------------ worker
def messages(at) -> list[tuple[str, str]]:
    """Every error, warning, info and caption the run showed, in the order of the page (main area, then sidebar)."""
    found = []

    def walk(node) -> None:
        if getattr(node, "type", None) in MESSAGE_KINDS + NOTE_KINDS:
            found.append((node.type, str(node.value)))
        children = getattr(node, "children", None) or {}
        for index in sorted(children):
            walk(children[index])

    walk(at.main)
    walk(at.sidebar)
    return found


def run_pages(warehouse: Path, state_dir: Path, keys: list[str], cold_runs: int, warm_runs: int) -> dict:
    """Runs in its own process: every page of ``keys`` on ``warehouse``, one AppTest session per role."""
    import streamlit as st
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest
    from streamlit.testing.v1 import app_test as app_test_module

    from ilp.ui import error_boundary

    class EntryPointHasRun(PagesManager):
        # A server runs page URLs through dashboard.py once any session has run it (tests/pagetest.py).
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    app_test_module.PagesManager = EntryPointHasRun
    config.set_option("server.address", "127.0.0.1")  # a single workstation: ILP_ROLE is honoured here only
    os.chdir(REPO)
    os.environ["ILP_WAREHOUSE"] = str(warehouse)

    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append
    error_boundary.LOGGER.addHandler(handler)

    sessions = {}

    def session(role: str):
        os.environ["ILP_ROLE"] = role
        os.environ["ILP_STATE"] = str(state_dir / f"state-{role}.sqlite")
        if role not in sessions:
            at = sessions[role] = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=900)
            at.run()  # the role's first page
            if at.exception:
                raise RuntimeError(f"dashboard.py as {role}: {at.exception[0].message}")
        return sessions[role]

    def run(at, key: str) -> tuple[float, float]:
        """Wall and CPU seconds (all the process's threads: the script's and DuckDB's) of one run."""
        at.switch_page(str(REPO / "pages" / f"{key}.py"))
        started, cpu = time.perf_counter(), time.process_time()
        at.run()
        return time.perf_counter() - started, time.process_time() - cpu

    def cold(at, key: str) -> tuple[float, float]:
        st.cache_data.clear()
        st.cache_resource.clear()
        return run(at, key)

    pages = [access.PAGE_BY_KEY[key] for key in keys]
    for page in pages:  # load every page's modules once, so no page's cold time pays Python imports
        run(session(role_for(page)), page.key)

    results = {}
    for page in pages:
        role = role_for(page)
        at = session(role)
        logged.clear()
        colds = [cold(at, page.key)]
        shown = messages(at)
        exceptions = [e.message for e in at.exception]
        exceptions += [
            f"{type(r.exc_info[1]).__name__}: {r.exc_info[1]}" for r in logged if r.exc_info and r.exc_info[1]
        ]
        titles = [t.value for t in at.title]
        warms = [run(at, page.key)[0] for _ in range(warm_runs)]
        colds += [cold(at, page.key) for _ in range(cold_runs - 1)]
        results[page.key] = {
            "role": role,
            "cold": statistics.median(wall for wall, _ in colds),
            "cold_cpu": statistics.median(cpu for _, cpu in colds),
            "cold_runs": [wall for wall, _ in colds],
            "warm": statistics.median(warms) if warms else None,
            "warm_runs": warms,
            "messages": shown,
            "exceptions": exceptions,
            "title": titles[0] if titles else "",
        }
    error_boundary.LOGGER.removeHandler(handler)
    return results


def worker(args) -> None:
    with tempfile.TemporaryDirectory(prefix="ilp-bench-shapes-state-") as state_dir:
        try:
            result = run_pages(
                Path(args.warehouse), Path(state_dir), args.pages.split(","), args.cold_runs, args.warm_runs
            )
        except Exception as error:  # noqa: BLE001 - reported by the parent as the shape's error
            result = {"error": f"{type(error).__name__}: {error}"}
    print("RESULT " + json.dumps(result))


def measure(warehouse: Path, keys: list[str], cold_runs: int, warm_runs: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        "--warehouse",
        str(warehouse),
        "--pages",
        ",".join(keys),
        "--cold-runs",
        str(cold_runs),
        "--warm-runs",
        str(warm_runs),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"worker exited {done.returncode}: {tail[0][:200]}"}
    return json.loads(lines[-1][len("RESULT ") :])


# ------------------------------------------------------------------------------------------ reading
def _normal(text: str) -> str:
    """A message with its numbers and dates blanked, to compare it across shapes."""
    return re.sub(r"\d[\d,.]*\d|\d", "#", " ".join(text.split()))


def verdict(result: dict, baseline: set[str]) -> str:
    """'works', 'degrades: <first message the full shape does not show>' or 'ERROR: <exception>'."""
    if "error" in result:
        return "ERROR: " + shorten(result["error"])
    if result["exceptions"]:
        return "ERROR: " + shorten(result["exceptions"][0])
    failed = [
        text for kind, text in result["messages"] if kind == "error" and (FAILED in text or "Access refused" in text)
    ]
    if failed:
        return "ERROR: " + shorten(failed[0])
    new = degraded(result, baseline)
    if not new:
        return "works"
    more = f" (+{len(new) - 1} more)" if len(new) > 1 else ""
    return f"degrades: {shorten(new[0])}{more}"


def units(shown: list) -> list[str]:
    """What is compared across shapes: each alert whole, then each caption sentence that says what the data
    lacks (a caption often joins several notes, only one of which a shape changes), as 'caption: ...'."""
    alerts = [text for kind, text in shown if kind in MESSAGE_KINDS]
    notes = [
        "caption: " + sentence
        for kind, text in shown
        if kind in NOTE_KINDS
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
        if LIMITATION.search(sentence)
    ]
    return alerts + notes


def degraded(result: dict, baseline: set[str]) -> list[str]:
    """The page's alerts, then caption sentences, that the full shape does not show on that page."""
    return [text for text in units(result.get("messages", [])) if _normal(text) not in baseline]


def markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def load_line(when: str) -> str:
    return f"load average {when}: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print the matrix as a Markdown table")
    parser.add_argument("--shapes", help="comma-separated shape names (default: all; 'full' is always run)")
    parser.add_argument("--pages", help="comma-separated page keys (default: all)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold runs whose median is the cold time (default 3)")
    parser.add_argument("--warm-runs", type=int, default=3, help="reruns whose median is the warm time (default 3)")
    parser.add_argument(
        "--warehouse-dir", type=Path, help="build or reuse the shapes here (default: a temporary folder)"
    )
    parser.add_argument("--save", type=Path, help="also write the measurements to this JSON file")
    parser.add_argument("--load", type=Path, help="print from a --save file instead of measuring")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    if args.load:
        saved = json.loads(args.load.read_text(encoding="utf-8"))
        print(f"measured {saved['when']}; {saved['load_before']}; {saved['load_after']}")
        report(saved["results"], saved["keys"], args.markdown)
        return
    keys = args.pages.split(",") if args.pages else [page.key for page in access.PAGES]
    unknown = [k for k in keys if k not in access.PAGE_BY_KEY]
    names = args.shapes.split(",") if args.shapes else list(shapes.SHAPES)
    unknown += [n for n in names if n not in shapes.SHAPES]
    if unknown:
        parser.error(f"unknown page or shape: {', '.join(unknown)}")
    if "full" not in names:
        names.insert(0, "full")  # the baseline a degraded page is compared with

    scratch = None
    folder = args.warehouse_dir
    if folder is None:
        scratch = tempfile.mkdtemp(prefix="ilp-bench-shapes-")
        folder = Path(scratch)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        warehouses = {}
        for name in names:
            target = folder / name / "warehouse"
            if not (target / "CURRENT").exists():
                started = time.perf_counter()
                shapes.build(shapes.SHAPES[name], target)
                print(f"built {name} in {time.perf_counter() - started:.1f} s", flush=True)
            warehouses[name] = target

        load_before = load_line("before timing")
        print(f"\n{load_before}", flush=True)
        results = {}
        for name in names:
            started = time.perf_counter()
            result = measure(warehouses[name], keys, args.cold_runs, args.warm_runs)
            results[name] = result
            took = f"{time.perf_counter() - started:.0f} s"
            print(
                f"  {name:<20} {'ERROR ' + result['error'] if 'error' in result else 'measured'} ({took})", flush=True
            )
        load_after = load_line("after timing")
        print(load_after)
        if args.save:
            saved = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "keys": keys, "results": results}
            saved.update(load_before=load_before, load_after=load_after)
            args.save.write_text(json.dumps(saved, indent=1), encoding="utf-8")
        report(results, keys, args.markdown)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def report(results: dict, keys: list[str], markdown: bool) -> None:
    """Print the matrix and the times; ``results`` maps each shape (the full one included) to its pages."""
    names = list(results)
    print(f"\n{len(names)} shapes (tests/shapes.py), {len(keys)} pages as analyst (commander for taskings):")
    for name in names:
        shape = shapes.SHAPES[name]
        print(f"  {name:<20} {shape.incidents:>6,} incidents  {shape.description}")
    full = results["full"]
    baseline = {
        key: ({_normal(text) for text in units(full[key]["messages"])} if "error" not in full else set())
        for key in keys
    }
    matrix = {
        name: {key: verdict(result if "error" in result else result[key], baseline[key]) for key in keys}
        for name, result in results.items()
    }

    print("\n(1) What each page does on each shape")
    if "error" not in full:
        for key in keys:
            alerts = [text for kind, text in full[key]["messages"] if kind in MESSAGE_KINDS]
            shown = "; ".join(shorten(text, 60) for text in alerts) or "none"
            notes = len(units(full[key]["messages"])) - len(alerts)
            print(f"  baseline, the full shape's {key}: alerts: {shown}; and {notes} caption sentences")
    if markdown:
        print()
        print("| shape | " + " | ".join(keys) + " |")
        print("|---|" + "---|" * len(keys))
        for name in names:
            cells = " | ".join(markdown_cell(matrix[name][key]) for key in keys)
            print(f"| {name} | {cells} |")
    else:
        print(f"\n{'shape':<20}" + "".join(f"{key[:11]:<12}" for key in keys))
        for name in names:
            print(f"{name:<20}" + "".join(f"{matrix[name][key].split(':')[0]:<12}" for key in keys))
        print()
        for name in names:
            for key in keys:
                if matrix[name][key] == "works":
                    continue
                print(f"  {name:<20} {key:<20} {matrix[name][key]}")
                if "error" not in results[name]:
                    for text in degraded(results[name][key], baseline[key])[1:]:
                        print(f"  {'':<20} {'':<20}           {shorten(text)}")

    print(
        "\n(2) Page times per shape, seconds. cold: median of the runs with every cache cleared (wall, and CPU of all"
        "\n    threads, which the machine's load disturbs less); warm: median of the reruns. Sorted by cold CPU,"
        "\n    slowest shape first."
    )
    rows = []
    for name, result in results.items():
        if "error" in result:
            continue
        cold = {key: result[key]["cold"] for key in keys}
        slowest = max(cold, key=cold.get)
        rows.append(
            (
                name,
                sum(cold.values()),
                sum(result[key]["cold_cpu"] for key in keys),
                sum(result[key]["warm"] or 0.0 for key in keys),
                slowest,
                cold[slowest],
                result[slowest]["warm"] or 0.0,
            )
        )
    rows.sort(key=lambda row: row[2], reverse=True)
    print(
        f"{'shape':<20}{'cold total':>11}{'cold CPU':>10}{'warm total':>11}  {'slowest page (cold)':<21}{'cold':>6}{'warm':>6}"
    )
    for name, cold_total, cpu_total, warm_total, slowest, cold, warm in rows:
        print(
            f"{name:<20}{cold_total:>11.2f}{cpu_total:>10.2f}{warm_total:>11.2f}  {slowest:<21}{cold:>6.2f}{warm:>6.2f}"
        )
    for name, *_ in rows[:2]:
        result = results[name]
        print(f"\nslowest shape {name}: page, cold wall / cold CPU / warm s")
        for key in keys:
            page = result[key]
            print(f"  {key:<21}{page['cold']:>6.2f} /{page['cold_cpu']:>5.2f} /{page['warm'] or 0:>5.2f}")


if __name__ == "__main__":
    main()
