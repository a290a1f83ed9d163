"""The synthetic demo city, Port Meridian: the project's embedded default data, with planted truth.

``build_demo(con)`` fills every warehouse table (except ``rejects``) inside an open
``Warehouse.write(kind="demo", fresh=True)`` block; ``build_demo_warehouse(directory)`` does the whole
write. The city's parameters (districts, offence mix, hour and weekday profiles, response times, the
planted truths) are data in ``data/demo_city.toml``; its offence codes are ``data/taxonomy/demo.csv``.

How the incidents are made (all vectorised with numpy, one ``Generator(PCG64(seed))``):

* Geography is fixed (drawn with the TOML's ``city_seed``): districts are a Voronoi of fixed seed
  points clipped to the city rectangle; each district is cut into beats by a Lloyd-relaxed Voronoi.
  Beats carry population, deprivation, commercial and risk scores and a few hot points.
* Background counts are Poisson per (beat, offence code, day) with mean
  ``rate[beat, code] x season[category, day] x weekday[category, day]``: stationary apart from those
  shared seasonal multipliers. Locations cluster around the beat's hot points; hours follow the
  category's hour profile.
* Planted truths (``demo_truth``): an emerging street-robbery series, a moving burglary hot spot and a
  burglary intervention with a matched control beat, each at a known effect size. Also recorded:
  near-repeat burglary contagion, repeat domestic-abuse victims and a prolific-offender "power few".

Same (seed, years, incidents_per_year, end_date) gives identical tables; ``table_checksums`` proves it.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import math
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPoint, Polygon, box
from shapely.geometry.polygon import orient

from ilp import paths
from ilp.warehouse import SNAPSHOT_PATTERN, Warehouse, WarehouseError, next_ingest_id

DEFAULT_END_DATE = dt.date(2026, 11, 15)  # a Sunday: the data runs through this day inclusive
SOURCE = "demo"
AGE_BANDS = ("<18", "18-24", "25-44", "45-64", "65+")
CLEARANCE = np.array(["open", "cleared_arrest", "cleared_other"])
KM_PER_DEGREE_LAT = 110.574
KM_PER_DEGREE_LON_AT_EQUATOR = 111.320
NEAR_REPEAT_BURN_IN_DAYS = 14
NEAR_REPEAT_SAME_ADDRESS = 0.2  # share of follow-on burglaries at the very same address

# Tables compared by table_checksums: everything a build writes except snapshot_meta and ingest_log,
# which hold wall-clock times.
CHECKSUM_TABLES = (
    "offence_categories", "offence_taxonomy", "harm_indices", "harm_weights", "areas", "incidents",
    "incident_history", "incident_persons", "calls_for_service", "use_of_force", "community_survey",
    "rejects", "demo_truth",
)

Progress = Callable[[str, float], None]


def city_spec_path() -> Path:
    return paths.DATA_DIR / "demo_city.toml"


def taxonomy_path() -> Path:
    return paths.TAXONOMY_DIR / "demo.csv"


def load_city_spec() -> dict:
    with open(city_spec_path(), "rb") as handle:
        return tomllib.load(handle)


# ===================================================================================== geography
@dataclasses.dataclass
class Geography:
    """The fixed map: districts, beats (with their drivers and hot points), and the km <-> lon/lat frame."""

    width_km: float
    height_km: float
    lon0: float
    lat0: float
    km_per_lon: float
    district_ids: list[str]
    district_names: list[str]
    district_polygons: list[Polygon]          # lon/lat, rounded to 6 decimals
    district_area_km2: np.ndarray
    district_response: np.ndarray
    district_trust: np.ndarray
    beat_ids: list[str]
    beat_district: np.ndarray                 # index into district_ids
    beat_polygons: list[Polygon]              # lon/lat, rounded to 6 decimals (the GeoJSON exactly)
    beat_area_km2: np.ndarray
    beat_population: np.ndarray
    beat_deprivation: np.ndarray
    beat_commercial: np.ndarray
    beat_risk: np.ndarray
    hot_points: list[np.ndarray]              # per beat: rows of (lon, lat, sigma_km, weight)

    def to_lonlat(self, x_km, y_km):
        return (self.lon0 + (np.asarray(x_km) - self.width_km / 2) / self.km_per_lon,
                self.lat0 + (np.asarray(y_km) - self.height_km / 2) / KM_PER_DEGREE_LAT)

    def to_km(self, lon, lat):
        return ((np.asarray(lon) - self.lon0) * self.km_per_lon + self.width_km / 2,
                (np.asarray(lat) - self.lat0) * KM_PER_DEGREE_LAT + self.height_km / 2)

    def beat_index(self, beat_id: str) -> int:
        try:
            return self.beat_ids.index(beat_id)
        except ValueError:
            raise ValueError(f"{city_spec_path()}: no beat {beat_id!r} in the demo city") from None


def build_geography(spec: dict) -> Geography:
    """Draw the fixed city from the spec (same result on every call: it uses the spec's city_seed)."""
    city = spec["city"]
    rng = np.random.Generator(np.random.PCG64(city["city_seed"]))
    width, height = float(city["width_km"]), float(city["height_km"])
    lat0, lon0 = float(city["center_lat"]), float(city["center_lon"])
    km_per_lon = KM_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(lat0))
    frame = box(0.0, 0.0, width, height)
    downtown = np.array(city["downtown_km"], dtype=float)

    districts = spec["districts"]
    seeds = MultiPoint([tuple(d["seed_km"]) for d in districts])
    district_cells = [cell.intersection(frame) for cell in
                      shapely.voronoi_polygons(seeds, extend_to=frame.buffer(50), ordered=True).geoms]

    geo = Geography(
        width_km=width, height_km=height, lon0=lon0, lat0=lat0, km_per_lon=km_per_lon,
        district_ids=[d["id"] for d in districts], district_names=[d["name"] for d in districts],
        district_polygons=[], district_area_km2=np.array([c.area for c in district_cells]),
        district_response=np.array([d["response"] for d in districts], dtype=float),
        district_trust=np.array([d["trust"] for d in districts], dtype=float),
        beat_ids=[], beat_district=np.zeros(0, dtype=np.int64), beat_polygons=[],
        beat_area_km2=np.zeros(0), beat_population=np.zeros(0, dtype=np.int64),
        beat_deprivation=np.zeros(0), beat_commercial=np.zeros(0), beat_risk=np.zeros(0), hot_points=[],
    )

    beat_cells, beat_district, beat_ids = [], [], []
    for number, (spec_district, cell) in enumerate(zip(districts, district_cells, strict=True)):
        cells = _lloyd_cells(rng, cell, int(spec_district["beats"]))
        centre = cell.centroid
        # name beats clockwise from north around the district's centre: 1A, 1B, ...
        angles = [math.atan2(c.centroid.x - centre.x, c.centroid.y - centre.y) % (2 * math.pi) for c in cells]
        for letter, k in zip("ABCDEFGHIJ", np.argsort(angles, kind="stable"), strict=False):
            beat_cells.append(cells[k])
            beat_district.append(number)
            beat_ids.append(f"{spec_district['id']}{letter}")
    n_beats = len(beat_cells)
    geo.beat_ids = beat_ids
    geo.beat_district = np.array(beat_district, dtype=np.int64)
    geo.beat_polygons = [_lonlat_polygon(geo, cell) for cell in _noded(beat_cells)]
    # a district is exactly the union of its beats, so beats tile districts and districts tile the city
    geo.district_polygons = [
        _exact_union([geo.beat_polygons[b] for b in np.flatnonzero(geo.beat_district == d)])
        for d in range(len(districts))
    ]
    geo.beat_area_km2 = np.array([c.area for c in beat_cells])

    centroids = np.array([(c.centroid.x, c.centroid.y) for c in beat_cells])
    dist_downtown = np.hypot(*(centroids - downtown).T)
    density = (1.0 + 3.0 * np.exp(-(dist_downtown**2) / (2 * 4.5**2))) * rng.lognormal(0.0, 0.3, n_beats)
    geo.beat_population = _largest_remainder(density * geo.beat_area_km2, int(city["population"]))
    district_deprivation = np.array([d["deprivation"] for d in districts], dtype=float)
    district_commercial = np.array([d["commercial"] for d in districts], dtype=float)
    geo.beat_deprivation = district_deprivation[geo.beat_district] + rng.normal(0.0, 0.45, n_beats)
    geo.beat_commercial = (district_commercial[geo.beat_district] + 1.2 * np.exp(-dist_downtown / 3.0)
                           + rng.normal(0.0, 0.25, n_beats))
    risk = rng.lognormal(0.0, 0.2, n_beats)
    hot = np.argsort(-(geo.beat_deprivation + rng.normal(0.0, 0.3, n_beats)), kind="stable")[:4]
    risk[hot] *= 1.8  # a few persistently hot beats
    geo.beat_risk = risk

    for b, cell in enumerate(beat_cells):
        n_points = 1 + min(3, int(rng.poisson(1.2)) + int(geo.beat_commercial[b] > 1.2))
        inner = cell.buffer(-0.15) if cell.buffer(-0.15).area > 0.2 else cell
        points = _uniform_in(rng, inner, n_points)
        lon, lat = geo.to_lonlat(points[:, 0], points[:, 1])
        sigma = rng.uniform(0.08, 0.25, n_points)
        weight = rng.gamma(2.0, 1.0, n_points)
        geo.hot_points.append(np.column_stack([lon, lat, sigma, weight / weight.sum()]))
    return geo


