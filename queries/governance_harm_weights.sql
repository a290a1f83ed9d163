-- Every harm weight: one row per (index, version, category) with the category's label, whether the
-- category is proactive (excluded from harm by default, as the CCHI does), the weight and its provenance.
SELECT w.index_name,
       w.version,
       w.index_name || ' ' || w.version AS harm_table,
       w.category,
       coalesce(c.label, w.category) AS label,
       coalesce(c.proactive, false) AS proactive,
       w.weight,
       w.provenance
FROM harm_weights w
LEFT JOIN offence_categories c USING (category)
ORDER BY w.index_name, w.version, w.weight DESC, label;
