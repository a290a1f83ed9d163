-- Tasking evaluation (ilp/analytics/evaluation.py): the harm one incident of each offence category in
-- $categories carries under $harm_index/$harm_version (category_harm, ilp/harm.sql: proactive categories
-- weigh 0), for the harm-weighted WDD. One row per category, with its label.
SELECT
    h.category,
    h.harm_weight,
    c.label
FROM category_harm($harm_index, $harm_version) h
JOIN offence_categories c ON c.category = h.category
WHERE list_contains(CAST($categories AS VARCHAR[]), h.category)
ORDER BY h.category;
