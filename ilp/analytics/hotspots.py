"""Square grid cells for the deployment map: where harm concentrates, cell by cell.

The grid is a fixed lattice in degrees, anchored at (0, 0), whose cells are ``cell_m`` metres on a side at
the grid's reference latitude (the city's latitude rounded to half a degree, so a new snapshot of the same
city keeps the same cells). A point's cell is ``(floor(lon / dlon), floor(lat / dlat))``. The SQL in
``queries/deployment_cells.sql`` bins with exactly this rule, given ``Grid.params()``; ``Grid.cell_of``
is the same rule in numpy, used by tests and anywhere a point must be placed in Python.

No DuckDB spatial or h3 extension is used: both download at run time, which an air-gapped site cannot do.

Hot-spot concentration is reported the way the forecasting literature scores maps (Chainey, Tompson &
Uhlig 2008): the share of harm in the top cells against the share of the area they cover.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd

CELL_METRES = 250.0

# Shifts by hour of occurrence: [start, end) in local hours; night wraps past midnight.
SHIFTS: dict[str, tuple[str, tuple[int, int] | None]] = {
    "all": ("All hours", None),
    "day": ("Day 07:00-15:00", (7, 15)),
    "evening": ("Evening 15:00-23:00", (15, 23)),
    "night": ("Night 23:00-07:00", (23, 7)),
}


def metres_per_degree(latitude: float) -> tuple[float, float]:
    """(metres per degree of latitude, metres per degree of longitude) on the WGS84 ellipsoid."""
    phi = math.radians(latitude)
    per_lat = 111132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi) - 0.0023 * math.cos(6 * phi)
    per_lon = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi) + 0.118 * math.cos(5 * phi)
    return per_lat, per_lon


@dataclasses.dataclass(frozen=True)
class Grid:
    """A square-cell lattice: ``cell_m`` metres a side at ``lat_ref``."""

    cell_m: float
    lat_ref: float

    @property
    def dlat(self) -> float:
        return self.cell_m / metres_per_degree(self.lat_ref)[0]

    @property
    def dlon(self) -> float:
        return self.cell_m / metres_per_degree(self.lat_ref)[1]

    @property
    def cell_km2(self) -> float:
        return (self.cell_m / 1000.0) ** 2

    def params(self) -> dict[str, float]:
        """The named-query parameters the SQL binning needs."""
        return {"cell_dlat": self.dlat, "cell_dlon": self.dlon}

    def cell_of(self, latitude, longitude) -> tuple[np.ndarray, np.ndarray]:
        """(cell_x, cell_y) integer indices of points; the same rule as the SQL."""
        lat = np.asarray(latitude, dtype=float)
        lon = np.asarray(longitude, dtype=float)
        return np.floor(lon / self.dlon).astype(np.int64), np.floor(lat / self.dlat).astype(np.int64)

    def centre(self, cell_x, cell_y) -> tuple[np.ndarray, np.ndarray]:
        """(latitude, longitude) of the centres of cells."""
        cell_x = np.asarray(cell_x, dtype=float)
        cell_y = np.asarray(cell_y, dtype=float)
        return (cell_y + 0.5) * self.dlat, (cell_x + 0.5) * self.dlon

    def polygons(self, cell_x, cell_y) -> list[list[list[float]]]:
        """Each cell's outline as a closed ring of [lon, lat] corners (what deck.gl's PolygonLayer takes)."""
        x0 = np.asarray(cell_x, dtype=float) * self.dlon
        y0 = np.asarray(cell_y, dtype=float) * self.dlat
        x1, y1 = x0 + self.dlon, y0 + self.dlat
        corners = np.stack(
            [np.stack(pair, axis=-1) for pair in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))], axis=1
        )
        return np.round(corners, 6).tolist()

    def polygon_expression(self, inset: float = 0.0) -> str:
        """A deck.gl JSON accessor expression drawing the cell of a row with integer fields ``x`` and ``y``,
        its square shrunk by ``inset`` (a fraction of the side) on each edge.

        The browser computes the corners, so each cell travels as two integers instead of ten coordinates.
        """
        lon, lat = repr(self.dlon), repr(self.dlat)
        low, high = (f" + {inset!r}", f" + {1 - inset!r}") if inset else ("", " + 1")
        x0, x1, y0, y1 = f"(x{low})", f"(x{high})", f"(y{low})", f"(y{high})"
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
        return "[" + ", ".join(f"[{cx} * {lon}, {cy} * {lat}]" for cx, cy in corners) + "]"


def grid_for(latitude: float | None, cell_m: float = CELL_METRES) -> Grid:
    """The grid for a city at ``latitude`` (rounded to half a degree so the cells stay put between snapshots)."""
    lat_ref = 0.0 if latitude is None or not np.isfinite(latitude) else round(float(latitude) * 2) / 2
    return Grid(cell_m=cell_m, lat_ref=lat_ref)


# ------------------------------------------------------------------------------------ period summary
@dataclasses.dataclass(frozen=True)
class LocationSummary:
    """What the map can and cannot show for a period: counts from ``deployment_summary.sql``."""

    incidents: int  # all incidents in the period (district, category), every shift
    unlocated: int  # location_status <> 'ok'
    no_shift: int  # occurred time known only to the day or month (no shift)
    in_shift: int  # incidents in the chosen shift (all incidents when shift = 'all')
    mapped: int  # located incidents in the chosen shift: what the cells add up to
    unlocated_in_shift: int  # unlocated incidents in the chosen shift
    exact_share: float  # share of incidents with an exact time

    @property
    def unlocated_share(self) -> float:
        return self.unlocated_in_shift / self.in_shift if self.in_shift else 0.0


def summarise_locations(summary: pd.DataFrame, shift: str) -> LocationSummary:
    """Collapse ``deployment_summary.sql`` (one row per shift x located) into the map's caption numbers."""
    frame = summary.copy()
    frame["incidents"] = frame["incidents"].astype("int64")
    total = int(frame["incidents"].sum())
    located = frame["located"].astype(bool)
    timed = frame["shift"].notna()
    in_shift = timed & (frame["shift"] == shift) if shift != "all" else pd.Series(True, index=frame.index)
    return LocationSummary(
        incidents=total,
        unlocated=int(frame.loc[~located, "incidents"].sum()),
        no_shift=int(frame.loc[~timed, "incidents"].sum()),
        in_shift=int(frame.loc[in_shift, "incidents"].sum()),
        mapped=int(frame.loc[in_shift & located, "incidents"].sum()),
        unlocated_in_shift=int(frame.loc[in_shift & ~located, "incidents"].sum()),
        exact_share=float(frame.loc[timed, "incidents"].sum()) / total if total else 0.0,
    )