def _lloyd_cells(rng: np.random.Generator, region: Polygon, k: int, iterations: int = 12) -> list[Polygon]:
    points = _uniform_in(rng, region, k)
    cells: list[Polygon] = []
    for _ in range(iterations + 1):
        diagram = shapely.voronoi_polygons(MultiPoint([tuple(p) for p in points]),
                                           extend_to=region.buffer(50), ordered=True)
        cells = [g.intersection(region) for g in diagram.geoms]
        points = np.array([(c.centroid.x, c.centroid.y) for c in cells])
    return cells


def _noded(cells: list[Polygon]) -> list[Polygon]:
    """The same cells with every neighbour's vertex inserted on shared edges, so rounding keeps them shared."""
    lines = shapely.union_all([c.boundary for c in cells])
    faces = list(shapely.polygonize(list(getattr(lines, "geoms", [lines]))).geoms)
    noded = []
    for cell in cells:
        matches = [f for f in faces if cell.contains(f.representative_point())]
        if len(matches) != 1:
            raise RuntimeError("demo city: beat boundaries did not node cleanly")
        noded.append(matches[0])
    return noded


def _exact_union(polygons: list[Polygon]) -> Polygon:
    union = shapely.union_all(polygons)
    if union.geom_type != "Polygon" or len(union.interiors):
        raise RuntimeError("demo city: a district's beats do not form one simple polygon")
    polygon = orient(Polygon(union.exterior.coords), 1.0)
    shapely.prepare(polygon)
    return polygon


def _uniform_in(rng: np.random.Generator, region: Polygon, n: int) -> np.ndarray:
    minx, miny, maxx, maxy = region.bounds
    found = np.zeros((0, 2))
    while len(found) < n:
        xy = np.column_stack([rng.uniform(minx, maxx, 4 * n), rng.uniform(miny, maxy, 4 * n)])
        found = np.vstack([found, xy[shapely.contains_xy(region, xy[:, 0], xy[:, 1])]])
    return found[:n]


def _lonlat_polygon(geo: Geography, cell_km: Polygon) -> Polygon:
    x, y = np.asarray(cell_km.exterior.coords).T
    lon, lat = geo.to_lonlat(x, y)
    ring = [(round(float(a), 6), round(float(b), 6)) for a, b in zip(lon, lat, strict=True)]
    ring = [p for i, p in enumerate(ring) if i == 0 or p != ring[i - 1]]
    polygon = orient(Polygon(ring), 1.0)  # GeoJSON exterior rings run counter-clockwise
    shapely.prepare(polygon)
    return polygon


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    exact = weights / weights.sum() * total
    whole = np.floor(exact).astype(np.int64)
    short = total - int(whole.sum())
    whole[np.argsort(-(exact - whole), kind="stable")[:short]] += 1
    return whole


def geojson(polygon: Polygon) -> str:
    return json.dumps({"type": "Polygon", "coordinates": [[list(p) for p in polygon.exterior.coords]]},
                      separators=(",", ":"))


# ===================================================================================== offence model
@dataclasses.dataclass
class OffenceModel:
    """Offence codes (the order every per-code array uses) and their per-code parameters."""

    codes: list[str]
    descriptions: list[str]
    categories: list[str]                     # category per code
    category_names: list[str]                 # distinct categories in first-seen order
    code_category: np.ndarray                 # index into category_names
    share: np.ndarray
    arrest: np.ndarray
    cleared_other: np.ndarray
    domestic: np.ndarray
    victims: np.ndarray                       # mean victims per incident (0 = none recorded)
    premises: list[tuple[list[str], np.ndarray]]
    upgraded_from: list[str | None]
    category_spec: dict[str, dict]


def load_offence_model(spec: dict, proactive: set[str]) -> OffenceModel:
    with open(taxonomy_path(), newline="", encoding="utf-8") as handle:
        taxonomy = {row["offense_code"]: row for row in csv.DictReader(handle)}
    codes = list(spec["codes"])
    missing = sorted(set(taxonomy) - set(codes))
    if missing:
        raise ValueError(f"{city_spec_path()}: no [codes.X] entry for demo taxonomy codes {missing}")
    descriptions, categories = [], []
    for code in codes:
        entry = spec["codes"][code]
        if code in taxonomy:
            descriptions.append(taxonomy[code]["offense_description"])
            categories.append(taxonomy[code]["category"])
        elif entry.get("category") == "unmapped":
            descriptions.append(entry["description"])
            categories.append("unmapped")
        else:
            raise ValueError(f"{city_spec_path()}: code {code} is not in {taxonomy_path()} and not marked unmapped")
    category_names = list(dict.fromkeys(categories))
    category_spec = {c: spec["categories"][c] for c in category_names}
    for code, category in zip(codes, categories, strict=True):
        if spec["codes"][code].get("victims", 0) > 0 and "victims" not in category_spec[category]:
            raise ValueError(f"{city_spec_path()}: code {code} records victims but [categories.{category}] "
                             f"names no victim age profile")
    for c in category_names:
        category_spec[c]["proactive"] = c in proactive
    return OffenceModel(
        codes=codes, descriptions=descriptions, categories=categories, category_names=category_names,
        code_category=np.array([category_names.index(c) for c in categories], dtype=np.int64),
        share=np.array([spec["codes"][c]["share"] for c in codes], dtype=float),
        arrest=np.array([spec["codes"][c]["arrest"] for c in codes], dtype=float),
        cleared_other=np.array([spec["codes"][c]["cleared_other"] for c in codes], dtype=float),
        domestic=np.array([spec["codes"][c]["domestic"] for c in codes], dtype=float),
        victims=np.array([spec["codes"][c].get("victims", 0.0) for c in codes], dtype=float),
        premises=[(list(spec["codes"][c]["premises"]),
                   _normalised(list(spec["codes"][c]["premises"].values()))) for c in codes],
        upgraded_from=[spec["codes"][c].get("upgraded_from") for c in codes],
        category_spec=category_spec,
    )


