-- Command brief, top harm. One row per (offence category, beat): its harm and incident count in the
-- 28 days ending with the selected week ($week, a Monday: the 4 weeks from $week - 21 days) and its
-- share of its district's harm over the same days (the district's harm from all categories, whatever the
-- category filter). Only the 10 highest-harm rows. Harm = incidents (the weekly cube summary.weeks,
-- ilp/summaries.sql) times category_harm's weight in the chosen index (ilp/harm.sql): proactive
-- categories weigh 0 (the CCHI excludes them), so they never appear here.
-- Respects the district and category filters.
WITH weighted AS (
    SELECT
        k.district,
        k.beat,
        k.category,
        k.incidents,
        k.incidents * coalesce(h.harm_weight, 0.0) AS harm
    FROM summary.weeks k
    LEFT JOIN category_harm($harm_index, $harm_version) h ON h.category = k.category
    WHERE k.week >= CAST($week AS DATE) - 21
      AND k.week <= CAST($week AS DATE)
      AND ($district IS NULL OR k.district = $district)
),
district_harm AS (
    SELECT district, sum(harm) AS district_harm FROM weighted GROUP BY district
),
combinations AS (
    SELECT district, beat, category, sum(harm) AS harm, CAST(sum(incidents) AS BIGINT) AS incidents
    FROM weighted
    WHERE ($category IS NULL OR category = $category)
    GROUP BY district, beat, category
)
SELECT
    k.category,
    coalesce(c.label, k.category) AS category_label,
    k.beat,
    k.district,
    coalesce(a.name, k.district) AS district_name,
    k.harm,
    k.incidents,
    d.district_harm,
    k.harm / nullif(d.district_harm, 0) AS share_of_district_harm
FROM combinations k
LEFT JOIN district_harm d ON d.district IS NOT DISTINCT FROM k.district
LEFT JOIN offence_categories c ON c.category = k.category
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = k.district
WHERE k.harm > 0
ORDER BY k.harm DESC, k.incidents DESC, k.district, k.beat, k.category
LIMIT 10;
