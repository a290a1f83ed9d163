-- Offence categories a tasking's threat may name.
-- One row per offence category (all but 'unmapped'): category code, human label, whether it is
-- proactive (excluded from harm by default, as the CCHI does) and its incidents in the snapshot.
SELECT c.category,
       c.label,
       c.proactive,
       count(i.offense_category) AS incidents
FROM offence_categories c
LEFT JOIN incidents i ON i.offense_category = c.category
WHERE c.category <> 'unmapped'
GROUP BY c.category, c.label, c.proactive
ORDER BY c.label;
