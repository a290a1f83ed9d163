-- Tasking evaluation (ilp/analytics/evaluation.py): weekly incidents and harm of the offence categories
-- $categories in groups of grid cells, a location's displacement buffer. The parallel lists $cell_groups,
-- $cell_xs and $cell_ys name each group's cells (cell_x = floor(longitude / $cell_dlon), cell_y =
-- floor(latitude / $cell_dlat), the deployment map's grid: ilp/analytics/hotspots.py). Incidents at the
-- locations $exclude_locations (the target and comparison themselves) are left out. Weeks are counted from
-- $start as in evaluation_weekly_series.sql, weeks $first_week to $last_week (exclusive). One row per
-- (cell_group, offense_category, week) with at least one incident: incidents and harm (incident_harm,
-- ilp/harm.sql).
WITH cells AS (
    SELECT
        unnest(CAST($cell_groups AS VARCHAR[])) AS cell_group,
        unnest(CAST($cell_xs AS BIGINT[])) AS cell_x,
        unnest(CAST($cell_ys AS BIGINT[])) AS cell_y
),
located AS (
    SELECT
        floor(i.longitude / $cell_dlon)::BIGINT AS cell_x,
        floor(i.latitude / $cell_dlat)::BIGINT AS cell_y,
        i.offense_category,
        CAST(floor(date_diff('day', CAST($start AS DATE), CAST(i.occurred_at AS DATE)) / 7) AS INTEGER) AS week,
        i.harm
    FROM incident_harm($harm_index, $harm_version) i
    WHERE list_contains(CAST($categories AS VARCHAR[]), i.offense_category)
      AND i.location_status = 'ok'
      AND i.occurred_at >= CAST($start AS DATE) + 7 * CAST($first_week AS INTEGER)
      AND i.occurred_at < CAST($start AS DATE) + 7 * CAST($last_week AS INTEGER)
      AND (i.location_text IS NULL OR NOT list_contains(CAST($exclude_locations AS VARCHAR[]), i.location_text))
)
SELECT
    c.cell_group,
    l.offense_category,
    l.week,
    count(*) AS incidents,
    coalesce(sum(l.harm), 0) AS harm
FROM located l
JOIN cells c ON c.cell_x = l.cell_x AND c.cell_y = l.cell_y
GROUP BY c.cell_group, l.offense_category, l.week
ORDER BY c.cell_group, l.offense_category, l.week;
