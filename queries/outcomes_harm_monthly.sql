-- One row per calendar month from $month_from to $month_to (exclusive) with incidents in the district and
-- category: incident count, harm (sum of incident_harm's harm, ilp/harm.sql: proactive categories weigh
-- 0 as the CCHI does) and harm_variance (sum of squared per-incident harm: the variance of harm treating
-- each category's count as Poisson).
SELECT
    date_trunc('month', i.occurred_at)::DATE AS month,
    count(*) AS incidents,
    coalesce(sum(i.harm), 0) AS harm,
    coalesce(sum(i.harm * i.harm), 0) AS harm_variance
FROM incident_harm($harm_index, $harm_version) i
WHERE i.occurred_at >= $month_from AND i.occurred_at < $month_to
  AND ($district IS NULL OR i.district = $district)
  AND ($category IS NULL OR i.offense_category = $category)
GROUP BY 1
ORDER BY 1;
