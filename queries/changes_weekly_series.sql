-- Weekly control-chart series (ilp/analytics/changes.py). One row per 7-day week ending on $as_of,
-- $as_of - 7, ... ($weeks weeks, oldest first, weeks without incidents included as 0): week_start,
-- week_end (inclusive dates) and incidents. The series is one offence category ($category, NULL = all)
-- in one area ($area at $level 'beat' or 'district'; NULL = citywide).
WITH weeks AS (
    SELECT
        CAST(t.k AS INTEGER) AS weeks_back,
        CAST($as_of AS DATE) - 7 * CAST(t.k AS INTEGER) - 6 AS week_start,
        CAST($as_of AS DATE) - 7 * CAST(t.k AS INTEGER) AS week_end
    FROM range(0, CAST($weeks AS INTEGER)) AS t(k)  -- noqa: LT01
),
counted AS (
    SELECT
        date_diff('day', CAST(i.occurred_at AS DATE), CAST($as_of AS DATE)) // 7 AS weeks_back,
        count(*) AS incidents
    FROM incidents i
    WHERE i.occurred_at >= CAST($as_of AS DATE) + 1 - 7 * CAST($weeks AS INTEGER)
      AND i.occurred_at < CAST($as_of AS DATE) + 1
      AND ($category IS NULL OR i.offense_category = $category)
      AND ($area IS NULL OR (CASE WHEN $level = 'beat' THEN i.beat ELSE i.district END) = $area)
    GROUP BY 1
)
SELECT w.week_start, w.week_end, coalesce(c.incidents, 0) AS incidents
FROM weeks w
LEFT JOIN counted c ON c.weeks_back = w.weeks_back
ORDER BY w.week_start;
