-- The near-repeat test's events (ilp/analytics/near_repeat.py): one row per located burglary
-- (offence_categories.category LIKE 'burglary%', residential and non-residential) from $start to before
-- $end in the district ($district NULL = all): its day, latitude and longitude. Points stay in the library:
-- the test compares distances and the alerts are drawn as grid cells, never as points.
SELECT
    i.occurred_at::DATE AS day,
    i.latitude,
    i.longitude
FROM incidents i
WHERE i.occurred_at >= $start AND i.occurred_at < $end
  AND i.location_status = 'ok'
  AND i.offense_category LIKE 'burglary%'
  AND ($district IS NULL OR i.district = $district)
ORDER BY day, i.latitude, i.longitude;
