-- What a snapshot offers (ilp/snapshot.py `SnapshotInfo`). One row per area level loaded in the areas
-- table: how many areas, how many with a population and how many with a boundary.
SELECT level, count(*) AS areas, count(population) AS with_population, count(geometry_geojson) AS with_geometry
FROM areas
GROUP BY level
ORDER BY level;
