-- What a snapshot offers (ilp/snapshot.py `SnapshotInfo`). One row per common offence category that has
-- incidents: its code and label, ordered by label.
SELECT c.category, c.label
FROM offence_categories c
WHERE c.category IN (SELECT category FROM summary.categories)
ORDER BY c.label;
