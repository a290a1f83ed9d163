-- One row per calendar month from $month_from to $month_to (exclusive) with incidents in the district and
-- category: incident count, harm (sum of the harm index's weights, proactive categories excluded as the
-- CCHI does) and harm_variance (sum of squared weights: the variance of harm treating each category's
-- count as Poisson).
SELECT
    date_trunc('month', i.occurred_at)::DATE AS month,
    count(*) AS incidents,
    coalesce(sum(w.weight) FILTER (WHERE NOT c.proactive), 0) AS harm,
    coalesce(sum(w.weight * w.weight) FILTER (WHERE NOT c.proactive), 0) AS harm_variance
FROM incidents i
JOIN offence_categories c ON c.category = i.offense_category
LEFT JOIN harm_weights w
       ON w.index_name = $harm_index AND w.version = $harm_version AND w.category = i.offense_category
WHERE i.occurred_at >= $month_from AND i.occurred_at < $month_to
  AND ($district IS NULL OR i.district = $district)
  AND ($category IS NULL OR i.offense_category = $category)
GROUP BY 1
ORDER BY 1;
