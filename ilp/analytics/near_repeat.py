"""Near-repeat burglary: how far and for how long one burglary raises the risk around it, fitted on the data,
and the grid cells where a recent burglary's window is still open.

The Knox test (Knox 1964; as used for near repeats by Townsley, Homel & Chaseling 2003 and Johnson et al.
2007) counts pairs of burglaries close in both space and time, in bands of distance and of days apart, and
compares each count with what the same places would give if the dates were shuffled among them (Monte
Carlo permutations with a fixed seed). A band's Knox ratio is observed / mean expected; its p-value is
(1 + permutations at least as large) / (1 + permutations).

The near-repeat window is read off the table: the distance is the widest run of distance bands, from the
nearest out, whose first time band is significant (p < ``ALPHA`` and ratio >= ``MIN_RATIO``); the time is
the longest run of time bands, from the first, significant in the nearest distance band. With no
significant nearest band there is no window and no alert.

Alerts are grid cells (``ilp.analytics.hotspots.Grid``), never points: every cell whose centre lies within
the window's distance of a burglary from the last ``window days`` before the forecast week.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ilp.analytics.hotspots import Grid, metres_per_degree
from ilp.warehouse import run_query

DISTANCE_BANDS_M = (0.0, 100.0, 200.0, 300.0, 400.0, 600.0, 800.0)
TIME_BANDS_DAYS = (0, 7, 14, 21, 28, 42, 56)  # [0, 7) days apart, [7, 14) ...
PERMUTATIONS = 99
ALPHA = 0.05
MIN_RATIO = 1.1
STUDY_WEEKS = 52  # burglaries of the last year make the test
SEED = 1964
# Pairs within the widest band the test may hold. A large force's year of burglaries (85,000 on the 10M demo
# city) makes 44 million pairs, and 99 permutations of them took minutes and gigabytes; above this the test
# runs on a uniform random sample of the burglaries (fixed seed), sized so its pairs are about this many.
# Sampling scales observed and expected pairs alike, so the ratios keep their meaning; Chicago's and the
# demo city's default years are far below it.
MAX_PAIRS = 3_000_000


@dataclasses.dataclass
class KnoxResult:
    table: pd.DataFrame  # distance_from, distance_to, days_from, days_to, observed, expected, ratio, p_value
    events: int
    permutations: int
    distance_m: float | None  # the fitted window (None: no near-repeat pattern found)
    days: int | None
    sampled_from: int | None = None  # the burglaries there were, when the test ran on a sample of them

    @property
    def found(self) -> bool:
        return self.distance_m is not None and self.days is not None

    def nearest(self) -> pd.Series | None:
        """The nearest band (0-100 m, 0-6 days): its ratio and p-value head the page's summary."""
        return self.table.iloc[0] if len(self.table) else None

    def sentence(self) -> str:
        first = self.nearest()
        if first is None or self.events < 2:
            return "Too few burglaries in the last year to test for near repeats."
        band = (
            f"within {first.distance_to:.0f} m and {int(first.days_to)} days of each other: "
            f"{first.ratio:.1f}x the pairs expected by chance (p = {first.p_value:.2f}, {self.permutations} "
            f"permutations, {self.events:,} burglaries"
            + (f", a random sample of the {self.sampled_from:,} there were)" if self.sampled_from else ")")
        )
        if not self.found:
            return f"No near-repeat pattern: burglaries {band}, not significantly more than chance."
        return (
            f"Near repeats: burglaries {band}. The raised risk lasts {self.days} days within {self.distance_m:.0f} m "
            "of a burglary."
        )


def projected(latitude, longitude, lat_ref: float) -> np.ndarray:
    """(n, 2) metres east and north of (0, 0) on a local equirectangular projection at ``lat_ref``."""
    per_lat, per_lon = metres_per_degree(lat_ref)
    return np.column_stack([np.asarray(longitude, dtype=float) * per_lon, np.asarray(latitude, dtype=float) * per_lat])


