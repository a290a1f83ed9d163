-- Tasking evaluation (ilp/analytics/evaluation.py): which areas of one level ($level: 'beat' or
-- 'district') are neighbours, for a warehouse without boundaries. One row per pair of areas (area_a <
-- area_b) whose located incidents fall in the same grid cells (cell_x = floor(longitude / $cell_dlon),
-- cell_y = floor(latitude / $cell_dlat)): shared_cells, and each area's own number of occupied cells. Two
-- areas with a common boundary share the cells the boundary crosses; a stray mis-placed incident shares
-- one or two, which is why the caller asks for more.
WITH occupied AS (
    SELECT DISTINCT
        CASE $level WHEN 'beat' THEN beat ELSE district END AS area_id,
        floor(longitude / $cell_dlon)::BIGINT AS cell_x,
        floor(latitude / $cell_dlat)::BIGINT AS cell_y
    FROM incidents
    WHERE location_status = 'ok'
),
sizes AS (
    SELECT area_id, count(*) AS cells FROM occupied WHERE area_id IS NOT NULL GROUP BY area_id
)
SELECT
    a.area_id AS area_a,
    b.area_id AS area_b,
    count(*) AS shared_cells,
    any_value(sa.cells) AS cells_a,
    any_value(sb.cells) AS cells_b
FROM occupied a
JOIN occupied b ON a.cell_x = b.cell_x AND a.cell_y = b.cell_y AND a.area_id < b.area_id
JOIN sizes sa ON sa.area_id = a.area_id
JOIN sizes sb ON sb.area_id = b.area_id
GROUP BY a.area_id, b.area_id
ORDER BY a.area_id, b.area_id;
