-- Trends, district breakdown. One row per (week, district) from $history_start, or from the first
-- complete week of data if that is later, to the selected week $week: incidents recorded and their
-- harm in the chosen index (incident_harm, ilp/harm.sql: proactive categories weigh 0, as the CCHI
-- excludes them). Every district with data appears every week (0 when it had none); incidents not
-- placed in a district are left out.
-- Respects the category filter; ignores the district filter (this is the breakdown by district).
WITH first_complete_week AS (
    SELECT CAST(date_trunc('week', CAST(min(occurred_at) AS DATE) + 6) AS DATE) AS monday FROM incidents
),
weeks AS (
    SELECT CAST(unnest(generate_series(
               CAST(greatest(CAST($history_start AS DATE), f.monday) AS TIMESTAMP),
               CAST($week AS TIMESTAMP),
               INTERVAL 7 DAY)) AS DATE) AS week
    FROM first_complete_week f
),
districts AS (
    SELECT DISTINCT district FROM incidents WHERE district IS NOT NULL
),
weekly AS (
    SELECT
        CAST(date_trunc('week', i.occurred_at) AS DATE) AS week,
        i.district,
        count(*) AS incidents,
        sum(i.harm) AS harm
    FROM incident_harm($harm_index, $harm_version) i
    WHERE i.occurred_at >= CAST($history_start AS TIMESTAMP)
      AND i.occurred_at < CAST($week AS TIMESTAMP) + INTERVAL 7 DAY
      AND i.district IS NOT NULL
      AND ($category IS NULL OR i.offense_category = $category)
    GROUP BY 1, 2
)
SELECT
    w.week,
    d.district,
    coalesce(a.name, d.district) AS district_name,
    coalesce(k.incidents, 0) AS incidents,
    coalesce(k.harm, 0.0) AS harm
FROM weeks w
CROSS JOIN districts d
LEFT JOIN weekly k ON k.week = w.week AND k.district = d.district
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = d.district
ORDER BY d.district, w.week;