def knox_test(
    xy: np.ndarray,
    days: np.ndarray,
    *,
    distance_bands: tuple[float, ...] = DISTANCE_BANDS_M,
    time_bands: tuple[int, ...] = TIME_BANDS_DAYS,
    permutations: int = PERMUTATIONS,
    seed: int = SEED,
    max_pairs: int = MAX_PAIRS,
) -> KnoxResult:
    """Knox ratios and Monte Carlo p-values for pairs of events in each (distance band, time band)."""
    xy = np.asarray(xy, dtype=float)
    days = np.asarray(days, dtype=np.int64)
    n_d, n_t = len(distance_bands) - 1, len(time_bands) - 1
    sampled_from = None
    if len(xy) >= 2:
        tree = cKDTree(xy)
        pairs_within = (int(tree.count_neighbors(tree, distance_bands[-1])) - len(xy)) // 2  # cheap: counts only
        if pairs_within > max_pairs:
            keep_share = (max_pairs / pairs_within) ** 0.5  # pairs fall with the square of the sample's share
            chosen = np.sort(
                np.random.default_rng(seed).choice(len(xy), size=max(2, int(len(xy) * keep_share)), replace=False)
            )
            sampled_from, xy, days = len(xy), xy[chosen], days[chosen]
            tree = cKDTree(xy)
        pairs = tree.query_pairs(distance_bands[-1], output_type="ndarray")
    else:
        pairs = np.zeros((0, 2), dtype=np.int64)
    distance = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T) if len(pairs) else np.zeros(0)
    d_band = np.searchsorted(distance_bands, distance, side="right") - 1
    keep = (d_band >= 0) & (d_band < n_d)
    first, second, d_band = pairs[keep, 0], pairs[keep, 1], d_band[keep]

    def counts(day_values: np.ndarray) -> np.ndarray:
        apart = np.abs(day_values[first] - day_values[second])
        t_band = np.searchsorted(time_bands, apart, side="right") - 1
        inside = (t_band >= 0) & (t_band < n_t)
        return np.bincount(d_band[inside] * n_t + t_band[inside], minlength=n_d * n_t).reshape(n_d, n_t)

    observed = counts(days)
    rng = np.random.default_rng(seed)
    simulated = np.stack([counts(rng.permutation(days)) for _ in range(permutations)]) if len(first) else None
    if simulated is None:
        simulated = np.zeros((max(permutations, 1), n_d, n_t))
    expected = simulated.mean(axis=0)
    p_value = (1 + (simulated >= observed[None]).sum(axis=0)) / (1 + len(simulated))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(expected > 0, observed / expected, np.nan)
    rows = [
        {
            "distance_from": distance_bands[i],
            "distance_to": distance_bands[i + 1],
            "days_from": time_bands[j],
            "days_to": time_bands[j + 1] - 1,
            "observed": int(observed[i, j]),
            "expected": float(expected[i, j]),
            "ratio": float(ratio[i, j]),
            "p_value": float(p_value[i, j]),
        }
        for i in range(n_d)
        for j in range(n_t)
    ]
    table = pd.DataFrame(rows)
    significant = (p_value < ALPHA) & (np.nan_to_num(ratio) >= MIN_RATIO)
    distance_m = days_open = None
    if n_d and n_t and significant[0, 0]:
        reach = 1
        while reach < n_d and significant[reach, 0]:
            reach += 1
        span = 1
        while span < n_t and significant[0, span]:
            span += 1
        distance_m, days_open = float(distance_bands[reach]), int(time_bands[span])
    return KnoxResult(
        table=table,
        events=len(xy),
        permutations=permutations,
        distance_m=distance_m,
        days=days_open,
        sampled_from=sampled_from,
    )


@dataclasses.dataclass
class NearRepeatAlerts:
    knox: KnoxResult
    cells: pd.DataFrame  # cell_x, cell_y, burglaries (recent ones whose window covers the cell), open_until
    as_of: dt.date  # the forecast week's Monday: windows open on this day are listed


