"""The demo city's fixed map: districts, beats and their drivers, and the km <-> lon/lat frame.

Drawn from the spec's ``city_seed`` (not the build's seed), so every build has the same map. Districts
are a Voronoi of fixed seed points clipped to the city rectangle; each district is cut into beats by a
Lloyd-relaxed Voronoi. Beats carry population, deprivation, commercial and risk scores and a few hot
points. Polygons are rounded to 6 decimals and noded so that neighbours share their edges exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon, box
from shapely.geometry.polygon import orient

from ilp.demo.city_spec import city_spec_path

KM_PER_DEGREE_LAT = 110.574
KM_PER_DEGREE_LON_AT_EQUATOR = 111.320


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
    district_polygons: list[Polygon]  # lon/lat, rounded to 6 decimals
    district_area_km2: np.ndarray
    district_response: np.ndarray
    district_trust: np.ndarray
    beat_ids: list[str]
    beat_district: np.ndarray  # index into district_ids
    beat_polygons: list[Polygon]  # lon/lat, rounded to 6 decimals (the GeoJSON exactly)
    beat_area_km2: np.ndarray
    beat_population: np.ndarray
    beat_deprivation: np.ndarray
    beat_commercial: np.ndarray
    beat_risk: np.ndarray
    hot_points: list[np.ndarray]  # per beat: rows of (lon, lat, sigma_km, weight)

    def to_lonlat(self, x_km, y_km):
        return (
            self.lon0 + (np.asarray(x_km) - self.width_km / 2) / self.km_per_lon,
            self.lat0 + (np.asarray(y_km) - self.height_km / 2) / KM_PER_DEGREE_LAT,
        )

    def to_km(self, lon, lat):
        return (
            (np.asarray(lon) - self.lon0) * self.km_per_lon + self.width_km / 2,
            (np.asarray(lat) - self.lat0) * KM_PER_DEGREE_LAT + self.height_km / 2,
        )

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
    district_cells = [
        cell.intersection(frame)
        for cell in shapely.voronoi_polygons(seeds, extend_to=frame.buffer(50), ordered=True).geoms
    ]

    geo = Geography(
        width_km=width,
        height_km=height,
        lon0=lon0,
        lat0=lat0,
        km_per_lon=km_per_lon,
        district_ids=[d["id"] for d in districts],
        district_names=[d["name"] for d in districts],
        district_polygons=[],
        district_area_km2=np.array([c.area for c in district_cells]),
        district_response=np.array([d["response"] for d in districts], dtype=float),
        district_trust=np.array([d["trust"] for d in districts], dtype=float),
        beat_ids=[],
        beat_district=np.zeros(0, dtype=np.int64),
        beat_polygons=[],
        beat_area_km2=np.zeros(0),
        beat_population=np.zeros(0, dtype=np.int64),
        beat_deprivation=np.zeros(0),
        beat_commercial=np.zeros(0),
        beat_risk=np.zeros(0),
        hot_points=[],
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
    geo.beat_commercial = (
        district_commercial[geo.beat_district] + 1.2 * np.exp(-dist_downtown / 3.0) + rng.normal(0.0, 0.25, n_beats)
    )
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
        diagram = shapely.voronoi_polygons(
            MultiPoint([tuple(p) for p in points]), extend_to=region.buffer(50), ordered=True
        )
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
    return json.dumps(
        {"type": "Polygon", "coordinates": [[list(p) for p in polygon.exterior.coords]]}, separators=(",", ":")
    )
