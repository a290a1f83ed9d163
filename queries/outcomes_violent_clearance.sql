-- One row per month of occurrence from $month_from to $month_to (exclusive) with violent incidents
-- (offence_categories.violent) in the district: how many, and how many are cleared as of this snapshot
-- (clearance_status 'cleared_arrest' or 'cleared_other').
SELECT
    date_trunc('month', i.occurred_at)::DATE AS month,
    count(*) AS incidents,
    count(*) FILTER (WHERE i.clearance_status LIKE 'cleared%') AS cleared
FROM incidents i
JOIN offence_categories c ON c.category = i.offense_category
WHERE c.violent
  AND i.occurred_at >= $month_from AND i.occurred_at < $month_to
  AND ($district IS NULL OR i.district = $district)
GROUP BY 1
ORDER BY 1;
