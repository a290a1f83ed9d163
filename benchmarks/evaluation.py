"""Tasking evaluation (ilp/analytics/evaluation.py): the figures for the closing note.

1. The planted intervention (the demo city's ``demo_truth`` row of kind 'intervention': residential
   burglary in one beat cut to a known fraction for its last 26 weeks, an untreated control beat): the
   estimate and interval of a tasking recorded at its start date, at the default windows (12 weeks before,
   12 after) and over the whole planted period (26 and 26), on the demo city as ``ilp demo`` builds it;
   then over several seeds, how often the 95% interval holds the planted fraction, excludes 1, and WDD z < -2.
2. Placebos: taskings recorded on untreated beats at random dates (fixed seed) on the demo city: the share
   the evaluation calls significant at the 95% level, with the in-space calibration and without it, and the
   WDD's share with |z| >= 1.96. The same on Chicago's districts and beats (real data: no planted truth,
   so "significant" there also counts real changes).
3. Time to evaluate all taskings: one done tasking per beat on the demo city, one per district on Chicago
   2016-2018, cold (the first evaluation of a snapshot computes its neighbours) and warm.

    .venv/bin/python benchmarks/evaluation.py                       # builds what it needs in a temporary folder
    .venv/bin/python benchmarks/evaluation.py --work /tmp/bench --seeds 10 --placebos 200
    .venv/bin/python benchmarks/evaluation.py --skip-chicago --seeds 0

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ilp.analytics import evaluation  # noqa: E402
from ilp.warehouse import Warehouse  # noqa: E402

CHICAGO = REPO.parent / "shared" / "data" / "chicago"
PLACEBO_SEED = 20261201
PLACEBO_CATEGORIES = (
    "burglary_residential",
    "robbery",
    "violence_with_injury",
    "theft_other",
    "criminal_damage",
    "shoplifting",
)


def demo(directory: Path, **kwargs) -> Path:
    from ilp.demo import build_demo_warehouse

    if not (directory / "CURRENT").exists():
        build_demo_warehouse(directory, **kwargs)
    return directory


def planted(con) -> dict:
    row = con.execute(
        "SELECT area_id, offense_category, start_date, effect_size, control_area_id FROM demo_truth "
        "WHERE kind = 'intervention'"
    ).fetchone()
    return dict(zip(("beat", "category", "start", "effect", "control"), row))


def planted_estimates(con, windows=((12, 12), (26, 26))) -> list[dict]:
    truth = planted(con)
    found = []
    for pre, post in windows:
        e = evaluation.evaluate(
            con,
            level="beat",
            area_id=truth["beat"],
            categories=(truth["category"],),
            start=truth["start"],
            pre_weeks=pre,
            post_weeks=post,
        )
        r = e.ratio
        found.append(
            {
                "pre": pre,
                "post": post,
                "truth": truth,
                "comparison": e.comparison_area,
                "ratio": r.ratio,
                "low": r.low,
                "high": r.high,
                "holds": r.low <= truth["effect"] <= r.high,
                "excludes_1": r.high < 1,
                "wdd_z": e.wdd.z,
                "wdd_z_calibrated": e.wdd_z_calibrated,
                "mde": e.mde,
                "harm_prevented": (e.harm_prevented, e.harm_prevented_low, e.harm_prevented_high),
            }
        )
    return found


def print_planted(label: str, rows: list[dict]) -> None:
    truth = rows[0]["truth"]
    print(
        f"\n{label}: planted cut to {truth['effect']:g}x in beat {truth['beat']} from {truth['start']} "
        f"(control beat {truth['control']})"
    )
    for r in rows:
        print(
            f"  {r['pre']:>2}/{r['post']:<2} weeks: ratio {r['ratio']:.2f} (95% {r['low']:.2f} – {r['high']:.2f}), "
            f"holds {truth['effect']:g}: {r['holds']}, excludes 1: {r['excludes_1']}; "
            f"WDD z {r['wdd_z']:+.2f} (calibrated {r['wdd_z_calibrated']:+.2f}); MDE {r['mde']:.0%}; "
            f"comparison {r['comparison']}; harm prevented {r['harm_prevented'][0]:,.0f} "
            f"({r['harm_prevented'][1]:,.0f} – {r['harm_prevented'][2]:,.0f}) days"
        )


def placebos(con, level: str, n: int, categories, exclude=(), treated_from: dt.date | None = None, treated=()):
    """``n`` taskings on random untreated areas of ``level`` at random dates (fixed seed)."""
    rng = np.random.default_rng(PLACEBO_SEED)
    column = {"beat": "beat", "district": "district"}[level]
    areas = [
        a
        for (a,) in con.execute(
            f"SELECT {column} FROM incidents WHERE {column} IS NOT NULL GROUP BY 1 HAVING count(*) >= 500 ORDER BY 1"
        ).fetchall()
        if a not in exclude
    ]
    first, last = con.execute("SELECT min(occurred_at)::DATE, max(occurred_at)::DATE FROM incidents").fetchone()
    low, high = first + dt.timedelta(weeks=12), last - dt.timedelta(weeks=12)
    tally = {"evaluated": 0, "calibrated": 0, "model_only": 0, "wdd": 0, "wdd_calibrated": 0, "seconds": 0.0}
    started = time.perf_counter()
    for _ in range(n):
        area = areas[rng.integers(len(areas))]
        category = categories[rng.integers(len(categories))]
        start = low + dt.timedelta(days=int(rng.integers((high - low).days)))
        overlapping = treated if treated_from and start + dt.timedelta(weeks=12) > treated_from else ()
        e = evaluation.evaluate(
            con, level=level, area_id=area, categories=(category,), start=start, treated=overlapping
        )
        if e.ratio is None:
            continue
        r = e.ratio
        tally["evaluated"] += 1
        tally["calibrated"] += r.significant
        t = stats.t.ppf(0.975, r.df)
        tally["model_only"] += abs(r.log_ratio / (r.se / r.calibration)) > t
        tally["wdd"] += abs(e.wdd.z) >= 1.96
        tally["wdd_calibrated"] += abs(e.wdd_z_calibrated) >= 1.96
    tally["seconds"] = time.perf_counter() - started
    return tally


def print_placebos(label: str, tally: dict, n: int) -> None:
    k = max(tally["evaluated"], 1)
    print(
        f"  {label}: {tally['evaluated']} of {n} placebo taskings estimable; 'significant' at 95%: "
        f"{tally['calibrated'] / k:.1%} ({tally['calibrated']}) with the in-space calibration, "
        f"{tally['model_only'] / k:.1%} with the weekly quasi-Poisson model alone; WDD |z| >= 1.96: "
        f"{tally['wdd'] / k:.1%} (calibrated {tally['wdd_calibrated'] / k:.1%}); "
        f"{tally['seconds'] / n:.2f} s each"
    )


def timing(con, level: str, category: str, start: dt.date) -> tuple[int, float, float]:
    """Evaluate one tasking per area of ``level`` (all started on ``start``): (taskings, cold s, warm s)."""
    column = {"beat": "beat", "district": "district"}[level]
    areas = [
        a
        for (a,) in con.execute(
            f"SELECT DISTINCT {column} FROM incidents WHERE {column} IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    evaluation._neighbours_cache.clear()

    def run() -> float:
        began = time.perf_counter()
        for area in areas:
            with contextlib.suppress(evaluation.EvaluationError):
                evaluation.evaluate(con, level=level, area_id=area, categories=(category,), start=start)
        return time.perf_counter() - began

    return len(areas), run(), run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for the warehouses (default: a temporary one)")
    parser.add_argument("--seeds", type=int, default=8, help="demo builds for the planted-truth sweep (0: none)")
    parser.add_argument("--placebos", type=int, default=200, help="placebo taskings per city (0: none)")
    parser.add_argument("--skip-chicago", action="store_true")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ilp-evaluation-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"Tasking evaluation benchmark; cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; work {work}")

    default_city = demo(work / "demo_default", years=3, incidents_per_year=150_000, seed=7)
    test_city = demo(work / "demo_test", years=3, incidents_per_year=60_000, seed=7)
    with contextlib.closing(Warehouse(default_city).connect()) as con:
        print_planted("Demo city as `ilp demo` builds it (3 years, 150,000 a year, seed 7)", planted_estimates(con))
        truth = planted(con)
    with contextlib.closing(Warehouse(test_city).connect()) as con:
        print_planted("Test demo city (3 years, 60,000 a year, seed 7)", planted_estimates(con))

    if args.seeds:
        print(f"\nPlanted truth over {args.seeds} builds (2 years, 150,000 a year, seeds 1..{args.seeds}):")
        sweep: dict[tuple[int, int], list[dict]] = {}
        for seed in range(1, args.seeds + 1):
            city = demo(work / f"demo_seed{seed}", years=2, incidents_per_year=150_000, seed=seed)
            with contextlib.closing(Warehouse(city).connect()) as con:
                for row in planted_estimates(con):
                    sweep.setdefault((row["pre"], row["post"]), []).append(row)
        for (pre, post), rows in sweep.items():
            print(
                f"  {pre}/{post} weeks: interval holds {truth['effect']:g} in {sum(r['holds'] for r in rows)}/{len(rows)}, "
                f"excludes 1 in {sum(r['excludes_1'] for r in rows)}/{len(rows)}, WDD z < -2 in "
                f"{sum(r['wdd_z'] < -2 for r in rows)}/{len(rows)} (calibrated: "
                f"{sum(r['wdd_z_calibrated'] < -2 for r in rows)}/{len(rows)}); median ratio "
                f"{np.median([r['ratio'] for r in rows]):.2f}, median MDE {np.median([r['mde'] for r in rows]):.0%}"
            )

    if args.placebos:
        print(f"\nPlacebos ({args.placebos} taskings each, seed {PLACEBO_SEED}, 12 weeks before and after):")
    planted_beats = ("4C", "2F", "2G")  # the intervention and the moving hot spot's beats are not untreated
    for label, city in (("demo city, test size", test_city), ("demo city, default size", default_city)) * bool(
        args.placebos
    ):
        with contextlib.closing(Warehouse(city).connect()) as con:
            tally = placebos(
                con,
                "beat",
                args.placebos,
                PLACEBO_CATEGORIES,
                exclude=planted_beats,
                treated_from=truth["start"],
                treated=(truth["beat"],),
            )
        print_placebos(f"{label}, beats", tally, args.placebos)

    chicago = None
    if not args.skip_chicago and CHICAGO.exists():
        chicago = work / "chicago"
        if not (chicago / "CURRENT").exists():
            from ilp import ingest

            began = time.perf_counter()
            ingest.ingest(Warehouse(chicago), "chicago", sorted(CHICAGO.glob("crimes_201*.csv.gz")))
            print(f"\n(Chicago 2016-2018 ingested in {time.perf_counter() - began:.0f} s)")
        with contextlib.closing(Warehouse(chicago).connect()) as con:
            for level in ("district", "beat") * bool(args.placebos):
                tally = placebos(con, level, args.placebos, PLACEBO_CATEGORIES[:5])
                print_placebos(f"Chicago 2016-2018, {level}s (real data)", tally, args.placebos)

    print("\nTime to evaluate all taskings (12 weeks before and after), one process:")
    with contextlib.closing(Warehouse(default_city).connect()) as con:
        n, cold, warm = timing(con, "beat", truth["category"], truth["start"])
    print(
        f"  demo city (default size): {n} taskings, one per beat: {cold:.1f} s cold, {warm:.1f} s warm ({warm / n:.2f} s each)"
    )
    if chicago is not None:
        with contextlib.closing(Warehouse(chicago).connect()) as con:
            n, cold, warm = timing(con, "district", "burglary_residential", dt.date(2018, 3, 5))
        print(
            f"  Chicago 2016-2018: {n} taskings, one per district: {cold:.1f} s cold, {warm:.1f} s warm "
            f"({warm / n:.2f} s each)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
