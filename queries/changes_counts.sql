-- What changed, for real (ilp/analytics/changes.py). One row per (area at $level, offence category)
-- with at least one incident in the 28 days ending $as_of or in the $baseline_weeks weeks before them:
--   week_count            incidents in the 7 days ending $as_of (inclusive)
--   week_baseline_count   incidents in the $baseline_weeks weeks before that week
--   d28_count             incidents in the 28 days ending $as_of
--   d28_baseline_count    incidents in the $baseline_weeks weeks before those 28 days
-- plus the category's label, proactive flag and weight in ($harm_index, $harm_version): category_harm's
-- harm_weight (ilp/harm.sql; proactive categories weigh 0 unless $include_proactive), 0 when the index
-- does not weigh the category, NULL for a category missing from offence_categories. $level is 'beat', 'district' or 'city' (one
-- area: 'citywide'); incidents with no area at the level are left out. Respects $district and $category (NULL = all).
WITH scoped AS (
    SELECT
        CASE $level WHEN 'beat' THEN i.beat WHEN 'district' THEN i.district ELSE 'citywide' END AS area_id,
        i.offense_category AS category,
        date_diff('day', CAST(i.occurred_at AS DATE), CAST($as_of AS DATE)) AS days_back
    FROM incidents i
    WHERE i.occurred_at >= CAST($as_of AS DATE) + 1 - 28 - 7 * CAST($baseline_weeks AS INTEGER)
      AND i.occurred_at < CAST($as_of AS DATE) + 1
      AND ($district IS NULL OR i.district = $district)
      AND ($category IS NULL OR i.offense_category = $category)
),
counts AS (
    SELECT
        area_id,
        category,
        count(*) FILTER (WHERE days_back < 7) AS week_count,
        count(*) FILTER (WHERE days_back >= 7 AND days_back < 7 + 7 * CAST($baseline_weeks AS INTEGER))
            AS week_baseline_count,
        count(*) FILTER (WHERE days_back < 28) AS d28_count,
        count(*) FILTER (WHERE days_back >= 28) AS d28_baseline_count
    FROM scoped
    WHERE area_id IS NOT NULL
    GROUP BY area_id, category
)
SELECT
    k.area_id,
    coalesce(a.name, CASE WHEN k.area_id = 'citywide' THEN 'Citywide' ELSE k.area_id END) AS area_name,
    k.category,
    coalesce(c.label, k.category) AS category_label,
    coalesce(c.proactive, false) AS proactive,
    h.harm_weight AS weight,
    k.week_count,
    k.week_baseline_count,
    k.d28_count,
    k.d28_baseline_count
FROM counts k
LEFT JOIN offence_categories c ON c.category = k.category
LEFT JOIN category_harm($harm_index, $harm_version, include_proactive := $include_proactive) h ON h.category = k.category
LEFT JOIN areas a ON a.level = $level AND a.area_id = k.area_id
ORDER BY k.area_id, k.category;
