-- queries/report_weekly_harm.sql
-- One row per week (Monday start) for the 52 weeks ending with $week: citywide (or $district) incident
-- count and harm under the chosen index (incident_harm, ilp/harm.sql: proactive categories carry no
-- harm, CCHI practice).
WITH weeks AS (
    SELECT CAST(w AS DATE) AS week
    FROM range(CAST($week AS DATE) - INTERVAL 51 WEEK, CAST($week AS DATE) + INTERVAL 1 WEEK, INTERVAL 1 WEEK) t(w)
), counts AS (
    SELECT CAST(date_trunc('week', i.occurred_at) AS DATE) AS week, count(*) AS incidents,
           sum(i.harm) AS harm
    FROM incident_harm($harm_index, $harm_version) i
    WHERE i.occurred_at >= CAST($week AS DATE) - INTERVAL 51 WEEK
      AND i.occurred_at < CAST($week AS DATE) + INTERVAL 1 WEEK
      AND ($district IS NULL OR i.district = $district)
    GROUP BY ALL
)
SELECT weeks.week, coalesce(counts.incidents, 0) AS incidents, coalesce(counts.harm, 0) AS harm
FROM weeks LEFT JOIN counts USING (week)
ORDER BY weeks.week;
