"""Hot-spot forecasts (issue 11): the figures the closing note reports, on Chicago 2016-2018 and the demo city.

    .venv/bin/python benchmarks/hotspots.py [--warehouse-dir DIR] [--skip-chicago] [--skip-demo] [--skip-cells]

Chicago (the shared files, built as benchmarks/pages.py builds them; reused when DIR holds them):

1. PAI at 1% and 5% of every method, all offences, residential burglary and robbery, count-weighted, all
   hours, 150 m cells: selection window 2017 (methods fitted and chosen there), reported window 2018
   (weekly origins from 2018-01-01 to the data's last complete week, 2018-11-11). The goal: the chosen
   method's PAI at 5% at least 1.05x last year's map (all offences) and 1.10x (burglary, robbery).
   Two references no forecast can reach: the perfect map (each week's own counts) and the average map of
   the reported weeks themselves (the best any map of steady rates could do, known only afterwards).
2. The same for harm-weighted maps (CCHI 2016), all offences: what the Next-week page ranks by.
3. The cell size: the same backtest one year earlier (reported 2017, chosen on 2016) at 100-300 m: PAI of
   last year's map and of the chosen method, and the incidents a flagged cell expects a week. PAI rises as
   cells shrink, so the default is the finest size whose flagged 5% still expect one incident a week.
4. Time: one weekly forecast for all three shifts (harm-weighted, as `ilp forecast hotspots` and `ilp ingest`
   issue it), and a backtest of a 52-week window.

Demo city (default size, and the test suite's smaller one): the planted moving hot spot (demo_truth kind
'moving_hotspot'): the week the chosen method first has the new centre's cell in its top 5% after the
move, and whether last year's map has it then.

Prints figures; asserts nothing. Timings on a shared machine vary with its load; the load average is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's ilp, not an installed one
sys.path.insert(1, str(Path(__file__).resolve().parent))
from ilp.analytics import hotspot_forecast as hf  # noqa: E402
from ilp.warehouse import Warehouse  # noqa: E402
from pages import chicago_warehouse  # noqa: E402  (the same warehouse as the page benchmark)

CATEGORIES = (None, "burglary_residential", "robbery")
GOALS = {None: 1.05, "burglary_residential": 1.10, "robbery": 1.10}
REPORTED = (dt.date(2018, 1, 1), dt.date(2018, 12, 31))
EARLIER = (dt.date(2017, 1, 2), dt.date(2017, 12, 31))


def load() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


def references(con, result: hf.Backtest, category: str | None, measure: str) -> dict[float, tuple[float, float]]:
    """coverage -> (PAI of the perfect map, PAI of the reported weeks' own average map)."""
    first, last = result.reported_window
    data = hf.load_for_weeks(
        con,
        first_week=first,
        last_week=last - dt.timedelta(days=6),
        selection_weeks=0,
        category=category,
        cell_m=result.cell_m,
        include_future=True,
    )
    history = hf.History(data, "all", measure)
    origins = np.arange(data.week_index(first), data.week_index(last - dt.timedelta(days=6)) + 1)
    actual = history.target[origins]
    average = np.repeat(actual.mean(axis=0, keepdims=True), len(origins), axis=0)
    out = {}
    perfect = hf.score_maps(actual, actual, hf.COVERAGES, area_cells=data.n_cells)
    steady = hf.score_maps(average, actual, hf.COVERAGES, area_cells=data.n_cells)
    for coverage in hf.COVERAGES:
        out[coverage] = (float(np.nanmean(perfect[coverage]["pai"])), float(np.nanmean(steady[coverage]["pai"])))
    return out


def pai_table(con, measure: str, categories=CATEGORIES) -> None:
    print(f"\n== Chicago, {measure}-weighted, 150 m, all hours: selection 2017, reported 2018 (weekly origins) ==")
    for category in categories:
        started = time.perf_counter()
        result = hf.backtest(con, start=REPORTED[0], end=REPORTED[1], category=category, measure=measure)
        seconds = time.perf_counter() - started
        rows = result.rows.set_index(["method", "coverage"])
        name = category or "all offences"
        print(
            f"\n{name}: {int(rows['weeks'].max())} weeks {result.reported_window[0]} to {result.reported_window[1]}, "
            f"selection {result.selection_window[0]} to {result.selection_window[1]}, study area "
            f"{result.area_cells:,} cells; backtest {seconds:.1f} s"
        )
        print(f"  {'method':<22}{'PAI 1%':>8}{'PAI 5%':>8}{'PEI* 5%':>9}{'hit 5%':>8}   selection PAI 5%")
        selection = dict(zip(result.selection["method"], result.selection["pai"]))
        for method in hf.METHODS:
            mark = "  <- chosen" if method == result.chosen else ""
            print(
                f"  {method:<22}{rows.loc[(method, 0.01), 'pai']:>8.2f}{rows.loc[(method, 0.05), 'pai']:>8.2f}"
                f"{rows.loc[(method, 0.05), 'pei_star']:>9.2f}{rows.loc[(method, 0.05), 'hit_rate']:>8.3f}"
                f"   {selection[method]:.2f}{mark}"
            )
        refs = references(con, result, category, measure)
        print(f"  {'perfect map (reference)':<22}{refs[0.01][0]:>8.2f}{refs[0.05][0]:>8.2f}")
        print(f"  {'2018 average (reference)':<22}{refs[0.01][1]:>8.2f}{refs[0.05][1]:>8.2f}")
        chosen, naive = rows.loc[(result.chosen, 0.05), "pai"], rows.loc[("naive_last_year", 0.05), "pai"]
        goal = GOALS[category]
        verdict = "goal met" if chosen >= goal * naive else "goal NOT met"
        print(
            f"  chosen {result.chosen}: PAI 5% {chosen:.2f} = {chosen / naive:.3f}x last year's map "
            f"(goal {goal:.2f}x): {verdict}; the 2018 average map itself is {refs[0.05][1] / naive:.3f}x"
        )
        fitted = {
            m: {k: v for k, v in p.items() if k not in ("coefficients", "features")}
            for m, p in result.parameters.items()
        }
        print(f"  fitted: {json.dumps(fitted)}")


def cell_sizes(con) -> None:
    print("\n== Cell size: reported 2017 (chosen on 2016), count-weighted, 5% of the area ==")
    weekly = con.execute(
        "SELECT count(*) / 52.0 FROM incidents WHERE location_status = 'ok' AND occurred_at >= ? AND occurred_at < ?",
        [EARLIER[0], EARLIER[1] + dt.timedelta(days=1)],
    ).fetchone()[0]
    print(
        f"  {'cell m':>6}{'cells A':>9}{'last year PAI':>15}{'chosen':>20}{'chosen PAI':>12}{'per flagged cell a week':>26}"
    )
    for cell_m in hf.CELL_SIZES:
        result = hf.backtest(con, start=EARLIER[0], end=EARLIER[1], cell_m=cell_m)
        rows = result.rows.set_index(["method", "coverage"])
        k = hf.flagged_cells(0.05, result.area_cells)
        hit = rows.loc[(result.chosen, 0.05), "hit_rate"]
        print(
            f"  {cell_m:>6.0f}{result.area_cells:>9,}{rows.loc[('naive_last_year', 0.05), 'pai']:>15.2f}"
            f"{result.chosen:>20}{rows.loc[(result.chosen, 0.05), 'pai']:>12.2f}{hit * weekly / k:>26.2f}"
        )


def timings(con) -> None:
    print(f"\n== Time ({load()}) ==")
    week = hf.next_week(con)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        forecasts = hf.forecast_hotspots(con, week=week)
        times.append(time.perf_counter() - started)
    methods = ", ".join(f"{s} {f.method}" for s, f in forecasts.items())
    print(
        f"  one weekly forecast, all three shifts, harm-weighted (week of {week}): median {np.median(times):.1f} s "
        f"of {', '.join(f'{t:.1f}' for t in times)} ({methods})"
    )
    started = time.perf_counter()
    result = hf.backtest(con, start=dt.date(2017, 11, 13), end=dt.date(2018, 11, 11))
    print(
        f"  backtest of a 52-week window ({result.reported_window[0]} to {result.reported_window[1]}, selection 52 "
        f"weeks before, five methods, 1/5/10%): {time.perf_counter() - started:.1f} s"
    )


def moving_hotspot(directory: Path, label: str) -> None:
    with contextlib.closing(Warehouse(directory).connect()) as con:
        rows = con.execute(
            "SELECT start_date, details FROM demo_truth WHERE kind = 'moving_hotspot' ORDER BY start_date"
        ).fetchall()
        move, details = rows[1][0], json.loads(rows[1][1])
        old = json.loads(rows[0][1])
        grid = hf.grid_of(con)
        new_x, new_y = grid.cell_of([details["centre_lat"]], [details["centre_lon"]])
        old_x, old_y = grid.cell_of([old["centre_lat"]], [old["centre_lon"]])
        new_cell, old_cell = (int(new_x[0]), int(new_y[0])), (int(old_x[0]), int(old_y[0]))
        result = hf.backtest(
            con,
            start=move,
            end=move + dt.timedelta(weeks=8, days=-1),
            category="burglary_residential",
            watch=[new_cell, old_cell],
        )
    watched = result.watched
    k = hf.flagged_cells(0.05, result.area_cells)
    print(
        f"\n== Demo city ({label}): moving burglary hot spot, moved {move} from beat {details['from_beat']} to "
        f"{details['to_beat']}; chosen on {result.selection_window[0]} to {result.selection_window[1]}: "
        f"{result.chosen}; top 5% = {k} cells =="
    )
    table = watched.pivot_table(index=["cell_x", "cell_y", "week"], columns="method", values="rank")
    for cell, name in ((new_cell, "new centre"), (old_cell, "old centre")):
        part = table.loc[cell]
        print(f"  rank of the {name}'s cell {cell} by week (flagged when <= {k}):")
        print("    " + part[[result.chosen, "naive_last_year"]].to_string().replace("\n", "\n    "))
    flags = watched[watched["cell_x"] == new_cell[0]].pivot(index="week", columns="method", values="flagged")
    caught = flags.index[flags[result.chosen]]
    if len(caught):
        first = caught[0]
        naive_then = bool(flags.loc[first, "naive_last_year"])
        naive_first = flags.index[flags["naive_last_year"]]
        print(
            f"  the chosen method flags the new centre from the week of {first} (week {(first - move).days // 7 + 1} "
            f"after the move); last year's map {'also has it then' if naive_then else 'misses it then'}"
            + (f" and first has it in the week of {naive_first[0]}" if len(naive_first) else " and all 8 weeks")
        )
    else:
        print("  the chosen method does not flag the new centre within 8 weeks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse-dir", type=Path, default=None)
    parser.add_argument("--skip-chicago", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-cells", action="store_true", help="skip the cell-size table (the slowest part)")
    args = parser.parse_args()
    folder_context = contextlib.nullcontext(args.warehouse_dir) if args.warehouse_dir else tempfile.TemporaryDirectory()
    with folder_context as folder:
        folder = Path(folder)
        print(load())
        if not args.skip_chicago:
            directory = chicago_warehouse(folder)
            if directory is not None:
                with contextlib.closing(Warehouse(directory).connect()) as con:
                    pai_table(con, "count")
                    pai_table(con, "harm", categories=(None,))
                    if not args.skip_cells:
                        cell_sizes(con)
                    timings(con)
        if not args.skip_demo:
            from ilp.demo import build_demo_warehouse

            for label, size in (
                ("default size, 150,000 a year", {}),
                ("test size, 60,000 a year", {"incidents_per_year": 60_000}),
            ):
                target = folder / ("demo" if not size else "demo-60k")
                if Warehouse(target).current_path() is None:
                    build_demo_warehouse(target, **size)
                moving_hotspot(target, label)


if __name__ == "__main__":
    pd.set_option("display.width", 160)
    main()
