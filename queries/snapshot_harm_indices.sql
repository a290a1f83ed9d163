-- What a snapshot offers (ilp/snapshot.py `SnapshotInfo`). One row per harm index (name, version) with
-- its title, unit, provenance and whether it is the default; the default first, then by name and version.
SELECT index_name, version, title, unit, provenance, is_default
FROM harm_indices
ORDER BY is_default DESC, index_name, version;
