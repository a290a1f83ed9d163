-- Harm indices loaded in the snapshot: one row per (index, version) with title, unit, provenance,
-- whether it is the default, and how many categories it weights.
SELECT i.index_name,
       i.version,
       i.title,
       i.unit,
       i.is_default,
       count(w.category) AS categories_weighted,
       i.provenance
FROM harm_indices i
LEFT JOIN harm_weights w USING (index_name, version)
GROUP BY ALL
ORDER BY i.is_default DESC, i.index_name, i.version;
