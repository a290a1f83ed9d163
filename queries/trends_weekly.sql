-- Weekly series (Command brief chart, Trends and forecasts). One row per week (Monday) from
-- $history_start, or from the first complete week of data if that is later, to the selected week
-- $week (both Mondays): incidents recorded that week and their harm in the chosen index (the weekly
-- cube summary.weeks, ilp/summaries.sql, times category_harm's weight, ilp/harm.sql: proactive categories
-- weigh 0, as the CCHI excludes them). Weeks without incidents appear with 0.
-- Respects the district and category filters.
WITH first_complete_week AS (
    -- the Monday on or after the first day with data (a partial first week would look like a drop)
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
        CAST(sum(k.incidents) AS BIGINT) AS incidents,
        sum(k.incidents * coalesce(h.harm_weight, 0.0)) AS harm
    FROM summary.weeks k
    LEFT JOIN category_harm($harm_index, $harm_version) h ON h.category = k.category
    WHERE k.week >= CAST($history_start AS DATE)
      AND k.week <= CAST($week AS DATE)
      AND ($district IS NULL OR k.district = $district)
      AND ($category IS NULL OR k.category = $category)
    GROUP BY 1
)
SELECT w.week, coalesce(k.incidents, 0) AS incidents, coalesce(k.harm, 0.0) AS harm
FROM weeks w
LEFT JOIN weekly k ON k.week = w.week
ORDER BY w.week;
