-- Tasking evaluation (ilp/analytics/evaluation.py): what the incidents cover. One row: the first and last
-- day with incidents (NULL when there are none), the number of incidents and how many are dated to the
-- month only (a weekly series cannot be built from those) or located (a location's buffer needs them).
SELECT
    CAST(min(occurred_at) AS DATE) AS first_day,
    CAST(max(occurred_at) AS DATE) AS last_day,
    count(*) AS incidents,
    count(*) FILTER (WHERE occurred_precision = 'month') AS month_only,
    count(*) FILTER (WHERE location_status = 'ok') AS located,
    avg(latitude) FILTER (WHERE location_status = 'ok') AS mean_latitude
FROM incidents;
