-- Trends, district breakdown for a source that dates offences to the month only. One row per (calendar
-- month, district) from $month_from to $month_to (exclusive; firsts of months), within the months the
-- data covers: incidents recorded and their harm in the chosen index (the weekly cube summary.weeks,
-- ilp/summaries.sql, by month, times category_harm's weight, ilp/harm.sql: proactive categories weigh 0,
-- as the CCHI excludes them). Every district with data appears every month (0 when it had none);
-- incidents not placed in a district are left out.
-- Respects the category filter; ignores the district filter (this is the breakdown by district).
WITH covered AS (
    SELECT
        CAST(date_trunc('month', first_day) AS DATE) AS first_month,
        CAST(date_trunc('month', last_day) AS DATE) AS last_month
    FROM summary.facts
),
months AS (
    SELECT CAST(unnest(generate_series(
               CAST(greatest(CAST($month_from AS DATE), c.first_month) AS TIMESTAMP),
               CAST(least(CAST($month_to AS DATE) - 1, c.last_month) AS TIMESTAMP),
               INTERVAL 1 MONTH)) AS DATE) AS month
    FROM covered c
),
monthly AS (
    SELECT
        k.month,
        k.district,
        CAST(sum(k.incidents) AS BIGINT) AS incidents,
        sum(k.incidents * coalesce(h.harm_weight, 0.0)) AS harm
    FROM summary.weeks k
    LEFT JOIN category_harm($harm_index, $harm_version) h ON h.category = k.category
    WHERE k.week >= CAST($month_from AS DATE) - 6
      AND k.week < CAST($month_to AS DATE)
      AND k.month >= CAST($month_from AS DATE)
      AND k.month < CAST($month_to AS DATE)
      AND k.district IS NOT NULL
      AND ($category IS NULL OR k.category = $category)
    GROUP BY 1, 2
)
SELECT
    m.month,
    d.district,
    coalesce(a.name, d.district) AS district_name,
    coalesce(k.incidents, 0) AS incidents,
    coalesce(k.harm, 0.0) AS harm
FROM months m
CROSS JOIN summary.districts d
LEFT JOIN monthly k ON k.month = m.month AND k.district = d.district
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = d.district
ORDER BY d.district, m.month;