def near_repeat_alerts(
    con,
    *,
    week: dt.date,
    cell_m: float,
    lat_ref: float,
    district: str | None = None,
    permutations: int = PERMUTATIONS,
) -> NearRepeatAlerts:
    """The Knox test on the last year's burglaries before ``week`` and the cells (of the grid ``cell_m`` metres
    a side at ``lat_ref``) whose window is still open on its Monday, with each cell's beat and district."""
    grid = Grid(float(cell_m), float(lat_ref))
    events = run_query(
        con,
        "hotspot_near_repeat_events",
        {"start": week - dt.timedelta(weeks=STUDY_WEEKS), "end": week, "district": district},
    )
    xy = projected(events["latitude"], events["longitude"], grid.lat_ref)
    day_numbers = (pd.to_datetime(events["day"]) - pd.Timestamp(week)).dt.days.to_numpy(np.int64)
    knox = knox_test(xy, day_numbers, permutations=permutations)
    cells = open_cells(knox, xy, day_numbers, events, grid, week)
    if len(cells):
        places = run_query(
            con,
            "hotspot_cell_places",
            {"start": week - dt.timedelta(weeks=STUDY_WEEKS), "end": week, "district": district, **grid.params()},
        )
        cells = cells.merge(places[["cell_x", "cell_y", "beat", "district"]], on=["cell_x", "cell_y"], how="left")
        lat, lon = grid.centre(cells["cell_x"], cells["cell_y"])
        cells["cell"] = [f"{a:.4f}, {b:.4f}" for a, b in zip(lat, lon)]
    return NearRepeatAlerts(knox=knox, cells=cells, as_of=week)


def open_cells(
    knox: KnoxResult, xy: np.ndarray, days: np.ndarray, events: pd.DataFrame, grid: Grid, week
) -> pd.DataFrame:
    """Cells within the window's distance of a burglary whose window (its day + the window's days) is still
    open on ``week``'s Monday (day 0). Cells only: the events' points never leave this function."""
    columns = ["cell_x", "cell_y", "burglaries", "latest", "open_until"]
    if not knox.found or not len(xy):
        return pd.DataFrame(columns=columns)
    recent = days >= -knox.days
    if not recent.any():
        return pd.DataFrame(columns=columns)
    reach = knox.distance_m
    steps = int(np.ceil(reach / grid.cell_m)) + 1
    lat, lon = np.asarray(events["latitude"])[recent], np.asarray(events["longitude"])[recent]
    cx, cy = grid.cell_of(lat, lon)
    offsets = np.arange(-steps, steps + 1)
    ox, oy = np.meshgrid(offsets, offsets, indexing="ij")
    ox, oy = ox.ravel(), oy.ravel()
    candidate_x = (cx[:, None] + ox[None, :]).ravel()
    candidate_y = (cy[:, None] + oy[None, :]).ravel()
    centre_lat, centre_lon = grid.centre(candidate_x, candidate_y)
    centres = projected(centre_lat, centre_lon, grid.lat_ref)
    source = np.repeat(xy[recent], len(ox), axis=0)
    within = np.hypot(*(centres - source).T) <= reach
    own = (candidate_x == np.repeat(cx, len(ox))) & (candidate_y == np.repeat(cy, len(ox)))
    pick = within | own
    frame = pd.DataFrame(
        {
            "cell_x": candidate_x[pick],
            "cell_y": candidate_y[pick],
            "day": np.repeat(days[recent], len(ox))[pick],
        }
    )
    cells = (
        frame.groupby(["cell_x", "cell_y"])
        .agg(burglaries=("day", "size"), latest=("day", "max"))
        .reset_index()
        .sort_values(["burglaries", "latest", "cell_x", "cell_y"], ascending=[False, False, True, True])
        .reset_index(drop=True)
    )
    cells["latest"] = [week + dt.timedelta(days=int(d)) for d in cells["latest"]]
    cells["open_until"] = [d + dt.timedelta(days=knox.days) for d in cells["latest"]]
    return cells[columns]