# ------------------------------------------------------------------------------------ concentration
@dataclasses.dataclass(frozen=True)
class Concentration:
    top_n: int
    harm_share: float  # share of the period's located harm in the top cells (0..1)
    incident_share: float  # share of located incidents in the top cells
    area_share: float  # share of the reference area the top cells cover (0..1)
    area_basis: str  # what the reference area is, in words
    area_km2: float


def rank_cells(cells: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Cells ranked by harm (then count), with shares of total harm and cumulative shares of harm and area.

    ``cells`` has cell_x, cell_y, incidents, harm (as ``deployment_cells.sql`` returns them).
    """
    ranked = cells.sort_values(
        ["harm", "incidents", "cell_x", "cell_y"], ascending=[False, False, True, True], ignore_index=True
    )
    total_harm = float(ranked["harm"].sum())
    total_incidents = float(ranked["incidents"].sum())
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    ranked["harm_share"] = ranked["harm"] / total_harm if total_harm else 0.0
    ranked["incident_share"] = ranked["incidents"] / total_incidents if total_incidents else 0.0
    ranked["cumulative_harm_share"] = ranked["harm_share"].cumsum()
    lat, lon = grid.centre(ranked["cell_x"], ranked["cell_y"])
    ranked["centre_lat"] = np.round(lat, 5)
    ranked["centre_lon"] = np.round(lon, 5)
    ranked["cell"] = (
        ranked["centre_lat"].map("{:.4f}".format).astype("string")
        + ", "
        + ranked["centre_lon"].map("{:.4f}".format).astype("string")
    )
    return ranked


def concentration(ranked: pd.DataFrame, top_n: int, grid: Grid, area_km2: float, area_basis: str) -> Concentration:
    """Share of harm and incidents in the ``top_n`` cells of ``rank_cells`` output, and the area they cover."""
    top = ranked.head(top_n)
    return Concentration(
        top_n=len(top),
        harm_share=float(top["harm_share"].sum()) if len(top) else 0.0,
        incident_share=float(top["incident_share"].sum()) if len(top) else 0.0,
        area_share=(len(top) * grid.cell_km2 / area_km2) if area_km2 else float("nan"),
        area_basis=area_basis,
        area_km2=area_km2,
    )


def area_share_holding(ranked: pd.DataFrame, grid: Grid, area_km2: float, harm_share: float = 0.5) -> tuple[int, float]:
    """(cells, share of the area) of the fewest cells that together hold ``harm_share`` of the harm."""
    if ranked.empty or not area_km2:
        return 0, float("nan")
    cells = int(np.searchsorted(ranked["cumulative_harm_share"].to_numpy(dtype=float), harm_share - 1e-12) + 1)
    cells = min(cells, len(ranked))
    return cells, cells * grid.cell_km2 / area_km2


def concentration_curve(ranked: pd.DataFrame, grid: Grid, area_km2: float) -> pd.DataFrame:
    """Cumulative share of harm against cumulative share of area, cells taken in rank order (a Lorenz-style curve)."""
    return pd.DataFrame(
        {
            "cells": ranked["rank"],
            "area_share": ranked["rank"] * grid.cell_km2 / area_km2 if area_km2 else np.nan,
            "harm_share": ranked["cumulative_harm_share"],
        }
    )


# ------------------------------------------------------------------------------------ map layers
# Harm bands: cells taken most harmful first; a cell's band is where the harm BEFORE it falls, so the darkest
# band is the smallest set of cells holding the first 10% of the period's harm, and so on.
HARM_BAND_EDGES = (0.10, 0.25, 0.50, 0.75, 1.00)
HARM_BAND_LABELS = ("first 10% of harm", "10-25%", "25-50%", "50-75%", "75-100%")
# ColorBrewer YlOrRd (5 classes), darkest first to match the bands.
HARM_PALETTE = np.array([[189, 0, 38], [240, 59, 32], [253, 141, 60], [254, 204, 92], [255, 255, 178]], dtype=int)
NO_HARM_COLOUR = [200, 200, 200]


def harm_bands(ranked: pd.DataFrame) -> np.ndarray:
    """Band 0..4 of each ranked cell (see HARM_BAND_EDGES); -1 for cells without harm."""
    share = ranked["harm_share"].to_numpy(dtype=float)
    before = ranked["cumulative_harm_share"].to_numpy(dtype=float) - share
    bands = np.searchsorted(np.asarray(HARM_BAND_EDGES), before + 1e-12, side="left")
    bands = np.minimum(bands, len(HARM_BAND_EDGES) - 1)
    return np.where(share > 0, bands, -1)


def harm_band_legend(ranked: pd.DataFrame) -> list[dict]:
    """One entry per band: colour, label, number of cells, and the band's harm range per cell."""
    bands = harm_bands(ranked)
    harm = ranked["harm"].to_numpy(dtype=float)
    return [
        {
            "colour": HARM_PALETTE[k].tolist(),
            "label": HARM_BAND_LABELS[k],
            "cells": int((bands == k).sum()),
            "low": float(harm[bands == k].min()),
            "high": float(harm[bands == k].max()),
        }
        for k in range(len(HARM_BAND_EDGES))
        if (bands == k).any()
    ]


def rank_areas(areas: pd.DataFrame) -> pd.DataFrame:
    """Areas (rows of ``deployment_areas.sql``: area_id, area_name, incidents, harm) ranked by harm, with
    each one's share of the period's harm and the cumulative share, in percent: the deployment page's
    ranking when the source has no coordinates to map."""
    ranked = areas.sort_values(["harm", "incidents", "area_id"], ascending=[False, False, True], kind="stable")
    ranked = ranked.reset_index(drop=True)
    total = float(ranked["harm"].sum())
    share = ranked["harm"].astype(float) / total if total else ranked["harm"].astype(float) * 0.0
    return ranked.assign(
        rank=np.arange(1, len(ranked) + 1),
        harm_share_pct=share * 100,
        cumulative_pct=share.cumsum() * 100,
    )


def map_cells(
    ranked: pd.DataFrame, district_names: dict | None = None, levels: tuple[str, ...] = ("beat", "district")
) -> pd.DataFrame:
    """The cell layer's rows: cell indices (drawn with ``Grid.polygon_expression``), fill colour and
    preformatted tooltip fields, one row per cell. ``place`` names the cell's beat and district, only the
    levels the data records (``levels``): 'Beat 1A · district Harbour', 'District 003', or ''."""
    bands = harm_bands(ranked)
    colours = np.where(bands[:, None] >= 0, HARM_PALETTE[np.clip(bands, 0, None)], NO_HARM_COLOUR)
    names = district_names or {}
    beat = [b if isinstance(b, str) and b else "unknown" for b in ranked["beat"]]
    district = [str(names.get(d, d)) if isinstance(d, str) and d else "unknown" for d in ranked["district"]]
    place = [
        " · ".join(([f"Beat {b}"] if "beat" in levels else []) + ([f"District {d}"] if "district" in levels else []))
        for b, d in zip(beat, district)
    ]
    return pd.DataFrame(
        {
            "x": ranked["cell_x"].astype("int64"),
            "y": ranked["cell_y"].astype("int64"),
            "fill": np.column_stack([colours, np.full(len(ranked), 200)]).tolist(),
            "band": np.array(HARM_BAND_LABELS + ("no harm",))[bands],
            "cell": ranked["cell"],
            "rank": ranked["rank"].astype(int),
            "incidents": ranked["incidents"].astype(int),
            "harm": ranked["harm"].astype(float).round(1),
            "harm_text": ranked["harm"].map("{:,.0f}".format).astype("string"),
            "share_text": (ranked["harm_share"] * 100).map("{:.1f}%".format).astype("string"),
            "beat": pd.Series(beat, index=ranked.index, dtype="string"),
            "district": pd.Series(district, index=ranked.index, dtype="string"),
            "place": pd.Series(place, index=ranked.index, dtype="string"),
        }
    )


def boundary_collection(areas: pd.DataFrame, level: str) -> dict:
    """A GeoJSON FeatureCollection of one level's areas (rows of ``areas_boundaries.sql``)."""
    rows = areas[(areas["level"] == level) & areas["geometry_geojson"].notna()]
    features = [
        {
            "type": "Feature",
            "geometry": json.loads(geometry),
            "properties": {"level": level, "area_id": area_id, "name": name if isinstance(name, str) else area_id},
        }
        for geometry, area_id, name in zip(rows["geometry_geojson"], rows["area_id"], rows["name"])
    ]
    return {"type": "FeatureCollection", "features": features}


def collection_bounds(collection: dict) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of a FeatureCollection's Polygon/MultiPolygon coordinates."""
    points = []
    for feature in collection["features"]:
        geometry = feature["geometry"]
        polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        points.extend(point for polygon in polygons for ring in polygon for point in ring)
    coords = np.asarray(points, dtype=float)
    return float(coords[:, 0].min()), float(coords[:, 1].min()), float(coords[:, 0].max()), float(coords[:, 1].max())


def view_for(
    min_lon: float, min_lat: float, max_lon: float, max_lat: float, width_px: int = 900, height_px: int = 620
) -> dict:
    """Centre and zoom of a web-Mercator view that fits the box in a map of the given size.

    deck.gl's world is 512 pixels wide at zoom 0.
    """
    lon_span = max(max_lon - min_lon, 1e-4)
    lat_span = max(max_lat - min_lat, 1e-4)
    lat_mid = (min_lat + max_lat) / 2
    zoom_x = math.log2(360.0 * width_px / (512.0 * lon_span))
    zoom_y = math.log2(360.0 * height_px / (512.0 * lat_span / max(math.cos(math.radians(lat_mid)), 0.1)))
    return {
        "latitude": lat_mid,
        "longitude": (min_lon + max_lon) / 2,
        "zoom": round(max(1.0, min(zoom_x, zoom_y, 17.0)) - 0.2, 2),
    }
