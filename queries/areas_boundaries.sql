-- One row per district or beat with a boundary: level, area id, name, parent area id and its GeoJSON
-- geometry (WGS84), as `ilp areas` or the demo build loaded them. No rows when no areas are loaded.
SELECT level, area_id, coalesce(name, area_id) AS name, parent_id, geometry_geojson
FROM areas
WHERE level IN ('district', 'beat') AND geometry_geojson IS NOT NULL
ORDER BY level, area_id;
