-- What a snapshot offers (ilp/snapshot.py `SnapshotInfo`). One row per district that has incidents: its
-- area id and its name (from the areas table; the id itself when no area name is loaded).
SELECT d.district AS area_id, coalesce(a.name, d.district) AS name
FROM summary.districts AS d
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = d.district
ORDER BY d.district;
