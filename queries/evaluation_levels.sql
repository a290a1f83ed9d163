-- Tasking evaluation (ilp/analytics/evaluation.py): the areas incidents name at each level, to check a
-- named target or comparison and to know which areas need a boundary. One row per (level, area_id) with
-- incidents: level ('beat' or 'district'), area id and incidents.
SELECT 'beat' AS level, beat AS area_id, count(*) AS incidents
FROM incidents WHERE beat IS NOT NULL GROUP BY beat
UNION ALL
SELECT 'district' AS level, district AS area_id, count(*) AS incidents
FROM incidents WHERE district IS NOT NULL GROUP BY district
ORDER BY level, area_id;
