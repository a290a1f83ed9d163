-- One row per (victim, month) from $window_from (11 months before the first reported month, so every
-- reported month has its trailing 12 months) to $month_to (exclusive): the pseudonymous person_key and the
-- number of distinct incidents in the district in which that person was recorded as a victim that month.
-- Person-level: feeds the repeat-victimisation RATE only; never displayed.
SELECT
    p.person_key,
    date_trunc('month', i.occurred_at)::DATE AS month,
    count(DISTINCT (i.source, i.source_id)) AS incidents  -- noqa: CP03, ST08, LT01, LT06
FROM incident_persons p
JOIN incidents i ON i.source = p.source AND i.source_id = p.source_id
WHERE p.role = 'victim'
  AND i.occurred_at >= $window_from AND i.occurred_at < $month_to
  AND ($district IS NULL OR i.district = $district)
GROUP BY 1, 2;
