-- Tasking evaluation (ilp/analytics/evaluation.py): weekly incidents and harm of the offence categories
-- $categories in every area of one level ($level: 'beat', 'district', or 'location', whose area is the
-- incident's location_text), in whole weeks counted from $start: week 0 is the 7 days from $start, week -1
-- the 7 days before it. Weeks $first_week to $last_week (exclusive). $areas limits the areas (NULL: every
-- area of the level). One row per (area_id, offense_category, week) with at least one incident: incidents
-- and harm (sum of incident_harm's harm, $harm_index/$harm_version, ilp/harm.sql: proactive categories
-- weigh 0). Weeks without incidents have no row.
WITH placed AS (
    SELECT
        CASE $level WHEN 'beat' THEN i.beat WHEN 'district' THEN i.district ELSE i.location_text END AS area_id,
        i.offense_category,
        CAST(floor(date_diff('day', CAST($start AS DATE), CAST(i.occurred_at AS DATE)) / 7) AS INTEGER) AS week,
        i.harm
    FROM incident_harm($harm_index, $harm_version) i
    WHERE list_contains(CAST($categories AS VARCHAR[]), i.offense_category)
      AND i.occurred_at >= CAST($start AS DATE) + 7 * CAST($first_week AS INTEGER)
      AND i.occurred_at < CAST($start AS DATE) + 7 * CAST($last_week AS INTEGER)
)
SELECT
    area_id,
    offense_category,
    week,
    count(*) AS incidents,
    coalesce(sum(harm), 0) AS harm
FROM placed
WHERE area_id IS NOT NULL
  AND (CAST($areas AS VARCHAR[]) IS NULL OR list_contains(CAST($areas AS VARCHAR[]), area_id))
GROUP BY area_id, offense_category, week
ORDER BY area_id, offense_category, week;
