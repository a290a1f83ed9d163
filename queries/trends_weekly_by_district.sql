-- Trends, district breakdown. One row per (week, district) from $history_start, or from the first
-- complete week of data if that is later, to the selected week $week (both Mondays): incidents recorded
-- and their harm in the chosen index (the weekly cube summary.weeks, ilp/summaries.sql, times
-- category_harm's weight, ilp/harm.sql: proactive categories weigh 0, as the CCHI excludes them). Every
-- district with data appears every week (0 when it had none); incidents not placed in a district are
-- left out.
-- Respects the category filter; ignores the district filter (this is the breakdown by district).
WITH first_complete_week AS (
    SELECT CAST(date_trunc('week', first_day + 6) AS DATE) AS monday FROM summary.facts
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
        k.week,
        k.district,
        CAST(sum(k.incidents) AS BIGINT) AS incidents,
        sum(k.incidents * coalesce(h.harm_weight, 0.0)) AS harm
    FROM summary.weeks k
    LEFT JOIN category_harm($harm_index, $harm_version) h ON h.category = k.category
    WHERE k.week >= CAST($history_start AS DATE)
      AND k.week <= CAST($week AS DATE)
      AND k.district IS NOT NULL
      AND ($category IS NULL OR k.category = $category)
    GROUP BY 1, 2
)
SELECT
    w.week,
    d.district,
    coalesce(a.name, d.district) AS district_name,
    coalesce(k.incidents, 0) AS incidents,
    coalesce(k.harm, 0.0) AS harm
FROM weeks w
CROSS JOIN summary.districts d
LEFT JOIN weekly k ON k.week = w.week AND k.district = d.district
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = d.district
ORDER BY d.district, w.week;
