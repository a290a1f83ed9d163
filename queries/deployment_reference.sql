-- One row: the reference latitude for the deployment grid (median latitude of located incidents in the
-- whole warehouse; the grid rounds it to half a degree) and the reference area for concentration figures
-- (the district-level area in km2 from `ilp areas`, the chosen district's when $district is set; NULL when
-- no areas are loaded).
SELECT
    (SELECT median(latitude) FROM incidents WHERE location_status = 'ok') AS median_latitude,
    (SELECT sum(area_km2) FROM areas
      WHERE level = 'district' AND ($district IS NULL OR area_id = $district)) AS area_km2,
    (SELECT count(*) FROM areas WHERE geometry_geojson IS NOT NULL) AS areas_with_geometry;
