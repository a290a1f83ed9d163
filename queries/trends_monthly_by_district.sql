-- Trends, district breakdown for a source that dates offences to the month only. One row per (calendar
-- month, district) from $month_from to $month_to (exclusive), within the months the data covers: incidents
-- recorded and their harm in the chosen index (incident_harm, ilp/harm.sql: proactive categories weigh 0,
-- as the CCHI excludes them). Every district with data appears every month (0 when it had none);
-- incidents not placed in a district are left out.
-- Respects the category filter; ignores the district filter (this is the breakdown by district).
WITH covered AS (
    SELECT
        CAST(date_trunc('month', min(occurred_at)) AS DATE) AS first_month,
        CAST(date_trunc('month', max(occurred_at)) AS DATE) AS last_month
    FROM incidents
),
months AS (
    SELECT CAST(unnest(generate_series(
               CAST(greatest(CAST($month_from AS DATE), c.first_month) AS TIMESTAMP),
               CAST(least(CAST($month_to AS DATE) - 1, c.last_month) AS TIMESTAMP),
               INTERVAL 1 MONTH)) AS DATE) AS month
    FROM covered c
),
districts AS (
    SELECT DISTINCT district FROM incidents WHERE district IS NOT NULL
),
monthly AS (
    SELECT
        CAST(date_trunc('month', i.occurred_at) AS DATE) AS month,
        i.district,
        count(*) AS incidents,
        sum(i.harm) AS harm
    FROM incident_harm($harm_index, $harm_version) i
    WHERE i.occurred_at >= CAST($month_from AS TIMESTAMP)
      AND i.occurred_at < CAST($month_to AS TIMESTAMP)
      AND i.district IS NOT NULL
      AND ($category IS NULL OR i.offense_category = $category)
    GROUP BY 1, 2
)
SELECT
    m.month,
    d.district,
    coalesce(a.name, d.district) AS district_name,
    coalesce(k.incidents, 0) AS incidents,
    coalesce(k.harm, 0.0) AS harm
FROM months m
CROSS JOIN districts d
LEFT JOIN monthly k ON k.month = m.month AND k.district = d.district
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = d.district
ORDER BY d.district, m.month;
