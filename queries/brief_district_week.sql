-- Command brief, change by district. One row per (district, offence category) with the incidents
-- recorded in the selected week ($week, a Monday, .. $week + 7 days), in the 4 weeks before it, and in
-- the same week 52 weeks earlier (the Monday 364 days before), plus the harm one incident of the category
-- carries in the chosen index (category_harm, ilp/harm.sql: 0 for proactive categories, whose counts
-- measure police activity, and for categories the index does not weigh). district is NULL for incidents
-- not placed in a district. Counts from the weekly cube summary.weeks (ilp/summaries.sql).
-- Respects the category filter; ignores the district filter (the brief shows every district).
WITH scoped AS (
    SELECT k.district, k.category, k.week, k.incidents
    FROM summary.weeks k
    WHERE ($category IS NULL OR k.category = $category)
      AND (
            (k.week >= CAST($week AS DATE) - 28 AND k.week <= CAST($week AS DATE))
         OR k.week = CAST($week AS DATE) - 364
      )
)
SELECT
    s.district,
    coalesce(a.name, s.district) AS district_name,
    s.category,
    coalesce(c.label, s.category) AS category_label,
    coalesce(c.proactive, false) AS proactive,
    coalesce(h.harm_weight, 0.0) AS weight,
    CAST(coalesce(sum(s.incidents) FILTER (WHERE s.week = CAST($week AS DATE)), 0) AS BIGINT) AS current_incidents,
    CAST(coalesce(sum(s.incidents) FILTER (WHERE s.week >= CAST($week AS DATE) - 28
                                             AND s.week < CAST($week AS DATE)), 0) AS BIGINT) AS prior_4wk_incidents,
    CAST(coalesce(sum(s.incidents) FILTER (WHERE s.week = CAST($week AS DATE) - 364), 0) AS BIGINT)
        AS last_year_incidents
FROM scoped s
LEFT JOIN offence_categories c ON c.category = s.category
LEFT JOIN category_harm($harm_index, $harm_version) h ON h.category = s.category
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = s.district
GROUP BY ALL
ORDER BY s.district NULLS LAST, s.category;
