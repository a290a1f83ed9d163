-- One row per priority-1 (emergency) call for service received from $month_from to $month_to (exclusive)
-- in the district: month received and response time in minutes from received to first unit arrived
-- (NULL when no unit arrived: cancelled, duplicate or no arrival recorded).
SELECT
    date_trunc('month', received_at)::DATE AS month,
    date_diff('second', received_at, arrived_at) / 60.0 AS response_minutes
FROM calls_for_service
WHERE priority = 1
  AND received_at >= $month_from AND received_at < $month_to
  AND ($district IS NULL OR district = $district);
