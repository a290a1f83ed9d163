-- Command brief, change by district. One row per (district, offence category) with the incidents
-- recorded in the selected week ($week .. $week + 7 days), in the 4 weeks before it, and in the same
-- week 52 weeks earlier (the Monday 364 days before), plus the harm one incident of the category carries
-- in the chosen index (category_harm, ilp/harm.sql: 0 for proactive categories, whose counts measure
-- police activity, and for categories the index does not weigh). district is NULL for incidents not
-- placed in a district.
-- Respects the category filter; ignores the district filter (the brief shows every district).
WITH scoped AS (
    SELECT i.district, i.offense_category AS category, i.occurred_at
    FROM incidents i
    WHERE ($category IS NULL OR i.offense_category = $category)
      AND (
            (i.occurred_at >= CAST($week AS TIMESTAMP) - INTERVAL 28 DAY
             AND i.occurred_at < CAST($week AS TIMESTAMP) + INTERVAL 7 DAY)
         OR (i.occurred_at >= CAST($week AS TIMESTAMP) - INTERVAL 364 DAY
             AND i.occurred_at < CAST($week AS TIMESTAMP) - INTERVAL 357 DAY)
      )
)
SELECT
    s.district,
    coalesce(a.name, s.district) AS district_name,
    s.category,
    coalesce(c.label, s.category) AS category_label,
    coalesce(c.proactive, false) AS proactive,
    coalesce(h.harm_weight, 0.0) AS weight,
    count(*) FILTER (WHERE s.occurred_at >= CAST($week AS TIMESTAMP)) AS current_incidents,
    count(*) FILTER (WHERE s.occurred_at >= CAST($week AS TIMESTAMP) - INTERVAL 28 DAY
                       AND s.occurred_at < CAST($week AS TIMESTAMP)) AS prior_4wk_incidents,
    count(*) FILTER (WHERE s.occurred_at < CAST($week AS TIMESTAMP) - INTERVAL 357 DAY) AS last_year_incidents
FROM scoped s
LEFT JOIN offence_categories c ON c.category = s.category
LEFT JOIN category_harm($harm_index, $harm_version) h ON h.category = s.category
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = s.district
GROUP BY ALL
ORDER BY s.district NULLS LAST, s.category;
