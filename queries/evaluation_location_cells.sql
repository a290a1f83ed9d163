-- Tasking evaluation (ilp/analytics/evaluation.py): where each location in $locations (location_text, a
-- block as the source publishes it) is. One row per location with incidents: the grid cell holding most of
-- its located incidents (cell_x = floor(longitude / $cell_dlon), cell_y = floor(latitude / $cell_dlat);
-- NULL when none is located), how many of its incidents are located, and its commonest beat and district
-- (the buffer of a location without coordinates is its beat).
WITH at_location AS (
    SELECT
        location_text,
        CASE WHEN location_status = 'ok' THEN floor(longitude / $cell_dlon)::BIGINT END AS cell_x,
        CASE WHEN location_status = 'ok' THEN floor(latitude / $cell_dlat)::BIGINT END AS cell_y,
        beat,
        district
    FROM incidents
    WHERE list_contains(CAST($locations AS VARCHAR[]), location_text)
),
cell_counts AS (
    SELECT location_text, cell_x, cell_y, count(*) AS incidents
    FROM at_location
    WHERE cell_x IS NOT NULL
    GROUP BY location_text, cell_x, cell_y
),
main_cell AS (
    SELECT location_text, cell_x, cell_y
    FROM cell_counts
    QUALIFY row_number() OVER (PARTITION BY location_text ORDER BY incidents DESC, cell_x, cell_y) = 1
)
SELECT
    a.location_text,
    m.cell_x,
    m.cell_y,
    count(a.cell_x) AS located_incidents,
    mode(a.beat) AS beat,
    mode(a.district) AS district
FROM at_location a
LEFT JOIN main_cell m USING (location_text)
GROUP BY a.location_text, m.cell_x, m.cell_y
ORDER BY a.location_text;
