-- One row per (shift, located) for incidents in the period, district and category: shift is 'day'
-- (07:00-15:00), 'evening' (15:00-23:00) or 'night' (23:00-07:00) by hour of occurrence, NULL when the
-- source gives only the day or month (occurred_precision <> 'exact'); located = location_status = 'ok'.
-- The deployment map's captions count incidents it cannot place from these rows.
SELECT
    CASE
        WHEN occurred_precision <> 'exact' THEN NULL
        WHEN hour(occurred_at) >= 7 AND hour(occurred_at) < 15 THEN 'day'
        WHEN hour(occurred_at) >= 15 AND hour(occurred_at) < 23 THEN 'evening'
        ELSE 'night'
    END AS shift,
    location_status = 'ok' AS located,
    count(*) AS incidents
FROM incidents
WHERE occurred_at >= $start AND occurred_at < $end
  AND ($district IS NULL OR district = $district)
  AND ($category IS NULL OR offense_category = $category)
GROUP BY ALL
ORDER BY shift, located;
