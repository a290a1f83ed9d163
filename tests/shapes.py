"""Synthetic warehouses of many shapes, generated (never written by hand): what real exports look like
when they arrive. A :class:`Shape` says how one warehouse departs from the full one (4 districts of 3
beats, coordinates, exact times, 8 offence categories, 2 years of data ending 3 days ago, population,
boundaries, calls for service, use of force, a community survey and victims); :func:`build` writes it
as a *real* warehouse with ``Warehouse.write(kind="real", fresh=True)`` and INSERTs.

Each warehouse is small (a few thousand incidents) and built once per test session
(:func:`warehouse`). The shape matrix (tests/test_shapes.py) opens every page on each as every role
allowed to see it and runs the CLI; the end-to-end suite (tests/test_e2e_browser.py) serves the
many-districts shape in Chromium.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from once import built_once

from ilp.warehouse import SEGMENT_TABLES, Warehouse, writing_table

# Harm-bearing, proactive and sensitive categories alike, so every part of the pages has something.
DEFAULT_CATEGORIES = (
    "violence_with_injury",
    "robbery",
    "burglary_residential",
    "vehicle_theft",
    "shoplifting",
    "criminal_damage",
    "drug_possession",
    "sexual_other",
)
CITY_CENTRE = (41.85, -87.65)  # latitude, longitude of the synthetic city's south-west corner
CELL_DEGREES = 0.02  # each district is a square this many degrees on a side (about 2 km)


@dataclass(frozen=True)
class Shape:
    """One warehouse shape. ``districts``/``beats`` 0 means the incidents carry no such level; beats
    belong to districts round-robin when both exist."""

    name: str
    description: str
    districts: int = 4
    beats: int = 12
    long_names: bool = False
    coordinates: bool = True
    location_text: bool = True
    precision: str = "exact"  # 'exact', 'day' (date, no time) or 'month' (month only)
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    weeks: int = 104  # weeks of history
    end_days_ago: int = 3  # the last day of data, in days before today
    population: bool = True
    boundaries: bool = True
    extras: bool = True  # calls for service, use of force, community survey, victims
    incidents: int = 3000

    @property
    def end(self) -> dt.date:
        return dt.date.today() - dt.timedelta(days=self.end_days_ago)

    @property
    def start(self) -> dt.date:
        return self.end - dt.timedelta(weeks=self.weeks) + dt.timedelta(days=1)


FULL = Shape("full", "everything: 4 districts of 3 beats, coordinates, exact times, 2 years, all tables")
SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        FULL,
        replace(FULL, name="one_district", description="1 district of 3 beats", districts=1, beats=3),
        replace(FULL, name="two_districts", description="2 districts", districts=2, beats=6),
        replace(FULL, name="forty_districts", description="40 districts", districts=40, beats=80, incidents=5000),
        replace(
            FULL,
            name="many_districts",
            description="200 districts with long names",
            districts=200,
            beats=200,
            long_names=True,
            incidents=8000,
        ),
        replace(
            FULL,
            name="no_area_levels",
            description="no district or beat at all (coordinates only)",
            districts=0,
            beats=0,
        ),
        replace(FULL, name="districts_no_beats", description="districts but no beats", beats=0),
        replace(FULL, name="beats_no_districts", description="beats but no districts", districts=0),
        replace(FULL, name="no_coordinates", description="no coordinates at all", coordinates=False),
        replace(FULL, name="month_only", description="month-only dates (data.police.uk style)", precision="month"),
        replace(FULL, name="day_only", description="day-only dates (no times)", precision="day"),
        replace(
            FULL, name="single_category", description="a single offence category", categories=("burglary_residential",)
        ),
        replace(FULL, name="one_year", description="one year of history", weeks=52),
        replace(FULL, name="ten_weeks", description="10 weeks of history", weeks=10, incidents=1500),
        replace(FULL, name="five_years_old", description="data ending 5 years before today", end_days_ago=5 * 365),
        replace(FULL, name="no_population", description="no population", population=False),
        replace(FULL, name="no_boundaries", description="no boundaries", boundaries=False),
        replace(FULL, name="no_location_text", description="no location text (blocks)", location_text=False),
        replace(FULL, name="no_extras", description="no calls, use of force, survey or victims", extras=False),
    )
}


# ------------------------------------------------------------------------------------------ areas
def district_ids(shape: Shape) -> list[str]:
    return [f"{i + 1:03d}" for i in range(shape.districts)]


def beat_ids(shape: Shape) -> list[str]:
    return [f"B{i + 1:03d}" for i in range(shape.beats)]


def district_name(shape: Shape, area_id: str) -> str:
    if shape.long_names:
        return f"North-Eastern Riverside Industrial Estates and Harbour Approaches {area_id}"
    return f"District {int(area_id)} {('Harbour', 'Hill', 'Market', 'Park', 'Quay')[int(area_id) % 5]}"


def _square(lat: float, lon: float, size: float) -> str:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def _district_corner(index: int, columns: int) -> tuple[float, float]:
    row, column = divmod(index, columns)
    return CITY_CENTRE[0] + row * CELL_DEGREES, CITY_CENTRE[1] + column * CELL_DEGREES


def _beat_cell(shape: Shape, beat_index: int) -> tuple[float, float, float]:
    """South-west corner and size of the beat's square: inside its district when there are districts."""
    if shape.districts:
        columns = int(np.ceil(np.sqrt(shape.districts)))
        district = beat_index % shape.districts
        lat, lon = _district_corner(district, columns)
        within = beat_index // shape.districts
        per_district = int(np.ceil(shape.beats / shape.districts))
        side = int(np.ceil(np.sqrt(per_district)))
        size = CELL_DEGREES / side
        row, column = divmod(within, side)
        return lat + row * size, lon + column * size, size
    columns = int(np.ceil(np.sqrt(shape.beats)))
    lat, lon = _district_corner(beat_index, columns)
    return lat, lon, CELL_DEGREES


