-- Tasking evaluation (ilp/analytics/evaluation.py): the areas incidents name at each level, to check a
-- named target or comparison and to know which areas need a boundary. One row per (level, area_id) with
-- incidents: level ('beat' or 'district'), area id and incidents (the snapshot's summaries,
-- ilp/summaries.sql).
SELECT 'beat' AS level, beat AS area_id, CAST(sum(incidents) AS BIGINT) AS incidents
FROM summary.weeks WHERE beat IS NOT NULL GROUP BY beat
UNION ALL
SELECT 'district' AS level, district AS area_id, incidents
FROM summary.districts
ORDER BY level, area_id;
