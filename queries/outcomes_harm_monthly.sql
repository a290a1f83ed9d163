-- One row per calendar month from $month_from to $month_to (exclusive; firsts of months) with incidents in
-- the district and category: incident count, harm (the weekly cube summary.weeks, ilp/summaries.sql, by
-- month, times category_harm's weight, ilp/harm.sql: proactive categories weigh 0 as the CCHI does) and
-- harm_variance (sum of squared per-incident harm: the variance of harm treating each category's count as
-- Poisson).
SELECT
    k.month,
    CAST(sum(k.incidents) AS BIGINT) AS incidents,
    coalesce(sum(k.incidents * coalesce(h.harm_weight, 0.0)), 0) AS harm,
    coalesce(sum(k.incidents * coalesce(h.harm_weight, 0.0) * coalesce(h.harm_weight, 0.0)), 0) AS harm_variance
FROM summary.weeks k
LEFT JOIN category_harm($harm_index, $harm_version) h ON h.category = k.category
WHERE k.week >= CAST($month_from AS DATE) - 6
  AND k.week < CAST($month_to AS DATE)
  AND k.month >= CAST($month_from AS DATE)
  AND k.month < CAST($month_to AS DATE)
  AND ($district IS NULL OR k.district = $district)
  AND ($category IS NULL OR k.category = $category)
GROUP BY 1
ORDER BY 1;
