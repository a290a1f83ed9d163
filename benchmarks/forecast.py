"""Forecast accuracy: how often the Trends page's 80% and 95% intervals hold what happened, and its error
against two naive forecasts, on the demo city and on Chicago 2016-2018.

    .venv/bin/python benchmarks/forecast.py [--warehouse-dir DIR] [--skip-chicago] [--weeks 26]

For each warehouse, the weekly series the Trends page forecasts (queries/trends_weekly.sql): citywide and
each district, incidents and harm (the snapshot's default index), all offence categories. Each series is
backtested exactly as the page does (ilp.analytics.forecast.backtest): each of its last --weeks weeks is
forecast 8 weeks ahead by the model refitted on the data before it. Printed per warehouse and measure:
series, backtest weeks pooled, the share inside the 80% and 95% intervals (well calibrated: about 80% and
95%), and the mean absolute error of the model, of 'same week last year' and of 'mean of the last 4
weeks'. Warehouses are built as benchmarks/pages.py builds them (reused when DIR already holds them).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ilp.analytics import forecast  # noqa: E402
from ilp.snapshot import SnapshotInfo  # noqa: E402
from ilp.warehouse import Warehouse, run_query  # noqa: E402
from pages import chicago_warehouse, demo_warehouse  # noqa: E402  (the same warehouses as the page benchmark)

HISTORY_WEEKS = 260  # all of it: the page fits on up to this many weeks


def series_of(con) -> list[tuple[str, str, pd.Series]]:
    """(area, measure, weekly series) for the city and each district, incidents and harm."""
    info = SnapshotInfo.read(con)
    week = info.default_week()
    districts = [
        None,
        *con.execute("SELECT DISTINCT district FROM incidents WHERE district IS NOT NULL ORDER BY 1").fetchnumpy()[
            "district"
        ],
    ]
    out = []
    for district in districts:
        weekly = run_query(
            con,
            "trends_weekly",
            {
                "week": week,
                "history_start": week - dt.timedelta(weeks=HISTORY_WEEKS - 1),
                "district": district,
                "category": None,
                "harm_index": info.default_harm.name,
                "harm_version": info.default_harm.version,
            },
        )
        index = pd.to_datetime(weekly["week"])
        out.append((district or "citywide", "count", pd.Series(weekly["incidents"].to_numpy(float), index=index)))
        out.append((district or "citywide", "harm", pd.Series(weekly["harm"].to_numpy(float), index=index)))
    return out


def mean_absolute_error(pooled: pd.DataFrame, column: str) -> float:
    return float(np.nanmean(np.abs(pooled[column] - pooled["actual"])))


def score(name: str, warehouse: Path, weeks: int) -> list[dict]:
    rows = []
    with contextlib.closing(Warehouse(warehouse).connect()) as con:
        all_series = series_of(con)
    for measure in ("count", "harm"):
        frames = []
        started = time.perf_counter()
        for area, kind, series in all_series:
            if kind != measure:
                continue
            frame = forecast.backtest(series, kind=kind, weeks=weeks)
            frames.append(frame.assign(area=area))
        pooled = pd.concat(frames, ignore_index=True)
        rows.append(
            {
                "warehouse": name,
                "measure": measure,
                "series": len(frames),
                "weeks": len(pooled),
                "in_80": float(pooled["in_80"].mean()),
                "in_95": float(pooled["in_95"].mean()),
                "mae_model": mean_absolute_error(pooled, "forecast"),
                "mae_last_year": mean_absolute_error(pooled, "naive_last_year"),
                "mae_last_4": mean_absolute_error(pooled, "naive_last_4_weeks"),
                "seconds": time.perf_counter() - started,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse-dir", type=Path, help="where to build or reuse DIR/demo and DIR/chicago")
    parser.add_argument("--skip-chicago", action="store_true")
    parser.add_argument("--weeks", type=int, default=forecast.BACKTEST_WEEKS, help="backtest weeks per series")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        folder = args.warehouse_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ilp-forecast-")))
        folder.mkdir(parents=True, exist_ok=True)
        targets = [("demo", demo_warehouse(folder))]
        if not args.skip_chicago:
            chicago = chicago_warehouse(folder)
            if chicago is not None:
                targets.append(("chicago", chicago))
        rows = [row for name, path in targets for row in score(name, path, args.weeks)]
    print()
    print(
        f"{'warehouse':10}{'measure':8}{'series':>7}{'weeks':>7}{'in 80%':>8}{'in 95%':>8}"
        f"{'MAE model':>12}{'last year':>12}{'last 4 wk':>12}{'fit s':>7}"
    )
    for r in rows:
        print(
            f"{r['warehouse']:10}{r['measure']:8}{r['series']:7d}{r['weeks']:7d}{r['in_80']:8.0%}{r['in_95']:8.0%}"
            f"{r['mae_model']:12,.1f}{r['mae_last_year']:12,.1f}{r['mae_last_4']:12,.1f}{r['seconds']:7.1f}"
        )
    print(
        "\nWell calibrated: about 80% and 95% inside. MAE: mean absolute error of the 8-week-ahead forecast, "
        "in incidents or harm units per week, pooled over the series."
    )


if __name__ == "__main__":
    main()