def _normalised(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values / values.sum()


def _profile(spec: dict, kind: str, name: str) -> np.ndarray:
    values = np.asarray(spec[kind][name], dtype=float)
    return values / (values.sum() if kind == "hours" else values.mean())


def base_rates(spec: dict, geo: Geography, model: OffenceModel, incidents_per_year: float) -> np.ndarray:
    """Expected incidents per day per (beat, code), annual average, before seasonality and planting."""
    rates = np.zeros((len(geo.beat_ids), len(model.codes)))
    for j, category in enumerate(model.categories):
        drivers = model.category_spec[category]["drivers"]
        weight = (geo.beat_population.astype(float) ** drivers["population"]
                  * np.exp(drivers["deprivation"] * geo.beat_deprivation
                           + drivers["commercial"] * geo.beat_commercial) * geo.beat_risk)
        rates[:, j] = weight / weight.sum()
    per_day = model.share / model.share.sum() * incidents_per_year / 365.25
    return rates * per_day


def day_factors(spec: dict, model: OffenceModel, dates: np.ndarray) -> np.ndarray:
    """Seasonal x weekday multiplier per (category, day); each averages about 1 over a year and a week."""
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    factors = np.zeros((len(model.category_names), len(dates)))
    for k, category in enumerate(model.category_names):
        cat = model.category_spec[category]
        amplitude, peak = cat["season"]
        season = 1.0 + amplitude * np.cos(2 * np.pi * (doy - peak) / 365.25)
        factors[k] = season * _profile(spec, "weekdays", cat["weekdays"])[weekday]
    return factors


# ===================================================================================== build
@dataclasses.dataclass
class Events:
    """One entry per incident, as parallel numpy arrays."""

    beat: np.ndarray
    code: np.ndarray
    day: np.ndarray
    tag: np.ndarray       # 0 background, 1 series, 2 hot spot phase 1, 3 hot spot phase 2, 4 near repeat
    lon: np.ndarray
    lat: np.ndarray

    def take(self, index) -> Events:
        return Events(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        return Events(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                         for f in dataclasses.fields(Events)})

    def __len__(self) -> int:
        return len(self.beat)


TAG_BACKGROUND, TAG_SERIES, TAG_HOTSPOT_1, TAG_HOTSPOT_2, TAG_NEAR_REPEAT = range(5)


def build_demo(
    con: duckdb.DuckDBPyConnection,
    *,
    years: int = 3,
    incidents_per_year: int = 150_000,
    seed: int = 7,
    end_date: dt.date | str = DEFAULT_END_DATE,
    progress: Progress | None = None,
    snapshot: str | None = None,
) -> dict:
    """Fill the open demo warehouse ``con`` (inside ``Warehouse.write(kind="demo", fresh=True)``).

    ``years`` counts whole 52-week years ending on ``end_date`` (inclusive), so with a Sunday end date
    the data starts on a Monday and every week is complete. ``progress(step, fraction_done)`` is called
    as the build goes. ``snapshot`` is the version being written, for ``ingest_log`` (by default it is
    read from the snapshot file's name). Returns a summary: rows per table, the truth rows, seconds.
    """
    if isinstance(end_date, str):
        end_date = dt.date.fromisoformat(end_date)
    elif isinstance(end_date, dt.datetime):
        end_date = end_date.date()
    _check_size(years, incidents_per_year)
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    report = progress or (lambda step, fraction: None)

    report("drawing the city", 0.0)
    if con.execute("SELECT count(*) FROM incidents").fetchone()[0]:
        raise WarehouseError("The demo city is built into a fresh warehouse only (Warehouse.write(fresh=True)).")
    ingest_id = next_ingest_id(con)
    con.execute("SET enable_progress_bar = false")  # the caller draws its own progress
    spec = load_city_spec()
    proactive = {row[0] for row in con.execute("SELECT category FROM offence_categories WHERE proactive").fetchall()}
    model = load_offence_model(spec, proactive)
    geo = build_geography(spec)
    rng = np.random.Generator(np.random.PCG64(seed))

    n_days = years * 364
    start_date = end_date - dt.timedelta(days=n_days - 1)
    clock = Clock(start_date, end_date)

    report("planting truths", 0.05)
    rates = base_rates(spec, geo, model, incidents_per_year)
    plan = _plan_truths(spec, geo, model, rates, clock)

    report("generating incidents", 0.1)
    events = _generate_events(rng, spec, geo, model, rates, plan, clock)
    report("placing incidents", 0.2)
    _place_events(rng, geo, model, events, plan)
    report("near-repeat burglaries", 0.3)
    events = _near_repeats(rng, spec, geo, model, events, clock)
    report("times and outcomes", 0.35)
    incidents = _incident_details(rng, spec, geo, model, events, plan, clock)

    report("people", 0.45)
    persons, person_stats = _persons(rng, spec, geo, model, incidents, plan)
    report("calls for service", 0.55)
    calls = _calls(rng, spec, geo, model, incidents, clock, incidents_per_year)
    report("use of force, history and surveys", 0.65)
    force = _use_of_force(rng, spec, geo, model, incidents, clock)
    history = _history(rng, spec, model, incidents, clock)
    survey = _survey(rng, spec, geo, incidents, plan, clock)
    truth = _truth_rows(spec, geo, model, plan, incidents, person_stats, clock)

    report("writing areas", 0.7)
    _write_areas(con, geo)
    report("writing incidents", 0.75)
    _write_incidents(con, spec, geo, model, incidents, history, ingest_id)
    report("writing people", 0.85)
    _write_persons(con, spec, incidents, persons)
    report("writing calls", 0.9)
    _write_calls(con, geo, *calls)
    report("writing force and surveys", 0.96)
    _write_force(con, geo, force)
    _write_survey(con, survey)
    _write_truth(con, truth)
    rows = {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("areas", "incidents", "incident_history", "incident_persons", "calls_for_service",
                          "use_of_force", "community_survey", "demo_truth")}
    parameters = {"seed": seed, "years": years, "incidents_per_year": incidents_per_year,
                  "end_date": end_date.isoformat(), "start_date": start_date.isoformat(),
                  "city": spec["city"]["name"]}
    _write_log(con, ingest_id, started_at, rows["incidents"], parameters, snapshot or _snapshot_being_written(con))
    seconds = round(time.perf_counter() - started, 2)
    report("done", 1.0)
    return {
        "city": spec["city"]["name"], "start_date": start_date.isoformat(), "end_date": end_date.isoformat(),
        "seed": seed, "rows": rows, "truth_rows": len(truth), "seconds": seconds,
        "truth": [dict(t, start_date=t["start_date"].isoformat(), end_date=t["end_date"].isoformat()) for t in truth],
    }


def _check_size(years: int, incidents_per_year: int) -> None:
    if years < 1:
        raise ValueError("years must be at least 1")
    if incidents_per_year < 5_000:
        raise ValueError("incidents_per_year must be at least 5,000 for the planted truths to be visible")


def build_demo_warehouse(directory, **kwargs) -> dict:
    """Build the demo city as a fresh snapshot in ``directory`` (a warehouse folder) and make it current.

    Takes the same keyword arguments as ``build_demo``; returns its summary plus the new snapshot's version.
    """
    warehouse = Warehouse(directory)
    shown = {"seed": 7, "years": 3, "incidents_per_year": 150_000, "end_date": DEFAULT_END_DATE}
    shown.update({k: v for k, v in kwargs.items() if k in shown})
    _check_size(shown["years"], shown["incidents_per_year"])
    note = "demo city " + ", ".join(f"{k}={v}" for k, v in shown.items())
    with warehouse.write(kind="demo", fresh=True, note=note) as con:
        summary = build_demo(con, snapshot=getattr(warehouse, "writing_version", None), **kwargs)
    summary["snapshot"] = warehouse.current_version()
    summary["directory"] = str(warehouse.directory)
    return summary


def table_checksums(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum (sum of row hashes mod 2^64, hex) per data table."""
    result = {}
    for table in CHECKSUM_TABLES:
        count, total = con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) % 18446744073709551616 FROM {table} AS t"
        ).fetchone()
        result[table] = (int(count), f"{int(total):016x}")
    return result


# ===================================================================================== time frame
class Clock:
    """Days are numbered from the first day of the data (0) to n_days - 1 (end_date)."""

    def __init__(self, start_date: dt.date, end_date: dt.date):
        self.start_date, self.end_date = start_date, end_date
        self.n_days = (end_date - start_date).days + 1
        self.epoch_seconds = int(np.datetime64(start_date, "s").astype(np.int64))
        self.end_seconds = self.epoch_seconds + self.n_days * 86400 - 1  # 23:59:59 on end_date

    def dates(self, first_day: int = 0) -> np.ndarray:
        return np.datetime64(self.start_date, "D") + np.arange(first_day, self.n_days)

    def date_of(self, day: int) -> dt.date:
        return self.start_date + dt.timedelta(days=int(day))


# ===================================================================================== planted truths
@dataclasses.dataclass
class Stream:
    """Extra incidents planted on top of the background: one beat, one code, a daily mean, a centre."""

    tag: int
    beat: int
    code: int
    first_day: int
    last_day: int          # inclusive
    per_day: float         # annual-average rate, before seasonality
    lon: float
    lat: float
    sigma_km: float


@dataclasses.dataclass
class Plan:
    series: dict
    hotspot: dict
    intervention: dict
    streams: list[Stream]
    near_repeat: dict


def _plan_truths(spec: dict, geo: Geography, model: OffenceModel, rates: np.ndarray, clock: Clock) -> Plan:
    truth = spec["truth"]
    near = spec["near_repeat"]
    burglary = model.codes.index(truth["intervention"]["code"])
    near_code = [j for j, c in enumerate(model.categories) if c == near["category"]]
    # background burglary is thinned so that background + follow-on repeats keep the configured share
    rates[:, near_code] *= 1.0 - near["branching"]

    # intervention: treated and control beats get the same baseline residential burglary rate
    inter = truth["intervention"]
    treated, control = geo.beat_index(inter["beat"]), geo.beat_index(inter["control"])
    rates[[treated, control], burglary] = rates[[treated, control], burglary].mean()
    intervention = {
        "beat": treated, "control": control, "code": model.codes.index(inter["code"]),
        "category": inter["category"], "effect": float(inter["effect"]),
        "first_day": clock.n_days - 7 * int(inter["weeks"]), "survey_effect": list(inter["survey_effect"]),
        # expected per day before the cut, annual average, including near-repeat follow-ons
        "baseline_per_day": rates[treated, burglary] / (1.0 - near["branching"]),
    }

    # emerging series: (effect - 1) x the beat's baseline robbery, as extra street robberies
    ser = truth["emerging_series"]
    s_beat = geo.beat_index(ser["beat"])
    robbery_codes = [j for j, c in enumerate(model.categories) if c == ser["category"]]
    robbery_base = rates[s_beat, robbery_codes].sum()
    robbery_by_beat = rates[:, robbery_codes].sum(axis=1)
    rank = int((robbery_by_beat > robbery_base).sum()) + 1
    if rank == 1:
        raise ValueError(f"{city_spec_path()}: the emerging series beat must not already be the top robbery beat")
    s_lon, s_lat = _centre_in(geo, s_beat, ser.get("centre", 0.5))
    series = {
        "beat": s_beat, "code": model.codes.index(ser["code"]), "category": ser["category"],
        "effect": float(ser["effect"]), "first_day": clock.n_days - 7 * int(ser["weeks"]),
        "baseline_per_day": robbery_base, "rank": rank, "lon": s_lon, "lat": s_lat,
        "sigma_km": ser["sigma_m"] / 1000.0, "hours": ser["hours"], "victims": ser["victims"],
        "crew": int(ser["crew"]), "crew_identified": float(ser["crew_identified"]),
    }
    streams = [Stream(TAG_SERIES, s_beat, series["code"], series["first_day"], clock.n_days - 1,
                      (series["effect"] - 1.0) * robbery_base, s_lon, s_lat, series["sigma_km"])]

    # moving hot spot: phase 1 in from_beat for the first 52 weeks, then phase 2 in to_beat
    hs = truth["moving_hotspot"]
    h_code = model.codes.index(hs["code"])
    beats = [geo.beat_index(hs["from_beat"]), geo.beat_index(hs["to_beat"])]
    switch = 364 if clock.n_days >= 2 * 364 else clock.n_days // 2
    others = np.ones(len(geo.beat_ids), dtype=bool)
    others[beats] = False
    top_other = rates[others, h_code].max()
    phases = []
    for phase, (b, first, last) in enumerate(zip(beats, (0, switch), (switch - 1, clock.n_days - 1), strict=True)):
        multiplier = round(float(hs["dominance"]) * top_other / rates[b, h_code], 2)
        lon, lat = _centre_in(geo, b, 0.6)
        phases.append({"beat": b, "first_day": first, "last_day": last, "multiplier": multiplier,
                       "lon": lon, "lat": lat, "baseline_per_day": rates[b, h_code] / (1.0 - near["branching"])})
        streams.append(Stream(TAG_HOTSPOT_1 + phase, b, h_code, first, last,
                              (multiplier - 1.0) * rates[b, h_code], lon, lat, hs["sigma_m"] / 1000.0))
    hotspot = {"code": h_code, "category": hs["category"], "phases": phases, "sigma_m": hs["sigma_m"]}
    planted = {treated, control, s_beat, *beats}
    if len(planted) != 5:
        raise ValueError(f"{city_spec_path()}: the planted truths need five different beats")
    return Plan(series=series, hotspot=hotspot, intervention=intervention, streams=streams,
                near_repeat=dict(near, codes=near_code))


def _centre_in(geo: Geography, beat: int, pull: float) -> tuple[float, float]:
    """A fixed point inside a beat: its strongest hot point pulled towards the beat's centre."""
    polygon = geo.beat_polygons[beat]
    hot = geo.hot_points[beat]
    lon, lat = hot[np.argmax(hot[:, 3]), :2]
    c = polygon.representative_point()
    point = (round(lon + pull * (c.x - lon), 6), round(lat + pull * (c.y - lat), 6))
    if not shapely.contains_xy(polygon, *point):
        point = (round(c.x, 6), round(c.y, 6))
    return point


# ===================================================================================== incidents
def _generate_events(rng, spec, geo, model, rates, plan: Plan, clock: Clock) -> Events:
    first = -NEAR_REPEAT_BURN_IN_DAYS
    dates = clock.dates(first)
    factors = day_factors(spec, model, dates)[model.code_category]       # (codes, days)
    means = rates[:, :, None] * factors[None, :, :]                       # (beats, codes, days)
    inter = plan.intervention
    means[inter["beat"], inter["code"], inter["first_day"] - first:] *= inter["effect"]
    counts = rng.poisson(means)
    flat = np.flatnonzero(counts)
    cells = np.repeat(flat, counts.ravel()[flat])
    beat, code, day = np.unravel_index(cells, counts.shape)
    parts = [Events(beat=beat.astype(np.int64), code=code.astype(np.int64), day=day.astype(np.int64) + first,
                    tag=np.zeros(len(cells), dtype=np.int64), lon=np.full(len(cells), np.nan),
                    lat=np.full(len(cells), np.nan))]
    for stream in plan.streams:
        days = np.arange(stream.first_day, stream.last_day + 1)
        daily = stream.per_day * factors[stream.code, days - first]
        n = rng.poisson(daily)
        stream_days = np.repeat(days, n)
        k = len(stream_days)
        parts.append(Events(beat=np.full(k, stream.beat), code=np.full(k, stream.code), day=stream_days,
                            tag=np.full(k, stream.tag), lon=np.full(k, stream.lon), lat=np.full(k, stream.lat)))
    return Events.concat(parts)


def _place_events(rng, geo: Geography, model: OffenceModel, events: Events, plan: Plan) -> None:
    """Give every event a location inside its beat: near a hot point (or its stream's centre) or anywhere."""
    n = len(events)
    centre_lon, centre_lat = events.lon.copy(), events.lat.copy()         # streams carry their centre
    sigma = np.full(n, np.nan)
    streamed = events.tag != TAG_BACKGROUND
    for stream in plan.streams:
        sigma[events.tag == stream.tag] = stream.sigma_km
    clustering = np.array([model.category_spec[c]["clustering"] for c in model.category_names])
    clustered = (~streamed) & (rng.random(n) < clustering[model.code_category[events.code]])
    for b in range(len(geo.beat_ids)):
        pick = np.flatnonzero(clustered & (events.beat == b))
        hot = geo.hot_points[b]
        which = rng.choice(len(hot), size=len(pick), p=hot[:, 3])
        centre_lon[pick], centre_lat[pick], sigma[pick] = hot[which, 0], hot[which, 1], hot[which, 2]
    events.lon, events.lat = _sample_in_beats(rng, geo, events.beat, centre_lon, centre_lat, sigma)


def _sample_in_beats(rng, geo: Geography, beat, centre_lon, centre_lat, sigma_km):
    """Gaussian around a centre (sigma_km) or uniform where sigma is NaN; resampled until inside the beat."""
    n = len(beat)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    bounds = np.array([p.bounds for p in geo.beat_polygons])
    todo = np.arange(n)
    for attempt in range(60):
        if not len(todo):
            break
        near = ~np.isnan(sigma_km[todo]) & (attempt < 40)
        b = beat[todo]
        x = rng.uniform(bounds[b, 0], bounds[b, 2])
        y = rng.uniform(bounds[b, 1], bounds[b, 3])
        dx, dy = rng.standard_normal(len(todo)), rng.standard_normal(len(todo))
        s = np.where(near, sigma_km[todo], 0.0)
        x = np.where(near, centre_lon[todo] + dx * s / geo.km_per_lon, x).round(6)
        y = np.where(near, centre_lat[todo] + dy * s / KM_PER_DEGREE_LAT, y).round(6)
        inside = np.zeros(len(todo), dtype=bool)
        order = np.argsort(b, kind="stable")
        splits = np.flatnonzero(np.diff(b[order])) + 1
        for group in np.split(order, splits):
            if len(group):
                inside[group] = shapely.contains_xy(geo.beat_polygons[b[group[0]]], x[group], y[group])
        lon[todo[inside]], lat[todo[inside]] = x[inside], y[inside]
        todo = todo[~inside]
    if len(todo):
        raise RuntimeError("could not place demo incidents inside their beats")
    return lon, lat


def _near_repeats(rng, spec, geo: Geography, model: OffenceModel, events: Events, clock: Clock) -> Events:
    """Each residential burglary may trigger follow-on burglaries within radius_m in the next window_days."""
    near = spec["near_repeat"]
    codes = [j for j, c in enumerate(model.categories) if c == near["category"]]
    radius_km = near["radius_m"] / 1000.0
    parts = [events]
    parents = events.take(np.flatnonzero(np.isin(events.code, codes)))
    while len(parents):
        k = rng.poisson(near["branching"], len(parents))
        child = parents.take(np.repeat(np.arange(len(parents)), k))
        n = len(child)
        child.day = child.day + rng.integers(1, near["window_days"] + 1, n)
        child.tag = np.full(n, TAG_NEAR_REPEAT)
        # some at the same address, the rest uniform in a disc of radius_km around the parent
        todo = np.flatnonzero(rng.random(n) >= NEAR_REPEAT_SAME_ADDRESS)
        for _ in range(10):  # redraw those that fall outside the parent's beat; the last few stay put
            r = radius_km * np.sqrt(rng.random(len(todo)))
            angle = rng.uniform(0, 2 * np.pi, len(todo))
            lon = (child.lon[todo] + r * np.cos(angle) / geo.km_per_lon).round(6)
            lat = (child.lat[todo] + r * np.sin(angle) / KM_PER_DEGREE_LAT).round(6)
            inside = np.array([shapely.contains_xy(geo.beat_polygons[b], x, y)
                               for b, x, y in zip(child.beat[todo], lon, lat, strict=True)], dtype=bool)
            child.lon[todo[inside]], child.lat[todo[inside]] = lon[inside], lat[inside]
            todo = todo[~inside]
        child = child.take(np.flatnonzero(child.day < clock.n_days))
        parts.append(child)
        parents = child
    all_events = Events.concat(parts)
    return all_events.take(np.flatnonzero(all_events.day >= 0))


@dataclasses.dataclass
class Incidents:
    """The final incidents in their defined order (by time, then beat, code, place)."""

    events: Events
    occurred: np.ndarray     # seconds since the epoch
    reported: np.ndarray
    year: np.ndarray
    seq: np.ndarray          # number within its year, from 1
    premise: np.ndarray      # index into premise_names
    premise_names: list[str]
    domestic: np.ndarray
    arrest: np.ndarray
    identified: np.ndarray
    clearance: np.ndarray    # 0 open, 1 cleared_arrest, 2 cleared_other
    missing_location: np.ndarray

    def __len__(self) -> int:
        return len(self.events)


def _incident_details(rng, spec, geo, model: OffenceModel, events: Events, plan: Plan, clock: Clock) -> Incidents:
    n = len(events)
    category = model.code_category[events.code]
    hours = np.zeros(n, dtype=np.int64)
    profile_name = np.array([model.category_spec[c]["hours"] for c in model.category_names], dtype=object)[category]
    profile_name[events.tag == TAG_SERIES] = plan.series["hours"]
    for name in spec["hours"]:
        pick = np.flatnonzero(profile_name == name)
        hours[pick] = rng.choice(24, size=len(pick), p=_profile(spec, "hours", name))
    occurred = clock.epoch_seconds + events.day * 86400 + hours * 3600 + rng.integers(0, 3600, n)

    order = np.lexsort((events.lat, events.lon, events.code, events.beat, occurred))
    events, occurred, category = events.take(order), occurred[order], category[order]
    year, seq = _year_and_seq(occurred)

    lag_median = np.array([model.category_spec[c]["report_lag_min"] for c in model.category_names], dtype=float)
    lag = np.round(60 * lag_median[category] * rng.lognormal(0.0, 1.0, n)).astype(np.int64)
    reported = np.minimum(occurred + lag, clock.end_seconds)
    reported = np.maximum(reported, occurred)

    premise_names = sorted({p for names, _ in model.premises for p in names})
    premise = np.zeros(n, dtype=np.int64)
    for j, (names, probs) in enumerate(model.premises):
        pick = np.flatnonzero(events.code == j)
        lookup = np.array([premise_names.index(p) for p in names])
        premise[pick] = lookup[rng.choice(len(names), size=len(pick), p=probs)]

    domestic = rng.random(n) < model.domestic[events.code]
    arrest_p = model.arrest[events.code].copy()
    arrest_p[events.tag == TAG_SERIES] = 0.0  # the series is live: nobody caught yet
    arrest = rng.random(n) < arrest_p
    identified_rate = np.array([model.category_spec[c]["identified"] for c in model.category_names])[category]
    identified_rate = np.maximum(identified_rate, arrest_p)
    identified_rate[events.tag == TAG_SERIES] = plan.series["crew_identified"]
    suspect_p = np.where(arrest_p < 1, (identified_rate - arrest_p) / np.maximum(1 - arrest_p, 1e-9), 0.0)
    identified = arrest | (rng.random(n) < suspect_p)
    cleared_other = ~arrest & (rng.random(n) < model.cleared_other[events.code])
    clearance = np.where(arrest, 1, np.where(cleared_other, 2, 0))
    missing = rng.random(n) < spec["quality"]["missing_location"]
    return Incidents(events=events, occurred=occurred, reported=reported, year=year, seq=seq, premise=premise,
                     premise_names=premise_names, domestic=domestic, arrest=arrest, identified=identified,
                     clearance=clearance, missing_location=missing)


# ===================================================================================== people
def _ages(rng, spec, name: str, n: int) -> np.ndarray:
    """Age-band index (0..4) per person, 5 = unknown."""
    p = np.asarray(spec["ages"][name], dtype=float)
    return rng.choice(6, size=n, p=np.r_[p, max(0.0, 1.0 - p.sum())] / max(1.0, p.sum()))


def _persons(rng, spec, geo, model: OffenceModel, incidents: Incidents, plan: Plan):
    """Victims and offenders/suspects: (incident, person number, role, age band) plus realised statistics."""
    ev = incidents.events
    category = model.code_category[ev.code]
    victim_profiles = [model.category_spec[c].get("victims", "") for c in model.category_names]
    victim_profile = np.array(victim_profiles, dtype=object)[category]
    has_victim = model.victims[ev.code] > 0
    homicide = np.array(model.categories)[ev.code] == "homicide"
    dv = has_victim & incidents.domestic & ~homicide
    rows_event, rows_person, rows_role, rows_age = [], [], [], []
    next_person = 1

    def add(event_idx, persons, role, ages):
        rows_event.append(event_idx)
        rows_person.append(persons)
        rows_role.append(np.broadcast_to(np.asarray(role, dtype=np.int64), (len(event_idx),)))
        rows_age.append(ages)

    # ordinary victims: a new person each time; some incidents have two
    ordinary = np.flatnonzero(has_victim & ~dv)
    extra = rng.random(len(ordinary)) < (model.victims[ev.code[ordinary]] - 1.0)
    victim_events = np.sort(np.r_[ordinary, ordinary[extra]], kind="stable")
    ages = np.zeros(len(victim_events), dtype=np.int64)
    profile = victim_profile[victim_events].copy()
    profile[ev.tag[victim_events] == TAG_SERIES] = plan.series["victims"]
    for name in sorted(set(profile)):
        pick = np.flatnonzero(profile == name)
        ages[pick] = _ages(rng, spec, name, len(pick))
    add(victim_events, next_person + np.arange(len(victim_events)), 0, ages)
    next_person += len(victim_events)

    # domestic abuse: victims drawn from each beat's pool with a heavy-tailed repeat propensity;
    # the abuser is the victim's partner (one per victim)
    off = spec["offenders"]
    dv_events = np.flatnonzero(dv)
    dv_victim = np.zeros(len(dv_events), dtype=np.int64)
    dv_partner = np.zeros(len(dv_events), dtype=np.int64)
    dv_victim_age, dv_partner_age = np.zeros(len(dv_events), np.int64), np.zeros(len(dv_events), np.int64)
    for b in range(len(geo.beat_ids)):
        pick = np.flatnonzero(ev.beat[dv_events] == b)
        pool = max(1, math.ceil(off["dv_victim_pool"] * len(pick)))
        propensity = rng.gamma(off["dv_propensity_shape"], 1.0, pool)
        choice = rng.choice(pool, size=len(pick), p=propensity / propensity.sum())
        victim_ages, partner_ages = _ages(rng, spec, "domestic", pool), _ages(rng, spec, "domestic", pool)
        dv_victim[pick], dv_partner[pick] = next_person + choice, next_person + pool + choice
        dv_victim_age[pick], dv_partner_age[pick] = victim_ages[choice], partner_ages[choice]
        next_person += 2 * pool
    add(dv_events, dv_victim, 0, dv_victim_age)
    dv_identified = incidents.identified[dv_events]
    add(dv_events[dv_identified], dv_partner[dv_identified],
        np.where(incidents.arrest[dv_events[dv_identified]], 1, 2), dv_partner_age[dv_identified])
    per_victim = np.unique(dv_victim, return_counts=True)[1]

    # the series crew
    crew_events = np.flatnonzero(incidents.identified & (ev.tag == TAG_SERIES))
    crew_numbers = next_person + np.arange(plan.series["crew"])
    crew_ages = rng.choice(2, size=len(crew_numbers), p=[0.7, 0.3])
    member = rng.integers(0, len(crew_numbers), len(crew_events))
    add(crew_events, crew_numbers[member], np.where(incidents.arrest[crew_events], 1, 2), crew_ages[member])
    next_person += len(crew_numbers)

    # everyone else identified: per home district, a prolific few (the power few) and occasional offenders
    other = np.flatnonzero(incidents.identified & ~dv & (ev.tag != TAG_SERIES))
    n_districts = len(geo.district_ids)
    own = geo.beat_district[ev.beat[other]]
    away = rng.random(len(other)) >= off["home_district_share"]
    home = np.where(away, (own + rng.integers(1, n_districts, len(other))) % n_districts, own)
    prolific = rng.random(len(other)) < off["prolific_share"]
    offender = np.zeros(len(other), dtype=np.int64)
    offender_age = np.zeros(len(other), dtype=np.int64)
    prolific_numbers = []
    for d in range(n_districts):
        in_district = home == d
        pick = np.flatnonzero(in_district & prolific)
        pool = max(1, round(off["prolific_per_offence"] * in_district.sum()))
        rate = rng.gamma(off["prolific_gamma_shape"], 1.0, pool)
        choice = rng.choice(pool, size=len(pick), p=rate / rate.sum())
        pool_ages = _ages(rng, spec, "offender", pool)
        offender[pick], offender_age[pick] = next_person + choice, pool_ages[choice]
        prolific_numbers.append(next_person + np.arange(pool))
        next_person += pool
        pick = np.flatnonzero(in_district & ~prolific)
        pool = max(1, math.ceil(off["occasional_pool_per_offence"] * len(pick)))
        choice = rng.integers(0, pool, len(pick))
        pool_ages = _ages(rng, spec, "offender", pool)
        offender[pick], offender_age[pick] = next_person + choice, pool_ages[choice]
        next_person += pool
    add(other, offender, np.where(incidents.arrest[other], 1, 2), offender_age)

    persons = pd.DataFrame({
        "event": np.concatenate(rows_event), "person_no": np.concatenate(rows_person),
        "role": np.concatenate(rows_role), "age": np.concatenate(rows_age),
    }).sort_values(["event", "role", "person_no"], kind="stable").reset_index(drop=True)

    counts = np.sort(np.unique(offender, return_counts=True)[1])[::-1]
    top = max(1, round(0.05 * len(counts)))
    stats = {
        "dv_victims": int(len(per_victim)), "dv_incidents": int(len(dv_events)),
        "dv_repeat_victim_share": round(float((per_victim >= 2).mean()), 4) if len(per_victim) else 0.0,
        "dv_max_incidents_per_victim": int(per_victim.max()) if len(per_victim) else 0,
        "offenders": int(len(counts)), "offender_links": int(len(other)),
        "top_5pct_offender_share": round(float(counts[:top].sum() / max(1, counts.sum())), 4),
        "prolific_offenders": int(sum(len(p) for p in prolific_numbers)),
        "prolific_offence_share": round(float(prolific.mean()), 4) if len(prolific) else 0.0,
        "crew_numbers": crew_numbers.tolist(), "crew_incidents": int(len(crew_events)),
    }
    return persons, stats


# ===================================================================================== calls for service
def _calls(rng, spec, geo: Geography, model: OffenceModel, incidents: Incidents, clock: Clock,
           incidents_per_year: float) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Calls for service: (calls frame with call_type/disposition as codes, call type names, disposition names).

    Every reported (non-proactive) incident brings one call and sometimes duplicates; calls about no
    recorded crime (collisions, alarms, welfare checks, ...) are a stationary Poisson stream per beat.
    """
    ev = incidents.events
    category = model.code_category[ev.code]
    cats = [model.category_spec[c] for c in model.category_names]
    nc = spec["non_crime_calls"]
    types = nc["types"]
    call_types = sorted({c["call"] for c in cats if "call" in c} | {"DOMESTIC DISTURBANCE"} | {t[0] for t in types})
    dispositions = ["DUPLICATE", "ARREST", "REPORT TAKEN", "CANCELLED"] + [d[0] for d in nc["dispositions"]]

    has_call = np.array([("call" in c) and not c["proactive"] for c in cats])[category]
    call_rate = np.array([c.get("call_rate", 1.0) for c in cats])[category]
    calling = np.flatnonzero(has_call & (rng.random(len(ev)) < call_rate))
    extra_calls = np.array([c.get("extra_calls", 0.0) for c in cats])[category[calling]]
    n_calls = 1 + rng.poisson(extra_calls)
    incident = np.repeat(calling, n_calls)
    duplicate = np.ones(len(incident), dtype=bool)
    duplicate[np.r_[0, np.cumsum(n_calls)[:-1]]] = False
    type_of_category = np.array([call_types.index(c["call"]) if "call" in c else -1 for c in cats])
    crime_type = type_of_category[category[incident]]
    violent_dv = incidents.domestic[incident] & np.isin(
        np.array(model.categories)[ev.code[incident]], ["violence_with_injury", "violence_without_injury"])
    crime_type[violent_dv] = call_types.index("DOMESTIC DISTURBANCE")
    priority_mix = np.array([c.get("priority", [0, 0, 1, 0]) for c in cats], dtype=float)
    priority_by_incident = np.zeros(len(ev), dtype=np.int64)
    for k in range(len(cats)):
        pick = calling[category[calling] == k]
        priority_by_incident[pick] = 1 + rng.choice(4, size=len(pick), p=_normalised(priority_mix[k]))
    crime_received = incidents.reported[incident] + np.where(duplicate, rng.integers(20, 900, len(incident)), 0)
    crime_disposition = np.where(duplicate, 0, np.where(incidents.arrest[incident], 1, 2))

    weight = geo.beat_population ** 0.9 * np.exp(0.3 * geo.beat_deprivation)
    per_day = nc["per_incident"] * incidents_per_year / 365.25
    dates = clock.dates()
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    season = 1.0 + nc["season"][0] * np.cos(2 * np.pi * (doy - nc["season"][1]) / 365.25)
    means = ((weight / weight.sum())[:, None, None] * (per_day * _normalised([t[1] for t in types]))[None, :, None]
             * season[None, None, :])
    counts = rng.poisson(means)
    flat = np.flatnonzero(counts)
    other_beat, kind, day = np.unravel_index(np.repeat(flat, counts.ravel()[flat]), counts.shape)
    hours = rng.choice(24, size=len(day), p=_profile(spec, "hours", nc["hours"]))
    other_received = clock.epoch_seconds + day * 86400 + hours * 3600 + rng.integers(0, 3600, len(day))
    other_priority = np.zeros(len(day), dtype=np.int64)
    for t, row in enumerate(types):
        pick = np.flatnonzero(kind == t)
        other_priority[pick] = 1 + rng.choice(4, size=len(pick), p=_normalised(row[2:6]))
    other_disposition = 4 + rng.choice(len(nc["dispositions"]), size=len(day),
                                       p=_normalised([d[1] for d in nc["dispositions"]]))

    received = np.minimum(np.r_[crime_received, other_received], clock.end_seconds)
    priority = np.r_[priority_by_incident[incident], other_priority]
    call_type = np.r_[crime_type, np.array([call_types.index(t[0]) for t in types])[kind]]
    beat = np.r_[ev.beat[incident], other_beat]
    disposition = np.r_[crime_disposition, other_disposition]
    duplicate = np.r_[duplicate, np.zeros(len(day), dtype=bool)]

    # response times: lognormal dispatch delay and travel, slower at night and in outer districts
    resp = spec["response"]
    n = len(received)
    p = priority - 1
    hour = (received // 3600) % 24
    night = np.where((hour >= 22) | (hour < 6), resp["night_factor"], 1.0)
    district_factor = geo.district_response[geo.beat_district[beat]]
    dispatch = (60 * np.asarray(resp["dispatch_median_min"])[p] * night
                * np.exp(np.asarray(resp["dispatch_sigma"])[p] * rng.standard_normal(n)))
    travel = (60 * np.asarray(resp["travel_median_min"])[p] * night * district_factor
              * np.exp(np.asarray(resp["travel_sigma"])[p] * rng.standard_normal(n)))
    on_scene = 60 * np.asarray(resp["on_scene_median_min"])[p] * rng.lognormal(0, resp["on_scene_sigma"], n)
    cancelled = ~duplicate & (rng.random(n) < np.asarray(resp["cancelled_share"])[p])
    dispatched = received + np.round(dispatch).astype(np.int64)
    arrived = dispatched + np.round(travel).astype(np.int64)
    cleared = np.where(duplicate, received + 60,
                       np.where(cancelled, dispatched + 120, arrived + np.round(on_scene).astype(np.int64)))
    dispatched = np.where(duplicate, -1, dispatched)
    arrived = np.where(duplicate | cancelled, -1, arrived)
    disposition = np.where(cancelled, 3, disposition)

    order = np.lexsort((dispatched, priority, call_type, beat, received))
    year, seq = _year_and_seq(received[order])
    calls = pd.DataFrame({
        "year": year, "seq": seq, "priority": priority[order], "call_type": call_type[order],
        "received": _timestamps(received[order]), "dispatched": _timestamps(dispatched[order]),
        "arrived": _timestamps(arrived[order]), "cleared": _timestamps(cleared[order]),
        "beat": beat[order], "disposition": disposition[order],
    })
    return calls, call_types, dispositions


def _year_and_seq(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calendar year of each (sorted) timestamp and its running number within that year, from 1."""
    year = seconds.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    if not len(year):
        return year, year.copy()
    starts = np.r_[0, np.flatnonzero(np.diff(year)) + 1]
    seq = np.arange(len(year)) - np.repeat(starts, np.diff(np.r_[starts, len(year)])) + 1
    return year, seq


def _timestamps(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds to datetime64[s]; negative means missing (NaT, written as NULL)."""
    return np.where(seconds < 0, np.datetime64("NaT"), seconds.astype("datetime64[s]"))


# ===================================================================================== use of force
def _use_of_force(rng, spec, geo, model: OffenceModel, incidents: Incidents, clock: Clock) -> pd.DataFrame:
    uof = spec["use_of_force"]
    ev = incidents.events
    arrests = np.flatnonzero(incidents.arrest)
    force_factor = np.array([model.category_spec[c]["force"] for c in model.category_names])
    p = (uof["per_arrest"] * force_factor[model.code_category[ev.code[arrests]]]
         * np.exp(0.3 * geo.beat_deprivation[ev.beat[arrests]]))
    chosen = arrests[rng.random(len(arrests)) < p]
    n = len(chosen)
    types = [t[0] for t in uof["types"]]
    force_type = rng.choice(len(types), size=n, p=_normalised([t[1] for t in uof["types"]]))
    harsh = np.isin(np.array(types)[force_type], ["taser", "baton", "firearm_discharged"])
    occurred = np.minimum(incidents.occurred[chosen] + rng.integers(0, 45 * 60, n), clock.end_seconds)
    frame = pd.DataFrame({
        "occurred": occurred, "beat": ev.beat[chosen], "force_type": np.array(types)[force_type],
        "subject_injury": rng.random(n) < uof["subject_injury"] * np.where(harsh, 1.6, 1.0),
        "officer_injury": rng.random(n) < uof["officer_injury"],
    }).sort_values(["occurred", "beat"], kind="stable").reset_index(drop=True)
    frame["year"], frame["seq"] = _year_and_seq(frame["occurred"].to_numpy())
    frame["occurred"] = _timestamps(frame["occurred"].to_numpy())
    return frame


# ===================================================================================== incident history
def _history(rng, spec, model: OffenceModel, incidents: Incidents, clock: Clock) -> pd.DataFrame:
    """Earlier versions: some incidents were first recorded under a lesser code, some first as open."""
    q = spec["quality"]
    ev = incidents.events
    n = len(ev)
    upgraded = np.array([model.codes.index(u) if u else -1 for u in model.upgraded_from])[ev.code]
    reclassified = (upgraded >= 0) & (rng.random(n) < q["reclassified"])
    late = ~reclassified & (incidents.clearance > 0) & (rng.random(n) < q["late_clearance"])
    rows = np.flatnonzero(reclassified | late)
    previous_code = np.where(reclassified[rows], upgraded[rows], ev.code[rows])
    median_days = np.where(reclassified[rows], 3.0, 10.0)
    delay = np.round(86400 * median_days * rng.lognormal(0, 0.8, len(rows))).astype(np.int64)
    superseded = np.minimum(incidents.reported[rows] + delay, clock.end_seconds)
    return pd.DataFrame({
        "event": rows, "superseded_at": superseded.astype("datetime64[s]"),
        "prev_code": np.array(model.codes)[previous_code],
        "prev_description": np.array(model.descriptions)[previous_code],
        "prev_category": np.array(model.categories)[previous_code],
        # a reclassified record keeps its outcome; a late clearance was open with no arrest before
        "prev_clearance": np.where(reclassified[rows], CLEARANCE[incidents.clearance[rows]], "open"),
        "prev_arrest": np.where(reclassified[rows], incidents.arrest[rows], False),
    })


# ===================================================================================== survey
def _survey(rng, spec, geo: Geography, incidents: Incidents, plan: Plan, clock: Clock) -> pd.DataFrame:
    sv = spec["survey"]
    ev = incidents.events
    # crime per head by district (all incidents), standardised: trust is a little lower where crime is higher
    district = geo.beat_district[ev.beat]
    n_d = len(geo.district_ids)
    pop = np.bincount(geo.beat_district, weights=geo.beat_population, minlength=n_d)
    per_head = np.bincount(district, minlength=n_d) / pop
    z = (per_head - per_head.mean()) / (per_head.std() or 1.0)
    treated_district = geo.beat_district[plan.intervention["beat"]]
    intervention_start = clock.date_of(plan.intervention["first_day"])
    quarters = []
    q = dt.date(clock.start_date.year, 3 * ((clock.start_date.month - 1) // 3) + 1, 1)
    while True:
        nxt = dt.date(q.year + (q.month == 10), (q.month + 2) % 12 + 1, 1)
        if q >= clock.start_date and nxt - dt.timedelta(days=1) <= clock.end_date:
            quarters.append(q)
        if nxt > clock.end_date:
            break
        q = nxt
    rows = []
    for quarter in quarters:
        label = f"{quarter.year}-Q{(quarter.month - 1) // 3 + 1}"
        for d in range(n_d):
            for m, measure in enumerate(sv["measures"]):
                level = geo.district_trust[d] + sv["offsets"][m] + sv["crime_effect"] * z[d]
                if d == treated_district and quarter > intervention_start:
                    level += plan.intervention["survey_effect"][m]
                respondents = int(rng.integers(sv["respondents"][0], sv["respondents"][1] + 1))
                value = rng.binomial(respondents, min(max(level, 0.02), 0.98)) / respondents
                rows.append((geo.district_ids[d], quarter, label, measure, round(value, 4), respondents))
    return pd.DataFrame(rows, columns=["area_id", "period_start", "period_label", "measure", "value", "respondents"])


# ===================================================================================== truth
def _truth(kind: str, *, area_id=None, category=None, start: dt.date, end: dt.date, effect=None, control=None,
           details: dict, description: str) -> dict:
    return {"kind": kind, "area_level": "beat" if area_id else None, "area_id": area_id,
            "offense_category": category, "start_date": start, "end_date": end, "effect_size": effect,
            "control_area_id": control, "details": details, "description": description}


def _truth_rows(spec, geo: Geography, model: OffenceModel, plan: Plan, incidents: Incidents, person_stats: dict,
                clock: Clock) -> list[dict]:
    """One row per planted truth (three beat-level ones, then three citywide behaviours)."""
    ev = incidents.events
    beat_id = geo.beat_ids
    salt = spec["city"]["person_salt"]
    s = plan.series
    days = clock.n_days - s["first_day"]
    rows = [_truth(
        "emerging_series", area_id=beat_id[s["beat"]], category=s["category"],
        start=clock.date_of(s["first_day"]), end=clock.end_date, effect=s["effect"],
        details={
            "offense_code": model.codes[s["code"]],
            "baseline_per_week": round(7 * s["baseline_per_day"], 3),
            "baseline_rank_among_beats": s["rank"],
            "planted_incidents": int((ev.tag == TAG_SERIES).sum()),
            "centre_lat": s["lat"], "centre_lon": s["lon"], "sigma_m": round(1000 * s["sigma_km"]),
            "hours_profile": s["hours"],
            "victim_age_bands": dict(zip(AGE_BANDS, spec["ages"][s["victims"]], strict=True)),
            "crew_person_keys": [hashlib.sha256(f"{salt}{n}".encode()).hexdigest()
                                 for n in person_stats["crew_numbers"]],
            "crew_linked_incidents": person_stats["crew_incidents"],
        },
        description=(f"A street robbery series in beat {beat_id[s['beat']]} over the last {days} days: robbery at "
                     f"{s['effect']:g}x the beat's baseline, victims mostly under 18, after school hours."),
    )]

    h = plan.hotspot
    first, second = h["phases"]
    for number, (phase, other) in enumerate(((first, second), (second, first)), start=1):
        moved = (f"then it moves to beat {beat_id[other['beat']]}." if number == 1
                 else f"after moving from beat {beat_id[other['beat']]}.")
        rows.append(_truth(
            "moving_hotspot", area_id=beat_id[phase["beat"]], category=h["category"],
            start=clock.date_of(phase["first_day"]), end=clock.date_of(phase["last_day"]),
            effect=phase["multiplier"],
            details={
                "phase": number, "phases": 2, "offense_code": model.codes[h["code"]],
                "from_beat": beat_id[first["beat"]], "to_beat": beat_id[second["beat"]],
                "other_phase_beat": beat_id[other["beat"]],
                "baseline_per_week": round(7 * phase["baseline_per_day"], 3),
                "planted_incidents": int((ev.tag == TAG_HOTSPOT_1 + number - 1).sum()),
                "centre_lat": phase["lat"], "centre_lon": phase["lon"], "sigma_m": h["sigma_m"],
            },
            description=(f"Residential burglary hot spot, phase {number} of 2: beat {beat_id[phase['beat']]} runs at "
                         f"{phase['multiplier']:g}x its baseline, {moved}"),
        ))

    i = plan.intervention
    burglary = ev.code == i["code"]
    after = ev.day >= i["first_day"]

    def count(beat, when):
        return int((burglary & (ev.beat == beat) & when).sum())

    rows.append(_truth(
        "intervention", area_id=beat_id[i["beat"]], category=i["category"],
        start=clock.date_of(i["first_day"]), end=clock.end_date, effect=i["effect"], control=beat_id[i["control"]],
        details={
            "offense_code": model.codes[i["code"]],
            "treated_population": int(geo.beat_population[i["beat"]]),
            "control_population": int(geo.beat_population[i["control"]]),
            "baseline_per_week": round(7 * i["baseline_per_day"], 3),
            "counts": {"treated_before": count(i["beat"], ~after), "treated_after": count(i["beat"], after),
                       "control_before": count(i["control"], ~after), "control_after": count(i["control"], after)},
            "survey_district": geo.district_ids[geo.beat_district[i["beat"]]],
            "survey_effect": dict(zip(spec["survey"]["measures"], i["survey_effect"], strict=True)),
        },
        description=(f"From {clock.date_of(i['first_day'])} residential burglary in beat {beat_id[i['beat']]} is cut "
                     f"to {i['effect']:g}x its baseline; beat {beat_id[i['control']]} has the same baseline and "
                     f"no intervention."),
    ))

    near = plan.near_repeat
    rows.append(_truth(
        "near_repeat", category=near["category"], start=clock.start_date, end=clock.end_date,
        effect=near["branching"],
        details={"radius_m": near["radius_m"], "window_days": near["window_days"],
                 "same_address_share": NEAR_REPEAT_SAME_ADDRESS,
                 "follow_on_incidents": int((ev.tag == TAG_NEAR_REPEAT).sum())},
        description=(f"Citywide, each residential burglary triggers on average {near['branching']:g} more within "
                     f"{near['radius_m']} m in the next {near['window_days']} days."),
    ))
    rows.append(_truth(
        "repeat_victims", start=clock.start_date, end=clock.end_date,
        effect=person_stats["dv_repeat_victim_share"],
        details={"domestic_only": True, "victims": person_stats["dv_victims"],
                 "incidents": person_stats["dv_incidents"],
                 "repeat_victim_share": person_stats["dv_repeat_victim_share"],
                 "max_incidents_per_victim": person_stats["dv_max_incidents_per_victim"],
                 "propensity_gamma_shape": spec["offenders"]["dv_propensity_shape"]},
        description=("Domestic-abuse victims recur (heavy-tailed repeat propensity per beat); effect_size is the "
                     "share of victims with two or more incidents."),
    ))
    rows.append(_truth(
        "prolific_offenders", start=clock.start_date, end=clock.end_date,
        effect=person_stats["top_5pct_offender_share"],
        details={"offenders": person_stats["offenders"], "links": person_stats["offender_links"],
                 "top_5pct_share": person_stats["top_5pct_offender_share"],
                 "prolific_offenders": person_stats["prolific_offenders"],
                 "prolific_offence_share": person_stats["prolific_offence_share"],
                 "roles": "offender where an arrest was made, suspect otherwise"},
        description=("A power few: effect_size is the share of identified non-domestic offences linked to the top "
                     "5% of offenders."),
    ))
    return rows


# ===================================================================================== writing
def _write_areas(con, geo: Geography) -> None:
    rows = []
    district_pop = np.bincount(geo.beat_district, weights=geo.beat_population, minlength=len(geo.district_ids))
    for d, polygon in enumerate(geo.district_polygons):
        c = polygon.centroid
        rows.append(("district", geo.district_ids[d], geo.district_names[d], None, None, int(district_pop[d]),
                     round(float(geo.district_area_km2[d]), 3), round(c.y, 6), round(c.x, 6), geojson(polygon)))
    for b, polygon in enumerate(geo.beat_polygons):
        c = polygon.centroid
        d = geo.beat_district[b]
        rows.append(("beat", geo.beat_ids[b], f"{geo.district_names[d]} {geo.beat_ids[b]}", "district",
                     geo.district_ids[d], int(geo.beat_population[b]), round(float(geo.beat_area_km2[b]), 3),
                     round(c.y, 6), round(c.x, 6), geojson(polygon)))
    con.executemany("INSERT INTO areas VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


@contextlib.contextmanager
def _registered(con, **frames):
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        yield
    finally:
        for name in frames:
            con.unregister(name)


def _beat_frame(geo: Geography) -> pd.DataFrame:
    return pd.DataFrame({"beat": np.arange(len(geo.beat_ids)), "beat_id": geo.beat_ids,
                         "district_id": [geo.district_ids[d] for d in geo.beat_district]})


def _street_frame(spec, geo: Geography) -> pd.DataFrame:
    st = spec["streets"]
    ew = list(st["ew_names"])
    n_ns = int(geo.width_km / st["ns_spacing_km"]) + 2
    ns = [f"{_ordinal(k + 1)} {st['ns_suffix']}" for k in range(n_ns)]
    return pd.DataFrame({"street": np.arange(len(ew) + n_ns), "street_name": ew + ns})


def _ordinal(n: int) -> str:
    suffix = "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")
    return f"{n}{suffix}"


def _streets_and_blocks(spec, geo: Geography, lon, lat):
    st = spec["streets"]
    x, y = geo.to_km(lon, lat)
    n_ew = len(st["ew_names"])
    ew = np.clip(np.round(y / st["ew_spacing_km"]), 0, n_ew - 1).astype(np.int64)
    ns = np.clip(np.round(x / st["ns_spacing_km"]), 0, None).astype(np.int64)
    on_ew = np.abs(y - ew * st["ew_spacing_km"]) <= np.abs(x - ns * st["ns_spacing_km"])
    street = np.where(on_ew, ew, n_ew + ns)
    block = np.floor(np.where(on_ew, x, y) / st["block_km"]).astype(np.int64) + 1
    return street, block


def _write_incidents(con, spec, geo: Geography, model: OffenceModel, incidents: Incidents,
                     history: pd.DataFrame, ingest_id: int) -> None:
    ev = incidents.events
    street, block = _streets_and_blocks(spec, geo, ev.lon, ev.lat)
    missing = incidents.missing_location
    frame = pd.DataFrame({
        "event": np.arange(len(ev)), "year": incidents.year, "seq": incidents.seq,
        "occurred_at": incidents.occurred.astype("datetime64[s]"),
        "reported_at": incidents.reported.astype("datetime64[s]"),
        "code": ev.code, "lat": np.where(missing, np.nan, ev.lat), "lon": np.where(missing, np.nan, ev.lon),
        "missing": missing, "street": street, "block": block, "beat": ev.beat, "premise": incidents.premise,
        "domestic": incidents.domestic, "arrest": incidents.arrest, "clearance": incidents.clearance,
        "identified": incidents.identified,
    })
    codes = pd.DataFrame({"code": np.arange(len(model.codes)), "offense_code": model.codes,
                          "offense_description": model.descriptions, "offense_category": model.categories})
    premises = pd.DataFrame({"premise": np.arange(len(incidents.premise_names)),
                             "premise_type": incidents.premise_names})
    with _registered(con, demo_events=frame, demo_codes=codes, demo_premises=premises, demo_beats=_beat_frame(geo),
                     demo_streets=_street_frame(spec, geo), demo_history=history):
        con.execute("""
            CREATE TEMP TABLE demo_incident_rows AS
            SELECT e.event,
                   printf('PM%d-%06d', e.year, e.seq) AS source_id,
                   e.occurred_at::TIMESTAMP AS occurred_at, e.reported_at::TIMESTAMP AS reported_at,
                   c.offense_code, c.offense_description, c.offense_category,
                   e.lat AS latitude, e.lon AS longitude,
                   CASE WHEN e.missing THEN 'missing' ELSE 'ok' END AS location_status,
                   e.block::VARCHAR || 'XX BLOCK OF ' || s.street_name AS location_text,
                   b.district_id AS district, b.beat_id AS beat, p.premise_type, e.domestic, e.arrest,
                   ['open', 'cleared_arrest', 'cleared_other'][e.clearance + 1] AS clearance_status,
                   CASE WHEN e.clearance = 1 THEN 'Arrest made'
                        WHEN e.clearance = 2 AND e.identified THEN 'Cleared - victim declined to prosecute'
                        WHEN e.clearance = 2 THEN 'Cleared - no further action'
                        WHEN e.identified THEN 'Open - suspect identified'
                        ELSE 'Open - no suspect identified' END AS outcome_description
            FROM demo_events e
            JOIN demo_codes c USING (code)
            JOIN demo_beats b USING (beat)
            JOIN demo_premises p USING (premise)
            JOIN demo_streets s USING (street)
        """)
        con.execute("""
            INSERT INTO incidents
            SELECT $source, source_id, occurred_at, 'exact', reported_at, offense_code, offense_description,
                   offense_category, latitude, longitude, location_status, location_text, district, beat,
                   NULL, premise_type, domestic, arrest, clearance_status, outcome_description,
                   md5(concat_ws('|', $source, source_id, occurred_at, reported_at, offense_code, offense_category,
                                 latitude, longitude, location_status, location_text, district, beat,
                                 premise_type, domestic, arrest, clearance_status, outcome_description)),
                   $ingest_id, $ingest_id
            FROM demo_incident_rows ORDER BY event
        """, {"source": SOURCE, "ingest_id": ingest_id})
        con.execute("""
            INSERT INTO incident_history
            SELECT $source, r.source_id, $ingest_id, h.superseded_at::TIMESTAMP, h.prev_code, h.prev_description,
                   h.prev_category, h.prev_clearance, h.prev_arrest,
                   json_object('offense_code', h.prev_code, 'offense_description', h.prev_description,
                               'offense_category', h.prev_category, 'clearance_status', h.prev_clearance,
                               'arrest', h.prev_arrest, 'occurred_at', r.occurred_at, 'beat', r.beat)
            FROM demo_history h JOIN demo_incident_rows r USING (event)
            ORDER BY h.event
        """, {"source": SOURCE, "ingest_id": ingest_id})


def _write_persons(con, spec, incidents: Incidents, persons: pd.DataFrame) -> None:
    with _registered(con, demo_persons=persons):
        con.execute("""
            INSERT INTO incident_persons
            SELECT $source, r.source_id, sha256($salt || p.person_no::VARCHAR),
                   ['victim', 'offender', 'suspect'][p.role + 1],
                   ['<18', '18-24', '25-44', '45-64', '65+'][p.age + 1]
            FROM demo_persons p JOIN demo_incident_rows r USING (event)
            ORDER BY p.event, p.role, p.person_no
        """, {"source": SOURCE, "salt": spec["city"]["person_salt"]})
    con.execute("DROP TABLE demo_incident_rows")


def _write_calls(con, geo: Geography, calls: pd.DataFrame, call_types: list[str], dispositions: list[str]) -> None:
    types = pd.DataFrame({"call_type": np.arange(len(call_types)), "call_type_name": call_types})
    outcomes = pd.DataFrame({"disposition": np.arange(len(dispositions)), "disposition_name": dispositions})
    with _registered(con, demo_calls=calls, demo_beats=_beat_frame(geo), demo_call_types=types,
                     demo_dispositions=outcomes):
        con.execute("""
            INSERT INTO calls_for_service
            SELECT $source, printf('C%d-%07d', c.year, c.seq), c.priority, t.call_type_name,
                   c.received::TIMESTAMP, c.dispatched::TIMESTAMP, c.arrived::TIMESTAMP, c.cleared::TIMESTAMP,
                   b.district_id, b.beat_id, d.disposition_name
            FROM demo_calls c
            JOIN demo_beats b USING (beat)
            JOIN demo_call_types t USING (call_type)
            JOIN demo_dispositions d USING (disposition)
            ORDER BY c.year, c.seq
        """, {"source": SOURCE})


def _write_force(con, geo: Geography, force: pd.DataFrame) -> None:
    with _registered(con, demo_force=force, demo_beats=_beat_frame(geo)):
        con.execute("""
            INSERT INTO use_of_force
            SELECT $source, printf('UOF-%d-%05d', f.year, f.seq), f.occurred::TIMESTAMP, b.district_id, b.beat_id,
                   f.force_type, f.subject_injury, f.officer_injury
            FROM demo_force f JOIN demo_beats b USING (beat)
            ORDER BY f.year, f.seq
        """, {"source": SOURCE})


def _write_survey(con, survey: pd.DataFrame) -> None:
    with _registered(con, demo_survey=survey):
        con.execute("""
            INSERT INTO community_survey
            SELECT $source, 'district', area_id, period_start::DATE, period_label, measure, value, respondents
            FROM demo_survey ORDER BY period_start, area_id, measure
        """, {"source": SOURCE})


def _write_truth(con, truth: list[dict]) -> None:
    con.executemany(
        "INSERT INTO demo_truth VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?::JSON, ?)",
        [(t["kind"], t["area_level"], t["area_id"], t["offense_category"], t["start_date"], t["end_date"],
          t["effect_size"], t["control_area_id"], json.dumps(t["details"], sort_keys=True), t["description"])
         for t in truth],
    )


def _write_log(con, ingest_id: int, started_at: dt.datetime, incidents: int, parameters: dict,
               snapshot: str | None) -> None:
    files = []
    for path in (city_spec_path(), taxonomy_path()):
        data = path.read_bytes()
        files.append({"path": _display_path(path), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    con.execute(
        "INSERT INTO ingest_log VALUES (?, 'demo', ?, NULL, NULL, ?::JSON, ?, ?, ?, ?, 0, 0, 0, ?)",
        [ingest_id, SOURCE, json.dumps(files), started_at, dt.datetime.now(dt.UTC).replace(tzinfo=None), incidents,
         incidents, snapshot],
    )
    con.executemany("INSERT OR REPLACE INTO snapshot_meta VALUES (?, ?)",
                    [("demo_parameters", json.dumps(parameters, sort_keys=True))])


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(paths.PROJECT_DIR))
    except ValueError:
        return str(path)


def _snapshot_being_written(con) -> str | None:
    """The version an open write will become (its file's stem, less '.partial'), or None if it cannot be told."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    name = Path(row[0]).name if row and row[0] else ""
    name = name.removesuffix(".partial")
    return Path(name).stem if SNAPSHOT_PATTERN.match(name) else None
