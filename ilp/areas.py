"""Area boundaries and populations for a real warehouse (`ilp areas`).

A real export rarely carries polygons or populations; the agency supplies them once as GeoJSON and a
CSV. Without them the pages degrade honestly (no per-capita rates, no boundary layer) and say why.
Incidents whose export has no id at that level get one by point-in-polygon (shapely), at load time,
never on a page's hot path.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyproj
import shapely
from shapely.geometry import mapping as geometry_mapping
from shapely.geometry import shape

from ilp.errors import UserError
from ilp.warehouse import Warehouse, WarehouseError, replace_incidents

_GEOD = pyproj.Geod(ellps="WGS84")
ASSIGNABLE_LEVELS = ("district", "beat")


class AreasError(UserError):
    pass


def read_features(geojson: Path, id_field: str, name_field: str | None, parent_field: str | None) -> list[dict]:
    try:
        document = json.loads(Path(geojson).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AreasError(f"{geojson}: file not found.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AreasError(f"{geojson}: not valid GeoJSON ({error}).") from None
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list) or not features:
        raise AreasError(f"{geojson}: expected a FeatureCollection with at least one feature.")
    rows, seen = [], set()
    for number, feature in enumerate(features, start=1):
        properties = feature.get("properties") or {}
        if id_field not in properties or properties[id_field] in (None, ""):
            available = ", ".join(sorted(properties)) or "none"
            raise AreasError(f"{geojson}: feature {number} has no property {id_field!r} (properties: {available}).")
        area_id = str(properties[id_field]).strip()
        if area_id in seen:
            raise AreasError(f"{geojson}: feature {number} repeats area id {area_id!r}.")
        seen.add(area_id)
        try:
            geometry = shape(feature["geometry"])
        except Exception as error:
            raise AreasError(f"{geojson}: feature {number} ({area_id}) has an unusable geometry ({error}).") from None
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise AreasError(f"{geojson}: feature {number} ({area_id}) is a {geometry.geom_type}, not a polygon.")
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
        minx, miny, maxx, maxy = geometry.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise AreasError(
                f"{geojson}: feature {number} ({area_id}) has coordinates outside longitude/latitude range; "
                "GeoJSON must be WGS84 (EPSG:4326)."
            )
        area_m2, _ = _GEOD.geometry_area_perimeter(geometry)
        centroid = geometry.representative_point()
        rows.append(
            {
                "area_id": area_id,
                "name": str(properties.get(name_field, area_id)) if name_field else area_id,
                "parent_id": str(properties[parent_field]).strip()
                if parent_field and properties.get(parent_field) is not None
                else None,
                "area_km2": abs(area_m2) / 1e6,
                "centroid_lat": centroid.y,
                "centroid_lon": centroid.x,
                "geometry": geometry,
            }
        )
    return rows


def read_population(path: Path) -> dict[str, int]:
    populations: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"area_id", "population"} <= set(reader.fieldnames):
            raise AreasError(f"{path}: needs columns area_id,population (found {reader.fieldnames}).")
        for line, row in enumerate(reader, start=2):
            try:
                value = int(str(row["population"]).replace(",", "").strip())
            except ValueError:
                raise AreasError(
                    f"{path}, line {line}, field population: {row['population']!r} is not a whole number."
                ) from None
            if value < 0:
                raise AreasError(f"{path}, line {line}, field population: cannot be negative.")
            populations[str(row["area_id"]).strip()] = value
    return populations


def load_areas(
    warehouse: Warehouse,
    *,
    geojson: Path,
    level: str,
    id_field: str,
    name_field: str | None = None,
    parent_level: str | None = None,
    parent_field: str | None = None,
    population_csv: Path | None = None,
) -> dict:
    """Replace the areas of one level and assign incidents lacking an id at that level."""
    if warehouse.kind() == "demo":
        raise WarehouseError("The demo city ships its own areas; load boundaries into a real warehouse (--warehouse).")
    warehouse.require_current()
    rows = read_features(geojson, id_field, name_field, parent_field)
    populations = read_population(population_csv) if population_csv else {}
    unknown = sorted(set(populations) - {r["area_id"] for r in rows})
    if unknown:
        raise AreasError(f"{population_csv}: area ids not in {geojson}: {', '.join(unknown[:10])}.")
    with warehouse.write(kind="real", note=f"areas {level} from {Path(geojson).name}") as con:
        con.execute("DELETE FROM areas WHERE level = ?", [level])
        con.executemany(
            "INSERT INTO areas VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    level,
                    r["area_id"],
                    r["name"],
                    parent_level if r["parent_id"] else None,
                    r["parent_id"],
                    populations.get(r["area_id"]),
                    r["area_km2"],
                    r["centroid_lat"],
                    r["centroid_lon"],
                    json.dumps(geometry_mapping(r["geometry"])),
                )
                for r in rows
            ],
        )
        assigned = _assign_incidents(con, level, rows) if level in ASSIGNABLE_LEVELS else 0
        matched = (
            con.execute(
                f"SELECT count(*) FILTER (WHERE {level} IN (SELECT area_id FROM areas WHERE level = ?)), count(*) "
                "FROM incidents",
                [level],
            ).fetchone()
            if level in ASSIGNABLE_LEVELS
            else (None, None)
        )
    return {
        "snapshot": warehouse.current_version(),
        "level": level,
        "areas": len(rows),
        "with_population": sum(1 for r in rows if r["area_id"] in populations),
        "incidents_assigned_by_location": assigned,
        "incidents_matching_an_area": matched[0],
        "incidents": matched[1],
    }


def _assign_incidents(con, level: str, rows: list[dict]) -> int:
    """Point-in-polygon for incidents with a usable location and no id at this level."""
    frame = con.execute(
        f"SELECT source, source_id, longitude, latitude FROM incidents WHERE {level} IS NULL AND location_status = 'ok'"
    ).df()
    if frame.empty:
        return 0
    tree = shapely.STRtree([r["geometry"] for r in rows])
    points = shapely.points(frame["longitude"].to_numpy(), frame["latitude"].to_numpy())
    point_index, area_index = tree.query(points, predicate="within")
    if len(point_index) == 0:
        return 0
    ids = np.array([r["area_id"] for r in rows], dtype=object)
    _, first = np.unique(point_index, return_index=True)  # a point on a shared edge takes the first area
    hits = frame.iloc[point_index[first]][["source", "source_id"]].copy()
    hits["area_id"] = ids[area_index[first]]
    con.register("area_hits", hits)
    replace_incidents(
        con,
        f"SELECT i.* REPLACE (h.area_id AS {level}) FROM incidents i JOIN area_hits h USING (source, source_id) "
        f"WHERE i.{level} IS DISTINCT FROM h.area_id",
    )
    con.unregister("area_hits")
    return len(hits)
