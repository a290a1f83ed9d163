"""Where to patrol next week: hot-spot forecasts on the deployment grid, by shift, and how to keep them honest.

The grid is ``ilp.analytics.hotspots``' lattice (``grid_for``) at ``DEFAULT_CELL_METRES`` a side unless told
otherwise. One named query (``queries/hotspot_cell_weeks.sql``) gives counts and harm per cell x week x
shift; :class:`CellWeeks` holds them as arrays, and everything after is numpy/scipy arithmetic on dense
cell x week arrays built once, so a 52-week backtest costs one query.

Methods (``METHODS``, simplest first; each scores every cell for a week from the weeks before it only):

* ``naive_last_year``: the last 52 weeks' map (counts, or harm, per cell);
* ``naive_last_4_weeks``: the last 4 weeks' map;
* ``decayed_history``: every past week, weighted ``0.5 ** (age / half_life)``; the half-life is fitted;
* ``kernel_density``: the last 52 weeks smoothed with a Gaussian kernel; the bandwidth is fitted;
* ``poisson_regression``: the combined model, a Poisson regression (log link, fitted by iteratively
  reweighted least squares) on each cell's own counts over the last 1, 4, 13 and 52 weeks and the year
  before, its eight neighbours' counts over 2, 4 and 52 weeks (recent near-repeat activity and the local
  area), and, where the forecast is for one category or one shift, the cell's counts of every offence and
  of every hour. For harm it forecasts the count and multiplies by the cell's harm per incident over the
  last two years, shrunk towards the citywide figure.

Fitting: half-lives, bandwidths, the regression, the calibration of each method's scores to expected
values, and the choice of method all use the *selection window* (the weeks before the first week scored)
only, so everything a forecast uses lies strictly before its week. The chosen method is the one with the
highest mean PAI at 5% coverage on the selection window; ties go to the simpler method, so the choice may
honestly be a naive map.

Scoring (Chainey, Tompson & Uhlig 2008; Hunt 2016; Levine 2008), per week, with n of N incidents (or harm)
falling in the k flagged cells out of the A cells of the study area:
hit rate n/N; PAI (n/N)/(k/A); PEI* n/n*, n* the realised total of the week's k busiest cells; RRI the
predicted share in the flagged cells over the observed share. Cells tied at the cut share the last places
pro rata (the expected result of breaking the tie at random). Means are over weeks with any incident.

The study area A is every grid cell with at least one located incident of any offence in the data the run
loads (up to three years before the first week forecast, through the last week scored; a live forecast
loads nothing from its own week), the same A for every method. Cells that are not in A cannot be flagged,
and their incidents still count in N.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ilp.analytics.hotspots import Grid, grid_for
from ilp.errors import UserError
from ilp.warehouse import run_query

# The backtest on Chicago 2016-2018 (benchmarks/hotspots.py) sets the default: PAI rises as cells shrink
# (it rewards finer maps mechanically, 6.5 at 100 m against 5.1 at 300 m for last year's map), so the size
# chosen is the finest at which the flagged 5% of cells still expect at least one incident a week: 150 m.
DEFAULT_CELL_METRES = 150.0
CELL_SIZES = (100.0, 150.0, 200.0, 250.0, 300.0)
MIN_CELL_METRES, MAX_CELL_METRES = 50.0, 1000.0
COVERAGES = (0.01, 0.05, 0.10)
SELECTION_COVERAGE = 0.05  # the chosen method has the highest mean PAI at this coverage on the selection window
# ... and replaces last year's map only when that PAI is at least this multiple of the map's (the issue's rule:
# "if no method gets there, keep the naive map"; a 2% margin is about the week-to-week noise of a 52-week mean)
MIN_GAIN_OVER_NAIVE = 1.02
MEASURES = ("count", "harm")
SHIFTS = ("day", "evening", "night")
SHIFT_SCOPES = (*SHIFTS, "all")
SHIFT_LABELS = {"day": "Day", "evening": "Evening", "night": "Night", "all": "All hours"}
NO_SHIFT = 3  # index of incidents whose source gives no time of day (in 'all' only)

# Backtest windows: the CLI selects on 52 weeks; a live forecast chooses on the 26 weeks before the 26 it
# reports on the page ("over the last 26 weeks"), then forecasts the next.
SELECTION_WEEKS = 52
LIVE_SELECTION_WEEKS = 26
LIVE_EVALUATION_WEEKS = 26
FEATURE_WEEKS = 104  # the longest history any method reads (the regression's year before last)
MIN_HISTORY_WEEKS = 8  # fewer weeks of located, timed incidents than this: no forecast is made

HALF_LIVES = (4.0, 13.0, 26.0, 52.0, 104.0)  # weeks, tried for decayed_history
BANDWIDTHS_M = (75.0, 150.0, 250.0, 400.0)  # Gaussian kernel sigma in metres, tried for kernel_density
KDE_WEEKS = 52
SEVERITY_PRIOR_INCIDENTS = 20.0  # harm per incident of a cell is shrunk towards the city's with this weight
FIT_ROWS = 150_000  # cell-weeks sampled for the combined model's regression
CALIBRATION_ROWS = 20_000  # and for each method's calibration
FIT_SEED = 20110101  # the sample is drawn with a fixed seed: the same data gives the same forecast
INTERVAL = (0.05, 0.95)  # the plan's interval: where 90% of comparable cell-weeks fell


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    name: str
    label: str  # for tables
    words: str  # for sentences: "this map" = ...
    naive: bool


METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in (
        MethodInfo("naive_last_year", "Last year's map (last 52 weeks)", "last year's map", True),
        MethodInfo("naive_last_4_weeks", "Last 4 weeks' map", "the last 4 weeks' map", True),
        MethodInfo("decayed_history", "Decayed history (fitted half-life)", "decayed history", False),
        MethodInfo("kernel_density", "Kernel density, last 52 weeks (fitted bandwidth)", "kernel density", False),
        MethodInfo(
            "poisson_regression",
            "Combined model: Poisson regression on 1/4/13/52-week history, neighbours, near repeats",
            "the combined model",
            False,
        ),
    )
}
BASELINES = ("naive_last_year", "naive_last_4_weeks")


class ForecastError(UserError):
    """A forecast or backtest that cannot be made as asked (dates, categories, too little data)."""


# ------------------------------------------------------------------------------------------ shifts
@dataclasses.dataclass(frozen=True)
class ShiftHours:
    """Start hours of the three shifts; night runs from ``night`` to ``day`` the next morning."""

    day: int = 7
    evening: int = 15
    night: int = 23

    def __post_init__(self):
        if not (0 <= self.day < self.evening < self.night <= 23):
            raise ForecastError(
                f"shift hours must start day < evening < night within 0-23 (got day={self.day}, "
                f"evening={self.evening}, night={self.night}); e.g. day=7,evening=15,night=23"
            )

    @classmethod
    def parse(cls, text: str | None) -> ShiftHours:
        """'day=7,evening=15,night=23' (any subset; the rest keep their defaults)."""
        if not text:
            return cls()
        values = {}
        for part in str(text).split(","):
            name, _, hour = part.partition("=")
            name = name.strip()
            if name not in SHIFTS or not hour.strip().isdigit():
                raise ForecastError(f"shift hours {text!r}: write them as day=7,evening=15,night=23")
            values[name] = int(hour)
        return cls(**values)

    def params(self) -> dict[str, int]:
        return {"day_start": self.day, "evening_start": self.evening, "night_start": self.night}

    def label(self, shift: str) -> str:
        """'Day 07:00-15:00', 'All hours'."""
        span = {
            "day": (self.day, self.evening),
            "evening": (self.evening, self.night),
            "night": (self.night, self.day),
        }.get(shift)
        if span is None:
            return SHIFT_LABELS.get(shift, shift)
        return f"{SHIFT_LABELS[shift]} {span[0]:02d}:00-{span[1]:02d}:00"

    def text(self) -> str:
        return f"day={self.day},evening={self.evening},night={self.night}"


def _shift_index(shift: str) -> int | None:
    if shift == "all":
        return None
    if shift not in SHIFTS:
        raise ForecastError(f"unknown shift {shift!r}; choose one of {', '.join(SHIFT_SCOPES)}")
    return SHIFTS.index(shift)


# ------------------------------------------------------------------------------------------ weeks
def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


# ------------------------------------------------------------------------------------------ the data
@dataclasses.dataclass
class CellWeeks:
    """Located incidents per cell x week x shift, from ``hotspot_cell_weeks.sql``, over a dense run of weeks.

    ``cells`` (cell_x, cell_y) is the study area A. Arrays are built per (shift, measure) on demand, shape
    (weeks, cells); ``shift`` 'all' adds the three shifts and the incidents without a time of day.
    """

    grid: Grid
    weeks: np.ndarray  # datetime64[D] Mondays, consecutive
    cell_x: np.ndarray
    cell_y: np.ndarray
    row_week: np.ndarray
    row_cell: np.ndarray
    row_shift: np.ndarray
    row_incidents: np.ndarray
    row_harm: np.ndarray
    row_all: np.ndarray
    category: str | None = None
    district: str | None = None
    harm_index: str | None = None
    harm_version: str | None = None
    include_proactive: bool = False
    shift_hours: ShiftHours = dataclasses.field(default_factory=ShiftHours)
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def n_weeks(self) -> int:
        return len(self.weeks)

    @property
    def n_cells(self) -> int:
        return len(self.cell_x)

    def week_index(self, week: dt.date) -> int:
        """Index of the week starting on ``week`` (a Monday), which may be one past the end."""
        return int((np.datetime64(week, "D") - self.weeks[0]).astype(int) // 7) if self.n_weeks else 0

    def week_date(self, index: int) -> dt.date:
        return (self.weeks[0] + np.timedelta64(7 * int(index), "D")).astype(dt.date)

    def series(self, shift: str, measure: str = "count", *, every_offence: bool = False) -> np.ndarray:
        """(weeks, cells) counts or harm of the category (or of every offence) in ``shift``."""
        key = (shift, measure, every_offence)
        if key not in self._cache:
            index = _shift_index(shift)
            pick = slice(None) if index is None else self.row_shift == index
            if every_offence:
                values = self.row_all
            else:
                values = self.row_harm if measure == "harm" else self.row_incidents
            flat = self.row_week[pick] * self.n_cells + self.row_cell[pick]
            dense = np.bincount(flat, weights=values[pick], minlength=self.n_weeks * self.n_cells)
            self._cache[key] = dense.reshape(self.n_weeks, self.n_cells)
        return self._cache[key]

    @property
    def raster(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """(column, row, shape) of each cell in a rectangle holding the study area, for spatial filters."""
        if "raster" not in self._cache:
            gx = (self.cell_x - self.cell_x.min()).astype(np.int64) if self.n_cells else self.cell_x
            gy = (self.cell_y - self.cell_y.min()).astype(np.int64) if self.n_cells else self.cell_y
            shape = (int(gx.max()) + 1, int(gy.max()) + 1) if self.n_cells else (0, 0)
            self._cache["raster"] = (gx, gy, shape)
        return self._cache["raster"]

    def spatial(self, values: np.ndarray, how: str, sigma: float = 0.0) -> np.ndarray:
        """(weeks, cells) -> the same after a spatial filter: 'ring' sums the 8 neighbours, 'gauss' smooths
        with a Gaussian of ``sigma`` cells (truncated at 3 sigma)."""
        if how == "ring":
            return np.asarray(values @ self.ring_matrix)
        from scipy import ndimage  # here, not at import: the ilp command builds its parser from this module

        gx, gy, shape = self.raster
        out = np.empty(values.shape)
        chunk = max(1, 8_000_000 // max(1, shape[0] * shape[1]))
        for first in range(0, len(values), chunk):
            part = values[first : first + chunk]
            picture = np.zeros((len(part), *shape), dtype=np.float32)
            picture[:, gx, gy] = part
            smooth = ndimage.gaussian_filter(picture, sigma=(0, sigma, sigma), mode="constant", truncate=3.0)
            out[first : first + chunk] = smooth[:, gx, gy]
        return out

    @property
    def ring_matrix(self):
        """(cells, cells) sparse: column j sums the study-area cells among cell j's eight neighbours."""
        if "ring" not in self._cache:
            from scipy import sparse

            index = self.cell_index
            rows, cols = [], []
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    if dx or dy:
                        found = index(self.cell_x + dx, self.cell_y + dy)
                        inside = found >= 0
                        rows.append(found[inside])
                        cols.append(np.flatnonzero(inside))
            rows, cols = np.concatenate(rows), np.concatenate(cols)
            matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(self.n_cells, self.n_cells))
            self._cache["ring"] = matrix
        return self._cache["ring"]

    def cell_index(self, cell_x, cell_y) -> np.ndarray:
        """Index of each (cell_x, cell_y) in the study area, -1 for a cell outside it."""
        cell_x, cell_y = np.asarray(cell_x, dtype=np.int64), np.asarray(cell_y, dtype=np.int64)
        if not self.n_cells:
            return np.full(len(cell_x), -1, dtype=np.int64)
        keys = (self.cell_x << 32) + (self.cell_y & 0xFFFFFFFF)  # cells are sorted by (x, y): keys ascend
        wanted = (cell_x << 32) + (cell_y & 0xFFFFFFFF)
        position = np.clip(np.searchsorted(keys, wanted), 0, self.n_cells - 1)
        return np.where(keys[position] == wanted, position, -1)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        return self.grid.centre(self.cell_x, self.cell_y)


