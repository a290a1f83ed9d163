-- Weekly series (Command brief chart, Trends and forecasts). One row per week (Monday) from
-- $history_start, or from the first complete week of data if that is later, to the selected week
-- $week: incidents recorded that week and their harm in the chosen index (incident_harm, ilp/harm.sql:
-- proactive categories weigh 0, as the CCHI excludes them). Weeks without incidents appear with 0.
-- Respects the district and category filters.
WITH first_complete_week AS (
    -- the Monday on or after the first day with data (a partial first week would look like a drop)
    SELECT CAST(date_trunc('week', CAST(min(occurred_at) AS DATE) + 6) AS DATE) AS monday FROM incidents
),
weeks AS (
    SELECT CAST(unnest(generate_series(
               CAST(greatest(CAST($history_start AS DATE), f.monday) AS TIMESTAMP),
               CAST($week AS TIMESTAMP),
               INTERVAL 7 DAY)) AS DATE) AS week
    FROM first_complete_week f
),
weekly AS (
    SELECT
        CAST(date_trunc('week', i.occurred_at) AS DATE) AS week,
        count(*) AS incidents,
        sum(i.harm) AS harm
    FROM incident_harm($harm_index, $harm_version) i
    WHERE i.occurred_at >= CAST($history_start AS TIMESTAMP)
      AND i.occurred_at < CAST($week AS TIMESTAMP) + INTERVAL 7 DAY
      AND ($district IS NULL OR i.district = $district)
      AND ($category IS NULL OR i.offense_category = $category)
    GROUP BY 1
)
SELECT w.week, coalesce(k.incidents, 0) AS incidents, coalesce(k.harm, 0.0) AS harm
FROM weeks w
LEFT JOIN weekly k ON k.week = w.week
ORDER BY w.week;
