-- One row per month from $month_from to $month_to (exclusive) in the district: use-of-force events and
-- incidents with an arrest (the denominator of use of force per 1,000 arrests).
WITH months AS (
    SELECT date_trunc('month', occurred_at)::DATE AS month, count(*) AS events, 0 AS arrests
    FROM use_of_force
    WHERE occurred_at >= $month_from AND occurred_at < $month_to
      AND ($district IS NULL OR district = $district)
    GROUP BY 1
    UNION ALL
    SELECT date_trunc('month', occurred_at)::DATE AS month, 0 AS events, count(*) AS arrests
    FROM incidents
    WHERE arrest
      AND occurred_at >= $month_from AND occurred_at < $month_to
      AND ($district IS NULL OR district = $district)
    GROUP BY 1
)
SELECT month, sum(events) AS events, sum(arrests) AS arrests
FROM months
GROUP BY month
ORDER BY month;