def load_cell_weeks(
    con,
    *,
    start: dt.date,
    end: dt.date,
    grid: Grid,
    category: str | None = None,
    district: str | None = None,
    harm_index: str,
    harm_version: str,
    include_proactive: bool = False,
    shift_hours: ShiftHours | None = None,
) -> CellWeeks:
    """Run ``hotspot_cell_weeks`` for the Mondays from ``start`` to before ``end`` and hold it as arrays."""
    shift_hours = shift_hours or ShiftHours()
    start, end = monday(_as_date(start)), monday(_as_date(end))
    frame = run_query(
        con,
        "hotspot_cell_weeks",
        {
            "start": start,
            "end": end,
            "category": category,
            "district": district,
            "harm_index": harm_index,
            "harm_version": harm_version,
            "include_proactive": include_proactive,
            **grid.params(),
            **shift_hours.params(),
        },
    )
    weeks = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D"), 7)
    cells = frame[["cell_x", "cell_y"]].drop_duplicates().sort_values(["cell_x", "cell_y"], ignore_index=True)
    cell_index = pd.Series(np.arange(len(cells)), index=pd.MultiIndex.from_frame(cells))
    row_cell = cell_index.reindex(pd.MultiIndex.from_frame(frame[["cell_x", "cell_y"]])).to_numpy()
    row_week = ((frame["week"].to_numpy(dtype="datetime64[D]") - weeks[0]).astype(np.int64) // 7) if len(weeks) else []
    number = frame["shift_number"].to_numpy(np.int64)  # 1 day, 2 evening, 3 night, 0 no time of day
    shift_code = np.where(number > 0, number - 1, NO_SHIFT)
    return CellWeeks(
        grid=grid,
        weeks=weeks,
        cell_x=cells["cell_x"].to_numpy(np.int64),
        cell_y=cells["cell_y"].to_numpy(np.int64),
        row_week=np.asarray(row_week, dtype=np.int64),
        row_cell=np.asarray(row_cell, dtype=np.int64),
        row_shift=shift_code,
        row_incidents=frame["incidents"].to_numpy(np.float64),
        row_harm=frame["harm"].to_numpy(np.float64),
        row_all=frame["all_incidents"].to_numpy(np.float64),
        category=category,
        district=district,
        harm_index=harm_index,
        harm_version=harm_version,
        include_proactive=include_proactive,
        shift_hours=shift_hours,
    )


# ------------------------------------------------------------------------------------------ history
class History:
    """One (shift, measure) of a :class:`CellWeeks`: the target series and the running sums every method reads.

    ``scores(t)`` of every method use rows ``< t`` only: the running sums ``S[t] = sum of weeks before t``.
    Running sums are kept on the CellWeeks, so the shifts and measures of one run share them.
    """

    def __init__(self, data: CellWeeks, shift: str, measure: str):
        if measure not in MEASURES:
            raise ForecastError(f"unknown measure {measure!r}; choose count or harm")
        _shift_index(shift)
        self.data, self.shift, self.measure = data, shift, measure
        self.target = data.series(shift, measure)
        self.counts = data.series(shift, "count")

    def running(self, name: str) -> np.ndarray:
        """(weeks + 1, cells): row t is the total of the weeks before t of series ``name``."""
        name = self.measure if name == "target" else name
        shift = "all" if name in ("every_hour", "area") else self.shift
        key = ("running", shift, name)
        if key not in self.data._cache:
            self.data._cache[key] = _running_sum(self._named(name))
        return self.data._cache[key]

    def _named(self, name: str) -> np.ndarray:
        d = self.data
        if name == "count":
            return self.counts
        if name == "harm":
            return d.series(self.shift, "harm")
        if name == "near":  # the 8 neighbours' counts
            return d.spatial(self.counts, "ring")
        if name == "every_offence":
            return d.series(self.shift, "count", every_offence=True)
        if name == "every_hour":
            return d.series("all", "count")
        if name == "area":  # any incident of any offence at any hour: the cells known so far
            return d.series("all", "count", every_offence=True)
        raise KeyError(name)

    def window(self, name: str, t: np.ndarray | int, weeks: int, skip: int = 0) -> np.ndarray:
        """Totals of ``name`` over the ``weeks`` weeks ending ``skip`` weeks before each origin ``t``."""
        sums = self.running(name)
        t = np.asarray(t)
        upper = np.clip(t - skip, 0, None)
        lower = np.clip(t - weeks, 0, None)
        return sums[upper] - sums[lower]

    def oracle(self, origins: np.ndarray, k: int) -> dict[int, np.ndarray]:
        """``oracle_catch`` of the target at ``origins`` for ``k`` flagged cells, kept for reuse."""
        key = ("oracle", self.shift, self.measure, np.asarray(origins, dtype=np.int64).tobytes(), int(k))
        if key not in self.data._cache:
            self.data._cache[key] = oracle_catch(self.target[origins], [k])
        return self.data._cache[key]

    def smoothed_window(self, t: np.ndarray, weeks: int, sigma_cells: float) -> np.ndarray:
        """(origins, cells): the target's total over the ``weeks`` before each origin, smoothed in space by a
        Gaussian of ``sigma_cells`` (a kernel density estimate on the grid)."""
        return self.data.spatial(self.window("target", t, weeks), "gauss", sigma_cells)

    def decayed(self, t: np.ndarray, half_life: float) -> np.ndarray:
        """(origins, cells): sum over k >= 1 of 0.5 ** ((k - 1) / half_life) x target[t - k]."""
        t = np.asarray(t)
        ages = t[:, None] - 1 - np.arange(self.data.n_weeks)[None, :]
        weights = np.where(ages >= 0, 0.5 ** (np.maximum(ages, 0) / half_life), 0.0)
        return weights @ self.target


def _running_sum(values: np.ndarray) -> np.ndarray:
    """(rows + 1, columns): row t is the total of rows before t. A row loop: numpy's cumsum down axis 0 is
    several times slower on a wide array."""
    out = np.zeros((values.shape[0] + 1, values.shape[1]))
    for row in range(values.shape[0]):
        np.add(out[row], values[row], out=out[row + 1])
    return out


# ------------------------------------------------------------------------------------------ scoring
def score_maps(
    scores: np.ndarray,
    actual: np.ndarray,
    coverages: Sequence[float] = COVERAGES,
    expected: np.ndarray | None = None,
    area_cells: int | None = None,
    oracle: dict[int, np.ndarray] | None = None,
) -> dict[float, dict[str, np.ndarray]]:
    """Per week (rows) and coverage: hit rate, PAI, PEI* and RRI of flagging each row's top cells.

    ``scores`` and ``actual`` are (weeks, cells); ``expected`` (the calibrated forecast, default ``scores``)
    gives RRI its predicted shares. ``area_cells`` is A (default: the number of columns). Ties at the cut are
    shared pro rata. Weeks with nothing observed give NaN. ``oracle`` (``oracle_catch``) saves recomputing
    the best possible catch when several maps are scored against the same weeks.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    actual = np.atleast_2d(np.asarray(actual, dtype=float))
    expected = scores if expected is None else np.atleast_2d(np.asarray(expected, dtype=float))
    weeks, cells = scores.shape
    area = area_cells or cells
    total = actual.sum(axis=1)
    predicted_total = expected.sum(axis=1)
    ks = {coverage: min(flagged_cells(coverage, area), cells) for coverage in coverages}
    wanted = sorted({k for k in ks.values() if k > 0})
    thresholds = {}
    if wanted:
        part = np.partition(scores, [cells - k for k in wanted], axis=1)
        thresholds = {k: part[:, cells - k][:, None] for k in wanted}
    oracle = oracle if oracle is not None else oracle_catch(actual, wanted)
    out = {}
    for coverage, k in ks.items():
        if k <= 0:
            nan = np.full(weeks, np.nan)
            out[coverage] = {"hit_rate": nan, "pai": nan, "pei_star": nan, "rri": nan, "cells": 0}
            continue
        captured, predicted_in = _top_k(scores, k, actual, expected, threshold=thresholds[k])
        best = oracle[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            hit = np.where(total > 0, captured / total, np.nan)
            pai = hit / (k / area)
            pei = np.where(best > 0, captured / best, np.nan)
            predicted_share = np.where(predicted_total > 0, predicted_in / predicted_total, np.nan)
            rri = np.where(hit > 0, predicted_share / hit, np.nan)
        out[coverage] = {"hit_rate": hit, "pai": pai, "pei_star": pei, "rri": rri, "cells": k}
    return out


def oracle_catch(actual: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Per row, the total of the ``k`` largest values for each k: the catch of a map that knew the week."""
    actual = np.atleast_2d(actual)
    cells = actual.shape[1]
    ks = sorted({min(int(k), cells) for k in ks if k > 0})
    if not ks:
        return {}
    part = np.partition(actual, [cells - k for k in ks], axis=1)
    return {k: part[:, cells - k :].sum(axis=1) for k in ks}


def flagged_cells(coverage: float, area_cells: int) -> int:
    """How many cells make ``coverage`` of an area of ``area_cells`` cells (at least one)."""
    return max(1, int(round(coverage * area_cells))) if area_cells else 0


def _top_k(scores: np.ndarray, k: int, *values: np.ndarray, threshold: np.ndarray | None = None) -> list[np.ndarray]:
    """Per row, the totals of each of ``values`` over the top ``k`` cells by ``scores``, ties pro rata."""
    cells = scores.shape[1]
    if threshold is None:
        threshold = np.partition(scores, cells - k, axis=1)[:, cells - k][:, None]
    above = scores > threshold
    tied = scores == threshold
    share = (k - above.sum(axis=1)) / np.maximum(tied.sum(axis=1), 1)
    return [(v * above).sum(axis=1) + share * (v * tied).sum(axis=1) for v in values]


def _top_k_values(values: np.ndarray, k: int) -> np.ndarray:
    """Per row, the sum of the ``k`` largest values (the oracle's catch)."""
    return oracle_catch(values, [k])[min(k, np.atleast_2d(values).shape[1])]


def flag_order(scores: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Cell indices, best first: by score, then ``tiebreak`` (e.g. the last two years' counts), then index."""
    keys = [np.arange(len(scores))]
    if tiebreak is not None:
        keys.append(-np.asarray(tiebreak, dtype=float))
    keys.append(-np.asarray(scores, dtype=float))
    return np.lexsort(keys)


# ------------------------------------------------------------------------------------------ methods
@dataclasses.dataclass
class FittedMethod:
    """A method with its fitted parameters and calibration, able to score any origin week."""

    name: str
    parameters: dict
    scorer: Callable[[np.ndarray], np.ndarray]  # origins -> (len(origins), cells) raw scores
    calibration: tuple[float, float] = (0.0, 1.0)  # expected = exp(a) * (score + floor) ** b
    floor: float = 1e-6

    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    def scores(self, origins: np.ndarray) -> np.ndarray:
        """(len(origins), cells) raw scores (kept: the windows are scored more than once)."""
        origins = np.asarray(origins, dtype=np.int64)
        key = origins.tobytes()
        if key not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            self._cache[key] = self.scorer(origins)
        return self._cache[key]

    def expected(self, scores: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return np.exp(a + b * np.log(np.maximum(scores, 0.0) + self.floor))


def _mean_pai(history: History, scores: np.ndarray, origins: np.ndarray, coverage: float = SELECTION_COVERAGE):
    """Mean PAI over ``origins`` of flagging ``coverage`` of the area by ``scores`` (what choices are made on)."""
    actual = history.target[origins]
    k = min(flagged_cells(coverage, history.data.n_cells), actual.shape[1])
    (captured,) = _top_k(np.atleast_2d(scores), k, actual)
    total = actual.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pai = np.where(total > 0, captured / total, np.nan) / (k / history.data.n_cells)
    return float(np.nanmean(pai)) if np.isfinite(pai).any() else float("nan")


def _best(history: History, origins: np.ndarray, candidates: dict) -> tuple:
    """The candidate (parameter -> scorer) with the highest mean PAI at 5% over ``origins`` (ties: the first):
    (parameter, scorer, its scores at ``origins``)."""
    best_value, best = -np.inf, None
    for parameter, scorer in candidates.items():
        scores = scorer(origins)
        value = _mean_pai(history, scores, origins)
        if best is None or value > best_value + 1e-12:
            best_value, best = value, (parameter, scorer, scores)
    return best


def fit_methods(history: History, selection: np.ndarray, names: Sequence[str] = tuple(METHODS)) -> dict:
    """Every method in ``names`` fitted on the selection window (origin weeks ``selection``): name -> FittedMethod."""
    d = history.data
    fitted = {}
    for name in names:
        if name == "naive_last_year":
            method = FittedMethod(name, {"weeks": 52}, lambda t: history.window("target", t, 52))
        elif name == "naive_last_4_weeks":
            method = FittedMethod(name, {"weeks": 4}, lambda t: history.window("target", t, 4))
        elif name == "decayed_history":
            candidates = {h: (lambda t, h=h: history.decayed(t, h)) for h in HALF_LIVES}
            half_life, scorer, scores = _best(history, selection, candidates)
            method = FittedMethod(name, {"half_life_weeks": half_life}, scorer)
            method._cache[np.asarray(selection, dtype=np.int64).tobytes()] = scores
        elif name == "kernel_density":
            candidates = {
                bandwidth: (lambda t, sigma=bandwidth / d.grid.cell_m: history.smoothed_window(t, KDE_WEEKS, sigma))
                for bandwidth in BANDWIDTHS_M
            }
            bandwidth, scorer, scores = _best(history, selection, candidates)
            method = FittedMethod(name, {"bandwidth_m": bandwidth, "weeks": KDE_WEEKS}, scorer)
            method._cache[np.asarray(selection, dtype=np.int64).tobytes()] = scores
        elif name == "poisson_regression":
            method = _fit_regression(history, selection)
        else:
            raise ForecastError(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
        _calibrate(history, method, selection)
        fitted[name] = method
    return fitted


def _feature_columns(history: History) -> list[tuple[str, int, int]]:
    """(series, weeks, skip) of each regression feature; log(1 + total) of each enters the model."""
    columns = [
        ("count", 1, 0),
        ("count", 4, 0),
        ("count", 13, 0),
        ("count", 52, 0),
        ("count", 104, 52),  # the year before last
        ("near", 2, 0),  # recent near-repeat activity around the cell
        ("near", 4, 0),
        ("near", 52, 0),
    ]
    if history.data.category is not None:
        columns += [("every_offence", 4, 0), ("every_offence", 52, 0)]
    if history.shift != "all":
        columns += [("every_hour", 4, 0), ("every_hour", 52, 0)]
    return columns


def _features(history: History, t: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
    """(rows, features) for origin weeks ``t`` (with ``cells``: row i is cell cells[i] at t[i]; without:
    every cell of each origin, origins outermost)."""
    t = np.asarray(t)
    columns = _feature_columns(history)
    if cells is None:
        out = np.empty((len(t), history.data.n_cells, len(columns)), dtype=np.float32)
        for j, (name, weeks, skip) in enumerate(columns):
            out[:, :, j] = np.log1p(history.window(name, t, weeks, skip))
        return out.reshape(-1, len(columns))
    out = np.empty((len(t), len(columns)))
    for j, (name, weeks, skip) in enumerate(columns):
        sums = history.running(name)
        upper, lower = np.clip(t - skip, 0, None), np.clip(t - weeks, 0, None)
        out[:, j] = np.log1p(sums[upper, cells] - sums[lower, cells])
    return out


def _fit_rows(history: History, selection: np.ndarray, rows: int = FIT_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-seed sample of (origin, cell) pairs from the selection window, over the cells that had an
    incident of any offence before the window ended (the cells known when the model is fitted)."""
    if not len(selection):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    key = ("fit rows", np.asarray(selection, dtype=np.int64).tobytes(), rows)
    if key not in history.data._cache:
        known = np.flatnonzero(history.running("area")[int(selection.max()) + 1] > 0)
        total = len(selection) * len(known)
        rng = np.random.default_rng(FIT_SEED)
        pick = rng.choice(total, size=min(rows, total), replace=False) if total > rows else np.arange(total)
        pick.sort()
        history.data._cache[key] = (selection[pick // max(len(known), 1)], known[pick % max(len(known), 1)])
    return history.data._cache[key]


def poisson_irls(x: np.ndarray, y: np.ndarray, ridge: float = 1e-6, iterations: int = 50) -> np.ndarray:
    """Coefficients (intercept first) of a Poisson regression with log link, by Newton-Raphson (iteratively
    reweighted least squares), with a small ridge on the slopes so collinear or empty features stay finite."""
    design = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(design.shape[1])
    beta[0] = math.log(max(float(np.mean(y)), 1e-9)) if len(y) else 0.0
    penalty = np.full(design.shape[1], ridge * max(len(y), 1))
    penalty[0] = 0.0

    def evaluate_at(b: np.ndarray) -> tuple[float, np.ndarray]:
        """(penalised Poisson log-likelihood up to a constant, the means) at ``b``."""
        eta = np.clip(design @ b, -30, 30)
        mu = np.exp(eta)
        return float(y @ eta - mu.sum() - 0.5 * penalty @ (b * b)), mu

    current, mu = evaluate_at(beta)
    for _ in range(iterations):
        gradient = design.T @ (y - mu) - penalty * beta
        hessian = (design * mu[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        for _halving in range(40):  # Newton's step, halved until the likelihood does not fall
            candidate, candidate_mu = evaluate_at(beta + step)
            if candidate >= current - 1e-12 * abs(current):
                break
            step = step / 2.0
        beta, mu, previous, current = beta + step, candidate_mu, current, candidate
        if np.max(np.abs(step)) < 1e-7 or abs(current - previous) < 1e-10 * max(abs(current), 1.0):
            break
    return beta


def _fit_regression(history: History, selection: np.ndarray) -> FittedMethod:
    t, cells = _fit_rows(history, selection)
    x = _features(history, t, cells)
    y = history.counts[t, cells]
    beta = poisson_irls(x, y)
    columns = _feature_columns(history)
    harm = history.measure == "harm"

    def scorer(origins):
        origins = np.asarray(origins)
        linear = _features(history, origins) @ beta[1:].astype(np.float32) + np.float32(beta[0])
        count = np.exp(np.clip(linear.astype(np.float64), -30, 30)).reshape(len(origins), -1)
        if not harm:
            return count
        return count * _severity(history, origins)

    parameters = {
        "features": [
            f"log1p({name}, {weeks} weeks" + (f", skipping {skip})" if skip else ")") for name, weeks, skip in columns
        ],
        "coefficients": [round(float(b), 5) for b in beta],
        "fit_rows": int(len(y)),
    }
    if harm:
        parameters["harm"] = (
            f"expected count x the cell's harm per incident over {FEATURE_WEEKS} weeks, shrunk towards the "
            f"city's with {SEVERITY_PRIOR_INCIDENTS:g} incidents' weight"
        )
    return FittedMethod("poisson_regression", parameters, scorer)


def _severity(history: History, origins: np.ndarray) -> np.ndarray:
    """(origins, cells) harm per incident over the last two years, shrunk towards the whole area's."""
    harm = history.window("harm", origins, FEATURE_WEEKS)
    count = history.window("count", origins, FEATURE_WEEKS)
    city = harm.sum(axis=1, keepdims=True) / np.maximum(count.sum(axis=1, keepdims=True), 1.0)
    return (harm + SEVERITY_PRIOR_INCIDENTS * city) / (count + SEVERITY_PRIOR_INCIDENTS)


def _calibrate(history: History, method: FittedMethod, selection: np.ndarray) -> None:
    """Expected value of a cell's week given its score: exp(a) (score + floor) ** b, a Poisson regression on
    the selection window (so last year's 52-week total becomes an expected week, shrunk as it should be)."""
    if not len(selection):
        return
    t, cells = _fit_rows(history, selection, rows=CALIBRATION_ROWS)
    raw = method.scores(selection)
    scores = raw[np.searchsorted(selection, t), cells]
    positive = scores[scores > 0]
    method.floor = float(np.quantile(positive, 0.01) * 0.5) if len(positive) else 1e-6
    y = history.target[t, cells]
    if not len(y) or y.sum() <= 0:
        return
    beta = poisson_irls(np.log(np.maximum(scores, 0.0) + method.floor)[:, None], y)
    method.calibration = (float(beta[0]), float(beta[1]))


def choose(history: History, fitted: dict, selection: np.ndarray) -> tuple[str, dict[str, float]]:
    """The method with the highest mean PAI at 5% on the selection window (ties: the simpler), and each one's.
    Last year's map stays unless the best beats it there by MIN_GAIN_OVER_NAIVE: a model that wins by a hair
    on one window is not worth a map commanders cannot check against last year's."""
    means = {name: _mean_pai(history, method.scores(selection), selection) for name, method in fitted.items()}
    chosen = None
    for name in fitted:  # METHODS order: simplest first, so a tie keeps the simpler
        if np.isfinite(means[name]) and (chosen is None or means[name] > means[chosen] + 1e-12):
            chosen = name
    naive = means.get("naive_last_year", float("nan"))
    if chosen and chosen != "naive_last_year" and np.isfinite(naive) and means[chosen] < naive * MIN_GAIN_OVER_NAIVE:
        chosen = "naive_last_year"
    return chosen or "naive_last_year", means


# ------------------------------------------------------------------------------------------ backtest
@dataclasses.dataclass
class Backtest:
    """Rolling weekly origins: every method scored on each week of the reported window."""

    chosen: str
    rows: pd.DataFrame  # method, coverage, hit_rate, pai, pei_star, rri, weeks (means over reported weeks)
    weekly: pd.DataFrame  # week, method, coverage, hit_rate, pai, pei_star, rri
    selection: pd.DataFrame  # method, mean PAI at 5% over the selection window
    parameters: dict  # method -> fitted parameters
    selection_window: tuple[dt.date, dt.date]  # first Monday, last Sunday
    reported_window: tuple[dt.date, dt.date]
    cell_m: float
    area_cells: int
    shift: str
    measure: str
    category: str | None
    district: str | None
    watched: pd.DataFrame | None = None  # week, method, cell_x, cell_y, rank, flagged (``watch=`` cells)

    def as_json(self) -> dict:
        return {
            "chosen": self.chosen,
            "rows": [
                {
                    "method": r.method,
                    "coverage": float(r.coverage),
                    "hit_rate": _finite(r.hit_rate),
                    "pai": _finite(r.pai),
                    "pei_star": _finite(r.pei_star),
                    "rri": _finite(r.rri),
                    "weeks": int(r.weeks),
                }
                for r in self.rows.itertuples()
            ],
            "selection": {
                "window": [str(self.selection_window[0]), str(self.selection_window[1])],
                "mean_pai_at_5pct": {r.method: _finite(r.pai) for r in self.selection.itertuples()},
            },
            "reported_window": [str(self.reported_window[0]), str(self.reported_window[1])],
            "parameters": self.parameters,
            "cell_m": self.cell_m,
            "area_cells": self.area_cells,
            "area": "grid cells with at least one located incident of any offence in the data loaded",
            "shift": self.shift,
            "measure": self.measure,
            "category": self.category,
            "district": self.district,
        }


def _finite(value) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def evaluate(history: History, fitted: dict, origins: np.ndarray, coverages=COVERAGES, area_cells=None) -> pd.DataFrame:
    """One row per (week, method, coverage) with hit_rate, pai, pei_star, rri."""
    frames = []
    if not len(origins):
        return pd.DataFrame(columns=["week", "method", "coverage", "hit_rate", "pai", "pei_star", "rri"])
    weeks = [history.data.week_date(t) for t in origins]
    actual = history.target[origins]
    oracle = oracle_catch(actual, [flagged_cells(c, area_cells or actual.shape[1]) for c in coverages])
    for name, method in fitted.items():
        scores = method.scores(origins)
        result = score_maps(scores, actual, coverages, method.expected(scores), area_cells, oracle)
        for coverage, metrics in result.items():
            frames.append(
                pd.DataFrame(
                    {
                        "week": weeks,
                        "method": name,
                        "coverage": coverage,
                        **{key: metrics[key] for key in ("hit_rate", "pai", "pei_star", "rri")},
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def summarise(weekly: pd.DataFrame) -> pd.DataFrame:
    """Means over weeks (with anything observed) per method and coverage, in METHODS order."""
    valid = weekly.dropna(subset=["hit_rate"])
    rows = (
        valid.groupby(["method", "coverage"], sort=False)[["hit_rate", "pai", "pei_star", "rri"]]
        .mean()
        .join(valid.groupby(["method", "coverage"], sort=False).size().rename("weeks"))
        .reset_index()
    )
    order = {name: i for i, name in enumerate(METHODS)}
    return rows.sort_values(
        ["method", "coverage"], key=lambda s: s.map(order) if s.name == "method" else s
    ).reset_index(drop=True)


def backtest(
    con,
    *,
    start: dt.date,
    end: dt.date,
    coverages: Sequence[float] = COVERAGES,
    category: str | None = None,
    shift: str = "all",
    cell_m: float = DEFAULT_CELL_METRES,
    measure: str = "count",
    district: str | None = None,
    selection_weeks: int = SELECTION_WEEKS,
    harm_index: str | None = None,
    harm_version: str | None = None,
    shift_hours: ShiftHours | None = None,
    methods: Sequence[str] = tuple(METHODS),
    data: CellWeeks | None = None,
    watch: Sequence[tuple[int, int]] = (),
    watch_coverage: float = SELECTION_COVERAGE,
) -> Backtest:
    """Score every method on each week from ``start`` to ``end`` (weeks whose Monday is on or after ``start``
    and whose Sunday is on or before ``end`` and within the data), fitted and chosen on the
    ``selection_weeks`` weeks before the first. ``watch``: cells (cell_x, cell_y) whose rank each method
    gives each week, and whether it is among the flagged ``watch_coverage`` of the area."""
    first = _as_date(start)
    first = first if first.weekday() == 0 else monday(first) + dt.timedelta(days=7)
    data = data or load_for_weeks(
        con,
        first_week=first,
        last_week=monday(_as_date(end)),
        selection_weeks=selection_weeks,
        category=category,
        district=district,
        cell_m=cell_m,
        harm_index=harm_index,
        harm_version=harm_version,
        shift_hours=shift_hours,
        include_future=True,
    )
    last_data = _last_data_day(con)
    last_sunday = min(_as_date(end), last_data) if last_data else _as_date(end)
    reported = [
        data.week_index(week)
        for week in pd.date_range(first, last_sunday - dt.timedelta(days=6), freq="7D").date
        if 0 <= data.week_index(week) < data.n_weeks
    ]
    if not reported:
        raise ForecastError(
            f"no complete week with data from {start} to {end} (the data ends {last_data}); choose dates inside it"
        )
    origins = np.asarray(reported, dtype=np.int64)
    selection = np.arange(max(0, origins[0] - selection_weeks), origins[0], dtype=np.int64)
    if len(selection) < 4:
        raise ForecastError(
            f"the selection window before {first} holds {len(selection)} weeks of data; a backtest needs at least "
            f"4 before its first week (start later)"
        )
    history = History(data, shift, measure)
    fitted = fit_methods(history, selection, methods)
    chosen, means = choose(history, fitted, selection)
    weekly = evaluate(history, fitted, origins, coverages, data.n_cells)
    return Backtest(
        chosen=chosen,
        rows=summarise(weekly),
        weekly=weekly,
        selection=pd.DataFrame({"method": list(means), "pai": list(means.values())}),
        parameters={name: method.parameters for name, method in fitted.items()},
        selection_window=(data.week_date(selection[0]), data.week_date(selection[-1]) + dt.timedelta(days=6)),
        reported_window=(data.week_date(origins[0]), data.week_date(origins[-1]) + dt.timedelta(days=6)),
        cell_m=data.grid.cell_m,
        area_cells=data.n_cells,
        shift=shift,
        measure=measure,
        category=category,
        district=district,
        watched=_watch(history, fitted, origins, watch, watch_coverage) if watch else None,
    )


def _watch(history: History, fitted: dict, origins: np.ndarray, watch, coverage: float) -> pd.DataFrame:
    data = history.data
    lookup = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(data.cell_x, data.cell_y))}
    k = flagged_cells(coverage, data.n_cells)
    rows = []
    for name, method in fitted.items():
        scores = method.scores(origins)
        for row, t in enumerate(origins):
            for x, y in watch:
                index = lookup.get((int(x), int(y)))
                rank = None if index is None else int((scores[row] > scores[row, index]).sum()) + 1
                rows.append(
                    {
                        "week": data.week_date(t),
                        "method": name,
                        "cell_x": int(x),
                        "cell_y": int(y),
                        "rank": rank,
                        "flagged": rank is not None and scores[row, index] > 0 and rank <= k,
                    }
                )
    return pd.DataFrame(rows)


def _last_data_day(con) -> dt.date | None:
    value = con.execute("SELECT max(occurred_at)::DATE FROM incidents").fetchone()[0]
    return _as_date(value) if value is not None else None


def _harm_default(con, harm_index: str | None, harm_version: str | None) -> tuple[str, str]:
    if harm_index and harm_version:
        return harm_index, harm_version
    row = con.execute(
        "SELECT index_name, version FROM harm_indices WHERE (? IS NULL OR index_name = ?) "
        "ORDER BY is_default DESC, version DESC LIMIT 1",
        [harm_index, harm_index],
    ).fetchone()
    if row is None:
        raise ForecastError(f"no harm index {harm_index!r} in this warehouse (`ilp status` lists them)")
    return row[0], row[1]


def grid_of(con, cell_m: float = DEFAULT_CELL_METRES) -> Grid:
    """The deployment grid at ``cell_m`` for this warehouse's city (hotspots.grid_for, its median latitude)."""
    if not (MIN_CELL_METRES <= float(cell_m) <= MAX_CELL_METRES):
        raise ForecastError(f"cell size {cell_m:g} m is outside {MIN_CELL_METRES:g}-{MAX_CELL_METRES:g} m")
    return grid_for(_median_latitude(con), float(cell_m))


_LATITUDES: dict[str, float | None] = {}  # read-only snapshot file -> its median latitude (a snapshot never changes)


def _median_latitude(con) -> float | None:
    """The median latitude of the located incidents (deployment_reference), remembered per read-only snapshot
    file: a scan of every incident (0.6 s at 10M) that every live forecast would otherwise repeat."""
    mode, path = con.execute(
        "SELECT current_setting('access_mode'), (SELECT path FROM duckdb_databases() "
        "WHERE database_name = current_database())"
    ).fetchone()
    if mode == "read_only" and path in _LATITUDES:
        return _LATITUDES[path]
    latitude = run_query(con, "deployment_reference", {"district": None})["median_latitude"].iloc[0]
    latitude = None if pd.isna(latitude) else float(latitude)
    if mode == "read_only" and path:
        _LATITUDES[path] = latitude
    return latitude


def load_for_weeks(
    con,
    *,
    first_week: dt.date,
    last_week: dt.date,
    selection_weeks: int,
    category: str | None = None,
    district: str | None = None,
    cell_m: float = DEFAULT_CELL_METRES,
    harm_index: str | None = None,
    harm_version: str | None = None,
    shift_hours: ShiftHours | None = None,
    include_future: bool = False,
    include_proactive: bool = False,
) -> CellWeeks:
    """The arrays a run needs: from ``FEATURE_WEEKS`` before its selection window to ``last_week`` (that week
    itself only with ``include_future``, for scoring; a live forecast loads nothing from its own week)."""
    harm_index, harm_version = _harm_default(con, harm_index, harm_version)
    _check_category(con, category)
    start = first_week - dt.timedelta(weeks=selection_weeks + FEATURE_WEEKS)
    end = last_week + dt.timedelta(weeks=1 if include_future else 0)
    return load_cell_weeks(
        con,
        start=start,
        end=end,
        grid=grid_of(con, cell_m),
        category=category,
        district=district,
        harm_index=harm_index,
        harm_version=harm_version,
        include_proactive=include_proactive,
        shift_hours=shift_hours,
    )


def _check_category(con, category: str | None) -> None:
    if category is None:
        return
    # the categories with incidents, as the sidebar lists them (read from the snapshot's summary, not a scan)
    known = sorted(run_query(con, "snapshot_categories")["category"])
    if category not in known:
        raise ForecastError(f"no incidents of category {category!r} in this warehouse; categories: {', '.join(known)}")


def format_backtest(result: Backtest) -> str:
    """The backtest as a table for a person, with the choice and its window."""
    lines = [
        f"Hot-spot backtest: {result.reported_window[0]} to {result.reported_window[1]} "
        f"({int(result.rows['weeks'].max()) if len(result.rows) else 0} weekly origins), "
        f"{result.category or 'all offences'}, {SHIFT_LABELS.get(result.shift, result.shift).lower()}, "
        f"{result.measure}-weighted, {result.cell_m:g} m cells, study area {result.area_cells:,} cells.",
        f"Chosen on the selection window {result.selection_window[0]} to {result.selection_window[1]} "
        f"(mean PAI at {SELECTION_COVERAGE:.0%}): {result.chosen}.",
        "",
        f"{'method':<22}{'coverage':>9}{'hit rate':>10}{'PAI':>8}{'PEI*':>7}{'RRI':>7}{'weeks':>7}",
    ]
    for r in result.rows.itertuples():
        mark = " *" if r.method == result.chosen else ""
        lines.append(
            f"{r.method:<22}{r.coverage:>9.0%}{r.hit_rate:>10.3f}{r.pai:>8.2f}{r.pei_star:>7.2f}{r.rri:>7.2f}"
            f"{int(r.weeks):>7}{mark}"
        )
    lines.append("")
    lines.append(
        "Hit rate: share of the week's incidents in the flagged cells; PAI: hit rate / share of the area flagged; "
        "PEI*: catch / the catch of the week's busiest cells; RRI: predicted / observed share. * = chosen."
    )
    for name, parameters in result.parameters.items():
        shown = {k: v for k, v in parameters.items() if k not in ("coefficients", "features")}
        if shown:
            lines.append(f"  {name}: {json.dumps(shown, default=str)}")
    return "\n".join(lines)


def parse_coverages(text: str | None) -> tuple[float, ...]:
    if not text:
        return COVERAGES
    try:
        values = tuple(float(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ForecastError(f"--coverage {text!r}: give shares of the area, e.g. 0.01,0.05,0.10") from None
    if not values or any(not (0 < v <= 1) for v in values):
        raise ForecastError(f"--coverage {text!r}: every share must be above 0 and at most 1, e.g. 0.05")
    return values


# ------------------------------------------------------------------------------------------ live forecast
@dataclasses.dataclass
class Forecast:
    """Next week's map for one shift: every cell of the study area ranked, with the method's track record.

    ``cells``: cell_x, cell_y, score (the method's ranking score), expected (calibrated expected count or
    harm in the week), low and high (the interval ``INTERVAL``: where 90% of cell-weeks forecast alike fell
    over the evaluation window), best first. ``evaluation``: every method's mean hit rate, PAI, PEI* and RRI
    over the evaluation window, fitted and chosen on the selection window before it.
    """

    week: dt.date
    shift: str
    measure: str
    method: str
    parameters: dict
    cells: pd.DataFrame
    evaluation: pd.DataFrame
    weekly: pd.DataFrame
    selection: dict  # method -> mean PAI at 5% on the selection window
    selection_window: tuple[dt.date, dt.date] | None
    evaluation_window: tuple[dt.date, dt.date] | None
    area_cells: int
    cell_m: float
    lat_ref: float
    category: str | None
    district: str | None
    harm_index: str
    harm_version: str
    shift_hours: str
    include_proactive: bool = False
    chosen_by: str = "selection"  # 'selection' (highest PAI there), 'fixed' (asked for), 'too little history'

    @property
    def method_info(self) -> MethodInfo:
        return METHODS[self.method]

    def pai(self, method: str, coverage: float = SELECTION_COVERAGE) -> float:
        row = self.evaluation[(self.evaluation["method"] == method) & np.isclose(self.evaluation["coverage"], coverage)]
        return float(row["pai"].iloc[0]) if len(row) else float("nan")

    @property
    def expected_total(self) -> float:
        return float(self.cells["expected"].sum())

    def top(self, n: int) -> pd.DataFrame:
        return self.cells.head(max(0, int(n)))

    def record(self, n_cells: int, *, source: str, snapshot: str) -> dict:
        """What app state keeps of this forecast (``State.record_forecast``): its settings and top cells."""
        top = self.top(n_cells)
        return {
            "week": self.week.isoformat(),
            "shift": self.shift,
            "category": self.category,
            "district": self.district,
            "measure": self.measure,
            "method": self.method,
            "parameters": {
                **self.parameters,
                "chosen_by": self.chosen_by,
                "selection_window": [str(d) for d in self.selection_window] if self.selection_window else None,
                "selection_mean_pai_at_5pct": {k: _finite(v) for k, v in self.selection.items()},
                "shift_hours": self.shift_hours,
                "include_proactive": self.include_proactive,
            },
            "cell_m": self.cell_m,
            "lat_ref": self.lat_ref,
            "harm_index": self.harm_index,
            "harm_version": self.harm_version,
            "area_cells": self.area_cells,
            "expected_total": self.expected_total,
            "source": source,
            "snapshot": snapshot,
            "cells": [
                (int(i + 1), int(r.cell_x), int(r.cell_y), float(r.expected), float(r.low), float(r.high))
                for i, r in enumerate(top.itertuples())
            ],
        }


def _windows(available: int, selection_weeks: int, evaluation_weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """(selection origins, evaluation origins) before the forecast week ``available`` (its index)."""
    if available >= selection_weeks + evaluation_weeks:
        evaluation = np.arange(available - evaluation_weeks, available)
        selection = np.arange(evaluation[0] - selection_weeks, evaluation[0])
    else:  # a short history: half to choose on, half to report
        cut = available - available // 2
        selection, evaluation = np.arange(max(0, cut - selection_weeks), cut), np.arange(cut, available)
    return selection.astype(np.int64), evaluation.astype(np.int64)


def _forecast_shift(
    data: CellWeeks,
    shift: str,
    measure: str,
    *,
    method: str | None,
    selection_weeks: int,
    evaluation_weeks: int,
) -> Forecast:
    week_index = data.n_weeks  # the forecast week: one past the last week loaded
    first_data = _first_week_with_data(data)
    available = week_index - first_data
    if available < MIN_HISTORY_WEEKS:
        raise ForecastError(
            f"only {max(available, 0)} weeks of located incidents before {data.week_date(week_index)}; a forecast "
            f"needs at least {MIN_HISTORY_WEEKS}"
        )
    selection, evaluation = _windows(available, selection_weeks, evaluation_weeks)
    selection, evaluation = selection + first_data, evaluation + first_data
    history = History(data, shift, measure)
    # a method given: fit it and the baselines it is measured against, not the others
    names = tuple(METHODS) if method is None else tuple(dict.fromkeys((*BASELINES, method)))
    fitted = fit_methods(history, selection, names)
    if method is not None:
        if method not in METHODS:
            raise ForecastError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
        chosen, means, chosen_by = method, choose(history, fitted, selection)[1], "fixed"
    else:
        chosen, means = choose(history, fitted, selection)
        chosen_by = "selection"
    weekly = evaluate(history, fitted, evaluation, COVERAGES, data.n_cells)
    model = fitted[chosen]
    score = model.scores(np.array([week_index]))[0]
    expected = model.expected(score)
    low, high = _interval(history, model, evaluation, expected)
    order = flag_order(score, history.window("area", week_index, FEATURE_WEEKS))
    cells = pd.DataFrame(
        {
            "cell_x": data.cell_x[order],
            "cell_y": data.cell_y[order],
            "score": score[order],
            "expected": expected[order],
            "low": low[order],
            "high": high[order],
        }
    )
    return Forecast(
        week=data.week_date(week_index),
        shift=shift,
        measure=measure,
        method=chosen,
        parameters=model.parameters,
        cells=cells,
        evaluation=summarise(weekly),
        weekly=weekly,
        selection=means,
        selection_window=(data.week_date(selection[0]), data.week_date(selection[-1]) + dt.timedelta(days=6)),
        evaluation_window=(data.week_date(evaluation[0]), data.week_date(evaluation[-1]) + dt.timedelta(days=6)),
        area_cells=data.n_cells,
        cell_m=data.grid.cell_m,
        lat_ref=data.grid.lat_ref,
        category=data.category,
        district=data.district,
        harm_index=data.harm_index,
        harm_version=data.harm_version,
        shift_hours=data.shift_hours.text(),
        include_proactive=data.include_proactive,
        chosen_by=chosen_by,
    )


def _first_week_with_data(data: CellWeeks) -> int:
    return int(data.row_week.min()) if len(data.row_week) else data.n_weeks


def _interval(history: History, model: FittedMethod, evaluation: np.ndarray, expected: np.ndarray):
    """Per cell, (low, high): the forecast times the 5th and 95th percentiles of realised / forecast among the
    evaluation window's cell-weeks forecast alike (the busiest 10% of cells each week, in ten bands)."""
    scores = model.scores(evaluation)
    predicted = model.expected(scores)
    actual = history.target[evaluation]
    k = flagged_cells(0.10, history.data.n_cells)
    threshold = np.partition(predicted, predicted.shape[1] - k, axis=1)[:, predicted.shape[1] - k][:, None]
    pick = predicted >= threshold
    p, a = predicted[pick], actual[pick]
    if len(p) < 20 or p.max() <= 0:
        return expected * 0.0, expected * 3.0
    edges = np.unique(np.quantile(p, np.linspace(0, 1, 11)))
    band = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    ratio = a / np.maximum(p, 1e-12)
    bands = max(len(edges) - 1, 1)
    low_ratio, high_ratio = np.zeros(bands), np.zeros(bands)
    for b in range(bands):
        inside = ratio[band == b] if (band == b).any() else ratio
        low_ratio[b], high_ratio[b] = np.quantile(inside, INTERVAL)
    cell_band = np.clip(np.searchsorted(edges, expected, side="right") - 1, 0, bands - 1)
    return expected * low_ratio[cell_band], expected * high_ratio[cell_band]


def forecast_hotspots(
    con,
    *,
    week: dt.date,
    shifts: Sequence[str] = SHIFTS,
    category: str | None = None,
    district: str | None = None,
    measure: str = "harm",
    cell_m: float = DEFAULT_CELL_METRES,
    harm_index: str | None = None,
    harm_version: str | None = None,
    shift_hours: ShiftHours | None = None,
    method: str | None = None,
    include_proactive: bool = False,
    selection_weeks: int = LIVE_SELECTION_WEEKS,
    evaluation_weeks: int = LIVE_EVALUATION_WEEKS,
    data: CellWeeks | None = None,
) -> dict[str, Forecast]:
    """The forecast of the week starting ``week`` (a Monday) for each shift, from data strictly before it."""
    week = _as_date(week)
    if week.weekday() != 0:
        raise ForecastError(f"--week {week} is a {week:%A}; forecasts are for weeks starting on a Monday")
    data = data or load_for_weeks(
        con,
        first_week=week - dt.timedelta(weeks=evaluation_weeks),
        last_week=week,
        selection_weeks=selection_weeks,
        category=category,
        district=district,
        cell_m=cell_m,
        harm_index=harm_index,
        harm_version=harm_version,
        shift_hours=shift_hours,
        include_proactive=include_proactive,
    )
    if data.n_cells == 0:
        raise ForecastError(f"no located incidents before {week}: nothing to forecast from")

    def one(shift: str) -> Forecast:
        return _forecast_shift(
            data, shift, measure, method=method, selection_weeks=selection_weeks, evaluation_weeks=evaluation_weeks
        )

    if len(shifts) == 1:
        return {shifts[0]: one(shifts[0])}
    # The shifts share the all-hours sums and the neighbour matrix: build them first, then run the shifts in
    # threads (numpy and scipy release the GIL, so two cores forecast two shifts at once).
    shared = History(data, "all", "count")
    shared.running("area"), shared.running("every_hour"), data.ring_matrix
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(shifts)) as pool:  # all at once: 3 shifts on 2 cores leave none idle
        return dict(zip(shifts, pool.map(one, shifts)))


def next_week(con, today: dt.date | None = None) -> dt.date | None:
    """The Monday after the last week complete in the data (and the calendar): the week to forecast."""
    from ilp.snapshot import last_complete_week

    last = _last_data_day(con)
    if last is None:
        return None
    return last_complete_week(last, today) + dt.timedelta(weeks=1)


# ------------------------------------------------------------------------------------------ the plan
@dataclasses.dataclass
class Plan:
    """What the Deployment page's "Next week" view shows for one shift: the harm forecast (which chose the
    method), the count forecast of the same method, and the top cells described. A category that carries no
    harm (a proactive one) is ranked by count instead: ``ranked_by`` says which, and ``harm`` is then the
    count forecast."""

    harm: Forecast
    count: Forecast
    cells: pd.DataFrame  # the top MAX_PLAN_COVERAGE of cells, best first, described (see plan_cells)
    snapshot: str
    ranked_by: str = "harm"

    @property
    def forecast(self) -> Forecast:
        return self.harm

    def sentence(self) -> str:
        """The method and its measured PAI against last year's map, for a commander's five seconds."""
        f = self.harm
        what = "harm" if self.ranked_by == "harm" else "incidents"
        chosen, naive = f.pai(f.method), f.pai("naive_last_year")
        window = f.evaluation_window
        weeks = int(f.evaluation.loc[f.evaluation["method"] == f.method, "weeks"].max()) if len(f.evaluation) else 0
        if not (math.isfinite(chosen) and math.isfinite(naive) and naive > 0):
            return f"Method in use: {f.method_info.words}. Too few weeks of data to measure it against last year's map."
        if f.method == "naive_last_year":
            return (
                f"Method in use: last year's map. No other method beat it on the weeks before "
                f"{window[0]:%d %b %Y}, so the plan keeps it (over the last {weeks} weeks its top 5% of cells held "
                f"{what} at {chosen:.1f}x the area-wide rate per km²)."
            )
        ratio = chosen / naive
        how = f"{ratio:.1f}x more" if ratio >= 1.05 else ("about as much" if ratio > 0.95 else f"{ratio:.1f}x as much")
        return (
            f"Method in use: {f.method_info.words}. Over the last {weeks} weeks this map found {how} {what} per km² "
            f"than last year's map would have (PAI {chosen:.1f} against {naive:.1f}, top 5% of cells each week)."
        )


MAX_PLAN_COVERAGE = 0.10


def load_plan_window(con, *, week: dt.date, shift_hours: ShiftHours, **filters) -> CellWeeks:
    """The cell-weeks a plan for ``week`` is chosen and fitted on: the live evaluation and selection windows before
    it (``next_week_plan``, and ``prepare_page_defaults`` sharing one load between the shifts)."""
    return load_for_weeks(
        con,
        first_week=week - dt.timedelta(weeks=LIVE_EVALUATION_WEEKS),
        last_week=week,
        selection_weeks=LIVE_SELECTION_WEEKS,
        shift_hours=shift_hours,
        **filters,
    )


def next_week_plan(
    con,
    *,
    week: dt.date,
    shift: str,
    category: str | None = None,
    district: str | None = None,
    harm_index: str | None = None,
    harm_version: str | None = None,
    cell_m: float = DEFAULT_CELL_METRES,
    shift_hours_text: str | None = None,
    include_proactive: bool = False,
    data: CellWeeks | None = None,
) -> Plan:
    """The plan for the week starting ``week``: harm forecast (choosing the method), count forecast of the same
    method, and the top 10% of cells with their place, nearest block and the offences behind them. ``data``:
    the cell-weeks these parameters load (``load_for_weeks``), when the caller has them already (several
    shifts of one week share them)."""
    shift_hours = ShiftHours.parse(shift_hours_text)
    week = _as_date(week)
    data = data or load_plan_window(
        con,
        week=week,
        category=category,
        district=district,
        cell_m=cell_m,
        harm_index=harm_index,
        harm_version=harm_version,
        shift_hours=shift_hours,
        include_proactive=include_proactive,
    )
    ranked_by = "harm" if data.row_harm.sum() > 0 else "count"  # a proactive category carries no harm
    primary = forecast_hotspots(con, week=week, shifts=(shift,), measure=ranked_by, data=data)[shift]
    count = (
        primary
        if ranked_by == "count"
        else forecast_hotspots(con, week=week, shifts=(shift,), measure="count", method=primary.method, data=data)[
            shift
        ]
    )
    top = primary.top(flagged_cells(MAX_PLAN_COVERAGE, primary.area_cells))
    if ranked_by == "count":
        top = top.assign(expected=0.0, low=0.0, high=0.0)
    described = plan_cells(con, top, count, data, shift, week)
    from ilp.warehouse import read_meta

    return Plan(
        harm=primary, count=count, cells=described, snapshot=read_meta(con).get("version", "?"), ranked_by=ranked_by
    )


def prepare_page_defaults(con, today: dt.date | None = None):
    """What the Next-week plan page (pages/deployment_forecast.py) computes when it opens with the sidebar's
    defaults, as (function, parameters, result): the plan of every shift it offers for the week after the last
    complete week (all districts and categories, the first harm index, the default cell size) and the
    near-repeat alerts beside it. Run when a snapshot is written (``ilp.stored_analyses``): the parameters
    are exactly the page's, so its first visitor reads the stored result instead of waiting for the fit."""
    from ilp.analytics.near_repeat import near_repeat_alerts
    from ilp.snapshot import SnapshotInfo

    info = SnapshotInfo.read(con)
    default_week = info.default_week(today)
    if default_week is None or not info.has_coordinates or not info.harm_indices:
        return []
    week = default_week + dt.timedelta(weeks=1)
    harm_index, harm_version = info.harm_indices[0].key.split(":", 1)
    shifts = SHIFT_SCOPES if info.time_precision == "exact" else ("all",)
    common = {
        "week": week,
        "category": None,
        "district": None,
        "harm_index": harm_index,
        "harm_version": harm_version,
        "cell_m": float(DEFAULT_CELL_METRES),
    }
    try:
        data = load_plan_window(
            con,
            week=week,
            category=None,
            district=None,
            cell_m=DEFAULT_CELL_METRES,
            harm_index=harm_index,
            harm_version=harm_version,
            shift_hours=ShiftHours.parse(None),
        )
        plans = []
        for shift in shifts:
            plans.append((shift, next_week_plan(con, shift=shift, data=data, **common)))
            data._cache.clear()  # a shift's (weeks x cells) arrays: rebuilt on demand, not held for the next
    except ForecastError:
        return []  # too little history: the page says so at once, live
    results = [(next_week_plan, {**common, "shift": shift}, plan) for shift, plan in plans]
    forecast = plans[0][1].harm  # every shift has the same grid
    alerts_parameters = {
        "week": week,
        "cell_m": float(forecast.cell_m),
        "lat_ref": float(forecast.lat_ref),
        "district": None,
    }
    results.append((near_repeat_alerts, alerts_parameters, near_repeat_alerts(con, **alerts_parameters)))
    return results


def plan_cells(con, top: pd.DataFrame, count: Forecast, data: CellWeeks, shift: str, week: dt.date) -> pd.DataFrame:
    """The top cells of a harm forecast with rank, centre, expected count (same method), beat, district,
    nearest block (never a sensitive or domestic offence's) and the offences behind the last 52 weeks' harm."""
    grid = data.grid
    out = top.reset_index(drop=True).rename(
        columns={"expected": "expected_harm", "low": "harm_low", "high": "harm_high"}
    )
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    counts = count.cells.set_index(["cell_x", "cell_y"])[["expected", "low", "high"]]
    joined = counts.reindex(pd.MultiIndex.from_frame(out[["cell_x", "cell_y"]]))
    out["expected_count"] = joined["expected"].to_numpy()
    out["count_low"] = joined["low"].to_numpy()
    out["count_high"] = joined["high"].to_numpy()
    lat, lon = grid.centre(out["cell_x"], out["cell_y"])
    out["centre_lat"], out["centre_lon"] = np.round(lat, 5), np.round(lon, 5)
    out["cell"] = [f"{a:.4f}, {b:.4f}" for a, b in zip(out["centre_lat"], out["centre_lon"])]
    since = week - dt.timedelta(weeks=52)
    params = {
        "start": since,
        "end": week,
        "district": data.district,
        "shift": shift,
        "harm_index": data.harm_index,
        "harm_version": data.harm_version,
        "include_proactive": data.include_proactive,
        **grid.params(),
        **data.shift_hours.params(),
    }
    places = run_query(con, "hotspot_cell_places", params)
    out = out.merge(places, on=["cell_x", "cell_y"], how="left")
    offences = run_query(con, "hotspot_cell_offences", params)
    if data.category is not None:
        offences = offences[offences["category"] == data.category]
    plan_keys = pd.MultiIndex.from_frame(out[["cell_x", "cell_y"]])
    offences = offences[pd.MultiIndex.from_frame(offences[["cell_x", "cell_y"]]).isin(plan_keys)]
    out["offences"] = _drivers(offences).reindex(plan_keys).fillna("").to_numpy()
    return out


def _drivers(offences: pd.DataFrame, top: int = 3) -> pd.Series:
    """Per cell (index cell_x, cell_y): 'Robbery 12 (harm 4,380), Violence with injury 9 (3,285)', the ``top``
    offences with most harm in the cell (then most incidents; ties keep the query's order, by category)."""
    ranked = offences.sort_values(["harm", "incidents"], ascending=False, kind="stable")
    first = ranked.groupby(["cell_x", "cell_y"], sort=False).head(top)
    parts = [
        f"{label} {int(n)}" + (f" (harm {harm:,.0f})" if harm else "")
        for label, n, harm in zip(first["label"], first["incidents"], first["harm"])
    ]
    cells = pd.MultiIndex.from_frame(first[["cell_x", "cell_y"]])
    return pd.Series(parts, index=cells, dtype=object).groupby(level=[0, 1], sort=False).agg(", ".join)


PLAN_COLUMNS = {
    "rank": "rank",
    "cell": "cell_centre_lat_lon",
    "centre_lat": "centre_lat",
    "centre_lon": "centre_lon",
    "block": "nearest_block",
    "beat": "beat",
    "district": "district",
    "expected_harm": "expected_harm",
    "harm_low": "harm_low_90pct",
    "harm_high": "harm_high_90pct",
    "expected_count": "expected_incidents",
    "count_low": "incidents_low_90pct",
    "count_high": "incidents_high_90pct",
    "offences": "offences_last_52_weeks",
}


def plan_table(plan: Plan, n_cells: int) -> pd.DataFrame:
    """The plan's first ``n_cells`` rows as exported (CSV), rounded, with plain column names."""
    table = plan.cells.head(n_cells)[[c for c in PLAN_COLUMNS if c in plan.cells.columns]].rename(columns=PLAN_COLUMNS)
    for column in ("expected_harm", "harm_low_90pct", "harm_high_90pct"):
        table[column] = table[column].round(1)
    for column in ("expected_incidents", "incidents_low_90pct", "incidents_high_90pct"):
        table[column] = table[column].round(2)
    return table


def plan_geojson(plan: Plan, n_cells: int, *, title: str = "") -> bytes:
    """The plan's first ``n_cells`` cells as a GeoJSON FeatureCollection of square polygons (WGS84)."""
    table = plan_table(plan, n_cells)
    top = plan.cells.head(n_cells)
    rings = Grid(plan.harm.cell_m, plan.harm.lat_ref).polygons(top["cell_x"], top["cell_y"])
    features = []
    for ring, record in zip(rings, table.to_dict(orient="records")):
        properties = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        features.append(
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": properties}
        )
    f = plan.harm
    collection = {
        "type": "FeatureCollection",
        "name": title or f"Patrol plan, week of {f.week}",
        "properties": {
            "week": str(f.week),
            "shift": f.shift,
            "category": f.category,
            "district": f.district,
            "method": f.method,
            "cell_m": f.cell_m,
            "harm_index": f"{f.harm_index}:{f.harm_version}",
            "snapshot": plan.snapshot,
        },
        "features": features,
    }
    return json.dumps(collection, ensure_ascii=False, default=str).encode("utf-8")


def cells_sha256(cells: Sequence[tuple]) -> str:
    """A digest of a recorded forecast's cells (rank, cell_x, cell_y, expected rounded), kept in the audit log."""
    text = "\n".join(f"{c[0]},{c[1]},{c[2]},{c[3]:.6g}" for c in cells)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------------ the scoreboard
def issue(
    con,
    state,
    *,
    week: dt.date,
    by: str,
    source: str,
    shifts: Sequence[str] = SHIFTS,
    role: str | None = None,
    **options,
) -> list[tuple[int, Forecast]]:
    """Forecast the week for each shift and record each in app state (top 10% of cells), audited."""
    from ilp.warehouse import read_meta

    snapshot = read_meta(con).get("version", "?")
    forecasts = forecast_hotspots(con, week=week, shifts=shifts, **options)
    issued = []
    for forecast in forecasts.values():
        record = forecast.record(
            flagged_cells(MAX_PLAN_COVERAGE, forecast.area_cells), source=source, snapshot=snapshot
        )
        issued.append((state.record_forecast(record, by=by, role=role), forecast))
    return issued


def score_recorded(con, state, *, by: str) -> list[dict]:
    """Score every recorded forecast whose week now has data (its Sunday is on or before the data's last day),
    with the two naive baselines on the same week and number of cells. Each is scored once."""
    from ilp.warehouse import read_meta

    last_day = _last_data_day(con)
    due = state.forecasts(unscored=True)
    if last_day is None or due.empty:
        return []
    due["week"] = pd.to_datetime(due["week"]).dt.date
    due = due[due["week"] + dt.timedelta(days=6) <= last_day]
    snapshot = read_meta(con).get("version", "?")
    results = []
    group_keys = ["category", "district", "cell_m", "lat_ref", "harm_index", "harm_version", "shift_hours", "proactive"]
    parameters = due["parameters"].map(json.loads)
    due = due.assign(
        shift_hours=parameters.map(lambda p: p.get("shift_hours") or ShiftHours().text()),
        proactive=parameters.map(lambda p: bool(p.get("include_proactive"))),
    )
    for key, group in due.groupby(group_keys, dropna=False, sort=False):
        category, district, cell_m, lat_ref, harm_index, harm_version, hours, proactive = (
            None if isinstance(v, float) and math.isnan(v) else v for v in key
        )
        data = load_cell_weeks(
            con,
            start=min(group["week"]) - dt.timedelta(weeks=52),
            end=max(group["week"]) + dt.timedelta(weeks=1),
            grid=Grid(float(cell_m), float(lat_ref)),
            category=category,
            district=district,
            harm_index=harm_index,
            harm_version=harm_version,
            include_proactive=bool(proactive),
            shift_hours=ShiftHours.parse(hours),
        )
        for row in group.itertuples():
            rows = _score_one(data, row, state.forecast_cells(row.id))
            if state.record_forecast_scores(int(row.id), rows, by=by, data_version=snapshot):
                issued = {r["coverage"]: r for r in rows if r["map"] == "issued"}
                results.append(
                    {
                        "forecast_id": int(row.id),
                        "week": str(row.week),
                        "shift": row.shift,
                        "method": row.method,
                        "measure": row.measure,
                        "scores": rows,
                        "pai": {str(c): r["pai"] for c, r in issued.items()},
                    }
                )
    return results


def _score_one(data: CellWeeks, forecast, cells: pd.DataFrame) -> list[dict]:
    """Hit rate, PAI, PEI* and RRI of a recorded forecast and of the naive baselines on its week."""
    history = History(data, forecast.shift, forecast.measure)
    t = data.week_index(forecast.week)
    lookup = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(data.cell_x, data.cell_y))}
    actual = history.target[t] if 0 <= t < data.n_weeks else np.zeros(data.n_cells)
    total = float(actual.sum())
    area = int(forecast.area_cells)
    realised = np.array(
        [actual[lookup[(x, y)]] if (x, y) in lookup else 0.0 for x, y in zip(cells.cell_x, cells.cell_y)]
    )
    if forecast.source == "download":
        coverages = [len(cells) / area]
    else:
        coverages = [c for c in COVERAGES if flagged_cells(c, area) <= len(cells)] or [len(cells) / area]
    baselines = {
        "naive_last_year": history.window("target", t, 52),
        "naive_last_4_weeks": history.window("target", t, 4),
    }
    rows = []
    for coverage in coverages:
        k = min(flagged_cells(coverage, area), len(cells))
        best = float(_top_k_values(actual[None, :], min(k, data.n_cells))[0]) if data.n_cells else 0.0
        caught = float(realised[:k].sum())
        predicted_share = (
            float(cells["expected"].head(k).sum()) / forecast.expected_total
            if forecast.expected_total
            else float("nan")
        )
        rows.append(_score_row("issued", forecast.method, coverage, k, caught, total, best, area, predicted_share))
        for name, scores in baselines.items():
            (caught_naive,) = _top_k(scores[None, :], min(k, data.n_cells), actual[None, :])
            rows.append(_score_row(name, name, coverage, k, float(caught_naive[0]), total, best, area, float("nan")))
    return rows


def _score_row(map_name, method, coverage, k, caught, total, best, area, predicted_share) -> dict:
    hit = caught / total if total > 0 else float("nan")
    return {
        "map": map_name,
        "method": method,
        "coverage": round(float(coverage), 6),
        "cells": int(k),
        "observed_in_cells": caught,
        "observed_total": total,
        "hit_rate": _finite(hit),
        "pai": _finite(hit / (k / area)) if total > 0 and area else None,
        "pei_star": _finite(caught / best) if best > 0 else None,
        "rri": _finite(predicted_share / hit) if hit and math.isfinite(predicted_share) else None,
    }


def scoreboard(frame: pd.DataFrame, coverage: float = SELECTION_COVERAGE) -> pd.DataFrame:
    """Week by week per map ('issued' and the two naive baselines): hit rate and PAI of the first forecast
    issued for each week (later re-issues of the same week are left out), with the running mean of PAI and
    its 95% interval (t). ``frame`` is ``State.forecast_scoreboard()`` filtered to one shift/scope."""
    if frame.empty:
        return pd.DataFrame(
            columns=["week", "map", "method", "hit_rate", "pai", "running_pai", "running_low", "running_high", "weeks"]
        )
    from scipy import stats

    chosen = frame[np.isclose(frame["coverage"], coverage)]
    if chosen.empty:  # downloaded plans are scored at their own coverage: take each forecast's
        chosen = frame
    first = chosen.sort_values(["issued_at", "forecast_id"]).drop_duplicates(["week", "map"], keep="first")
    first = first.sort_values(["map", "week"]).reset_index(drop=True)
    out = []
    for _, group in first.groupby("map", sort=False):
        group = group.copy()
        values = group["pai"].astype(float)
        n = values.expanding().count()
        mean = values.expanding().mean()
        sd = values.expanding().std()
        half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
        group["running_pai"] = mean
        group["running_low"] = mean - half
        group["running_high"] = mean + half
        group["weeks"] = n.astype(int)
        out.append(group)
    keep = [
        "week",
        "map",
        "method",
        "coverage",
        "hit_rate",
        "pai",
        "running_pai",
        "running_low",
        "running_high",
        "weeks",
    ]
    return pd.concat(out, ignore_index=True)[keep]


def after_ingest(warehouse, *, today: dt.date | None = None, by: str | None = None) -> dict:
    """Run at the end of a successful ingest: score recorded forecasts whose week now has data, then forecast
    the week after the data's last complete week for every shift (once per week) and record it. Cheap when
    there is too little history (nothing is touched), and never raises: a failure is reported in the result."""
    import getpass

    from ilp.state import State, state_path

    by = by or f"{getpass.getuser()} (ilp ingest)"
    result: dict = {"week": None, "issued": [], "scored": 0, "note": None, "error": None}
    try:
        con = warehouse.connect()
        try:
            week = next_week(con, today)
            if week is None:
                result["note"] = "no incidents: no hot-spot forecast"
                return result
            result["week"] = str(week)
            first = con.execute(
                "SELECT min(occurred_at)::DATE FROM incidents WHERE location_status = 'ok' AND occurred_at < ?", [week]
            ).fetchone()[0]
            state_file = state_path(warehouse.directory)
            import os

            has_state = bool(os.environ.get("ILP_STATE")) or state_file.exists()
            if has_state:
                state = State.for_warehouse(warehouse.directory)
                result["scored"] = len(score_recorded(con, state, by=by))
            if first is None or (week - _as_date(first)).days < 7 * MIN_HISTORY_WEEKS:
                result["note"] = f"fewer than {MIN_HISTORY_WEEKS} weeks of located incidents: no hot-spot forecast"
                return result
            state = State.for_warehouse(warehouse.directory)
            if not has_state:
                result["scored"] = len(score_recorded(con, state, by=by))
            done = state.forecasts()
            already = done[
                (done["week"] == str(week))
                & done["category"].isna()
                & done["district"].isna()
                & (done["measure"] == "harm")
                & done["source"].isin(["cli", "ingest"])
            ]
            if len(already):
                result["note"] = (
                    f"the forecast for the week of {week} was already issued (#{int(already['id'].iloc[0])})"
                )
                return result
            for forecast_id, forecast in issue(con, state, week=week, by=by, source="ingest"):
                result["issued"].append({"id": forecast_id, "shift": forecast.shift, "method": forecast.method})
        finally:
            con.close()
    except Exception as error:  # noqa: BLE001 - the ingest has succeeded; a forecast failure is reported
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def after_ingest_text(result: dict) -> str:
    """One line for the ingest summary ('' when nothing was done and nothing needs saying)."""
    if not result:
        return ""
    if result.get("error"):
        return (
            f"Hot-spot forecast FAILED (the ingest itself succeeded): {result['error']}. "
            "Retry with `ilp forecast hotspots`."
        )
    parts = []
    if result.get("issued"):
        methods = ", ".join(f"{i['shift']} {i['method']} (#{i['id']})" for i in result["issued"])
        parts.append(f"Hot-spot forecast for the week of {result['week']} recorded: {methods}.")
    elif result.get("note") and "already issued" in result["note"]:
        parts.append(f"Hot-spot forecast: {result['note']}.")
    if result.get("scored"):
        parts.append(f"Scored {result['scored']} recorded forecast(s) whose week now has data (`ilp score`).")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------ for the page
def _bands(values: np.ndarray, bands: int = 5) -> np.ndarray:
    """Band 0 (highest) to ``bands - 1`` of each value by its quantile among ``values``."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return np.zeros(0, dtype=int)
    ranks = np.argsort(np.argsort(-values, kind="stable"), kind="stable")
    return np.minimum((ranks * bands) // max(len(values), 1), bands - 1)


def map_legend(top: pd.DataFrame, unit: str, column: str = "expected_harm") -> list[tuple[str, list[int]]]:
    """(label, colour) per band of ``column`` (expected harm, or count) among the plan's cells, highest first."""
    from ilp.analytics.hotspots import HARM_PALETTE

    bands = _bands(top[column])
    legend = []
    digits = 0 if column == "expected_harm" else 1
    for band in range(5):
        inside = top[column].to_numpy()[bands == band]
        if len(inside):
            legend.append(
                (f"{inside.min():,.{digits}f}–{inside.max():,.{digits}f} {unit}", HARM_PALETTE[band].tolist())
            )
    return legend


def map_rows(top: pd.DataFrame, district_names: dict | None, unit: str, column: str = "expected_harm") -> pd.DataFrame:
    """The forecast cell layer's rows: cell indices, fill colour by band of ``column``, tooltip text."""
    from ilp.analytics.hotspots import HARM_PALETTE

    bands = _bands(top[column])
    names = district_names or {}
    place = [
        " · ".join(
            ([f"Beat {b}"] if isinstance(b, str) and b else [])
            + ([f"District {names.get(d, d)}"] if isinstance(d, str) and d else [])
            + ([f"near {k}"] if isinstance(k, str) and k else [])
        )
        for b, d, k in zip(top["beat"], top["district"], top.get("block", pd.Series([None] * len(top))))
    ]
    return pd.DataFrame(
        {
            "x": top["cell_x"].astype("int64").to_numpy(),
            "y": top["cell_y"].astype("int64").to_numpy(),
            "fill": [HARM_PALETTE[b].tolist() + [210] for b in bands],
            "rank": top["rank"].astype(int).to_numpy(),
            "cell": top["cell"].to_numpy(),
            "place": place,
            "harm_text": [f"{v:,.0f} {unit}" for v in top["expected_harm"]],
            "harm_range": [f"9 weeks in 10: {a:,.0f}–{b:,.0f}" for a, b in zip(top["harm_low"], top["harm_high"])],
            "count_text": [f"{v:,.1f}" for v in top["expected_count"]],
            "count_range": [f"{a:,.1f}–{b:,.1f}" for a, b in zip(top["count_low"], top["count_high"])],
            "offences": top["offences"].fillna("").to_numpy(),
        }
    )


def evaluation_table(forecast: Forecast) -> pd.DataFrame:
    """Every method's mean scores over the evaluation window, with its mean PAI on the selection window."""
    table = forecast.evaluation.copy()
    table.insert(
        0,
        "method_label",
        table["method"].map(lambda m: METHODS[m].label + (" ← in use" if m == forecast.method else "")),
    )
    table["selection_pai"] = table["method"].map(forecast.selection)
    return table.rename(
        columns={"method_label": "Method", "weeks": "Weeks", "selection_pai": "PAI 5%, selection window"}
    ).drop(columns=["method"])


def method_notes(forecast: Forecast) -> str:
    """How the method in use was chosen and what the scores mean, in a few sentences (markdown)."""
    s0, s1 = forecast.selection_window
    e0, e1 = forecast.evaluation_window
    fitted = {k: v for k, v in forecast.parameters.items() if k not in ("coefficients", "features", "fit_rows")}
    return (
        f"**{METHODS[forecast.method].label}** was chosen because it had the highest mean PAI at 5% of the area "
        f"over the selection window, {s0:%d %b %Y} to {s1:%d %b %Y}; every method's half-life, bandwidth or "
        f"regression was fitted on that window too. The table scores each method on the {e0:%d %b %Y} to "
        f"{e1:%d %b %Y} weeks that followed, which played no part in the choice. "
        + (f"Fitted: {json.dumps(fitted)}. " if fitted else "")
        + "**Hit rate**: share of the week's harm in the flagged cells. **PAI** (Chainey et al. 2008): hit rate "
        "divided by the share of the area flagged. **PEI\\***: harm caught over the harm the week's most harmful "
        "cells held. **RRI**: forecast share over the share that came. The area is every "
        f"{forecast.cell_m:.0f} m cell with a located incident in the three years before the week "
        f"({forecast.area_cells:,} cells), the same for every method."
    )


def recorded_download(plan: Plan, n_cells: int, kind: str, state, audit, *, by: str, role: str, what: str, **details):
    """Deferred ``data=`` for a download button: on the click, the plan's first ``n_cells`` cells as CSV or
    GeoJSON bytes; the plan is recorded in app state for the scoreboard (``forecast_issued``) and the
    download audited (``export``)."""

    def render() -> bytes:
        if kind == "csv":
            from ilp.export import csv_bytes

            data = csv_bytes(plan_table(plan, n_cells))
        else:
            data = plan_geojson(plan, n_cells)
        record = plan.harm.record(n_cells, source="download", snapshot=plan.snapshot)
        forecast_id = state.record_forecast(record, by=by, role=role, page="deployment_forecast")
        audit("export", {"what": what, "format": kind, "rows": n_cells, "forecast_id": forecast_id, **details})
        return data

    return render