def _area_cell(shape: Shape, index: int) -> tuple[float, float, float]:
    """Where incidents of area ``index`` (a beat when there are beats, else a district) fall."""
    if shape.beats:
        return _beat_cell(shape, index % shape.beats)
    if shape.districts:
        return (*_district_corner(index % shape.districts, int(np.ceil(np.sqrt(shape.districts)))), CELL_DEGREES)
    return CITY_CENTRE[0], CITY_CENTRE[1], 4 * CELL_DEGREES


def area_rows(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    columns = int(np.ceil(np.sqrt(max(shape.districts, 1))))
    rows = []
    for index, area_id in enumerate(district_ids(shape)):
        lat, lon = _district_corner(index, columns)
        rows.append(
            {
                "level": "district",
                "area_id": area_id,
                "name": district_name(shape, area_id),
                "parent_level": None,
                "parent_id": None,
                "population": int(rng.integers(20_000, 120_000)) if shape.population else None,
                "area_km2": 4.9,
                "centroid_lat": lat + CELL_DEGREES / 2,
                "centroid_lon": lon + CELL_DEGREES / 2,
                "geometry_geojson": _square(lat, lon, CELL_DEGREES) if shape.boundaries else None,
            }
        )
    districts = district_ids(shape)
    for index, area_id in enumerate(beat_ids(shape)):
        lat, lon, size = _beat_cell(shape, index)
        rows.append(
            {
                "level": "beat",
                "area_id": area_id,
                "name": None,  # as in most exports: beats have ids, not names
                "parent_level": "district" if districts else None,
                "parent_id": districts[index % len(districts)] if districts else None,
                "population": int(rng.integers(3_000, 20_000)) if shape.population else None,
                "area_km2": 4.9 * size / CELL_DEGREES,
                "centroid_lat": lat + size / 2,
                "centroid_lon": lon + size / 2,
                "geometry_geojson": _square(lat, lon, size) if shape.boundaries else None,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "level",
            "area_id",
            "name",
            "parent_level",
            "parent_id",
            "population",
            "area_km2",
            "centroid_lat",
            "centroid_lon",
            "geometry_geojson",
        ],
    )


# ------------------------------------------------------------------------------------------ incidents
def incident_rows(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    n = shape.incidents
    days = (shape.end - shape.start).days + 1
    # a gentle upward trend and a weekly rhythm, so the series are not flat noise
    weights = np.linspace(0.8, 1.2, days) * (1 + 0.15 * (np.arange(days) % 7 >= 4))
    day = rng.choice(days, size=n, p=weights / weights.sum())
    seconds = rng.integers(0, 86_400, size=n)
    occurred = pd.to_datetime(shape.start) + pd.to_timedelta(day, unit="D")
    if shape.precision == "exact":
        occurred = occurred + pd.to_timedelta(seconds, unit="s")
    elif shape.precision == "month":
        occurred = occurred.to_period("M").to_timestamp()
    reported = occurred + pd.to_timedelta(rng.exponential(1.5, size=n) * 86_400, unit="s")

    categories = np.array(shape.categories)
    category = categories[rng.integers(0, len(categories), size=n)]
    # areas: districts and beats are skewed, so some carry much more than others
    area_count = max(shape.beats, shape.districts, 1)
    skew = 0.7 * rng.dirichlet(np.full(area_count, 0.8)) + 0.3 / area_count
    area = rng.choice(area_count, size=n, p=skew / skew.sum())
    beats, districts = beat_ids(shape), district_ids(shape)
    beat = [beats[a % len(beats)] for a in area] if beats else [None] * n
    if districts and beats:
        district = [districts[(a % len(beats)) % len(districts)] for a in area]
    elif districts:
        district = [districts[a % len(districts)] for a in area]
    else:
        district = [None] * n

    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    if shape.coordinates:
        cells = np.array([_area_cell(shape, a) for a in range(area_count)])  # lat, lon, size of each area
        corner_lat, corner_lon, size = cells[area, 0], cells[area, 1], cells[area, 2]
        lat = corner_lat + rng.uniform(0.05, 0.95, size=n) * size
        lon = corner_lon + rng.uniform(0.05, 0.95, size=n) * size
        # one in twenty without a usable location, as in real exports
        missing = rng.random(n) < 0.05
        lat[missing] = np.nan
        lon[missing] = np.nan
        status = np.where(missing, "missing", "ok")
    else:
        status = np.full(n, "missing")
    # blocks: a few hundred, some busy, so repeat locations exist
    blocks = np.array([f"{(i * 37) % 120:03d}XX W SHAPE ST" for i in range(300)])
    block = blocks[rng.zipf(1.6, size=n) % len(blocks)] if shape.location_text else np.full(n, None)
    clearance = rng.choice(["open", "cleared_arrest", "cleared_other"], size=n, p=[0.7, 0.2, 0.1])
    return pd.DataFrame(
        {
            "source": "shape",
            "source_id": [f"{shape.name}-{i:06d}" for i in range(n)],
            "occurred_at": occurred,
            "occurred_precision": shape.precision,
            "reported_at": reported,
            "offense_code": category,
            "offense_description": category,
            "offense_category": category,
            "latitude": lat,
            "longitude": lon,
            "location_status": status,
            "location_text": block,
            "district": district,
            "beat": beat,
            "domestic": rng.random(n) < 0.15,
            "arrest": clearance == "cleared_arrest",
            "clearance_status": clearance,
            "row_hash": [f"h{i}" for i in range(n)],
            "first_ingest_id": 1,
            "last_ingest_id": 1,
        }
    )


def person_rows(incidents: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A victim for most incidents, a few hundred people, so some are repeat victims."""
    chosen = incidents.sample(frac=0.7, random_state=int(rng.integers(1 << 30)))
    people = max(len(chosen) // 3, 1)
    return pd.DataFrame(
        {
            "source": chosen["source"].to_numpy(),
            "source_id": chosen["source_id"].to_numpy(),
            "person_key": [f"p{k}" for k in rng.integers(0, people, size=len(chosen))],
            "role": "victim",
            "age_band": rng.choice(["<18", "18-24", "25-44", "45-64", "65+"], size=len(chosen)),
        }
    )


def call_rows(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    n = shape.incidents // 2
    days = (shape.end - shape.start).days + 1
    received = pd.to_datetime(shape.start) + pd.to_timedelta(rng.integers(0, days * 86_400, size=n), unit="s")
    dispatched = received + pd.to_timedelta(rng.exponential(120, size=n), unit="s")
    arrived = dispatched + pd.to_timedelta(rng.gamma(3, 150, size=n), unit="s")
    districts, beats = district_ids(shape), beat_ids(shape)
    return pd.DataFrame(
        {
            "source": "shape",
            "call_id": [f"c{i}" for i in range(n)],
            "priority": rng.choice([1, 2, 3], size=n, p=[0.3, 0.4, 0.3]),
            "call_type": "disturbance",
            "received_at": received,
            "dispatched_at": dispatched,
            "arrived_at": arrived,
            "cleared_at": arrived + pd.to_timedelta(1800, unit="s"),
            "district": [districts[i % len(districts)] for i in range(n)] if districts else None,
            "beat": [beats[i % len(beats)] for i in range(n)] if beats else None,
            "disposition": "advised",
        }
    )


def force_rows(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    n = max(shape.incidents // 40, 10)
    days = (shape.end - shape.start).days + 1
    districts = district_ids(shape)
    return pd.DataFrame(
        {
            "source": "shape",
            "event_id": [f"f{i}" for i in range(n)],
            "occurred_at": pd.to_datetime(shape.start)
            + pd.to_timedelta(rng.integers(0, days * 86_400, size=n), unit="s"),
            "district": [districts[i % len(districts)] for i in range(n)] if districts else None,
            "beat": None,
            "force_type": rng.choice(["physical", "taser", "baton"], size=n),
            "subject_injury": rng.random(n) < 0.2,
            "officer_injury": rng.random(n) < 0.1,
        }
    )


def survey_rows(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    quarters = pd.period_range(shape.start, shape.end, freq="Q")
    areas = [("district", d) for d in district_ids(shape)] or [("city", "citywide")]
    rows = [
        {
            "source": "shape",
            "area_level": level,
            "area_id": area_id,
            "period_start": quarter.start_time.date(),
            "period_label": str(quarter).replace("Q", "-Q"),
            "measure": measure,
            "value": float(rng.uniform(0.4, 0.8)),
            "respondents": int(rng.integers(40, 200)),
        }
        for quarter in quarters
        for level, area_id in areas
        for measure in ("trust_police", "feel_safe_night")
    ]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ writing
def build(shape: Shape, directory: Path) -> Path:
    """Write ``shape`` as a new real warehouse in ``directory`` (which must not hold one yet)."""
    rng = np.random.default_rng(zlib.crc32(shape.name.encode()))
    incidents = incident_rows(shape, rng)
    tables = {"areas": area_rows(shape, rng), "incidents": incidents}
    if shape.extras:
        tables["incident_persons"] = person_rows(incidents, rng)
        tables["calls_for_service"] = call_rows(shape, rng)
        tables["use_of_force"] = force_rows(shape, rng)
        tables["community_survey"] = survey_rows(shape, rng)
    target = Warehouse(directory)
    with target.write(kind="real", fresh=True, note=f"shape {shape.name}") as con:
        for table, frame in tables.items():
            if frame.empty:
                continue
            con.register("new_rows", frame)
            con.execute(
                f"INSERT INTO {writing_table(con, table) if table in SEGMENT_TABLES else table} BY NAME SELECT * FROM new_rows"
            )
            con.unregister("new_rows")
        con.execute(
            "INSERT INTO ingest_log (ingest_id, kind, source, started_at, finished_at, rows_read, loaded, updated, "
            "unchanged, rejected, snapshot) VALUES (1, 'ingest', 'shape', now(), now(), ?, ?, 0, 0, 0, ?)",
            [len(incidents), len(incidents), target.writing_version],
        )
    return directory


_BUILT: dict[str, Path] = {}


def warehouse(name: str, tmp_path_factory) -> Path:
    """The warehouse of shape ``name``, built once per test session."""
    if name not in _BUILT:
        folder = built_once(tmp_path_factory, f"shape_{name}", lambda folder: build(SHAPES[name], folder / "warehouse"))
        _BUILT[name] = folder / "warehouse"
    return _BUILT[name]
