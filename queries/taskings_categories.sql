-- Offence categories a tasking's threat may name.
-- One row per offence category (all but 'unmapped'): category code, human label, whether it is
-- proactive (excluded from harm by default, as the CCHI does) and its incidents in the snapshot
-- (summary.categories, ilp/summaries.sql).
SELECT c.category,
       c.label,
       c.proactive,
       coalesce(s.incidents, 0) AS incidents
FROM offence_categories c
LEFT JOIN summary.categories s ON s.category = c.category
WHERE c.category <> 'unmapped'
ORDER BY c.label;
