-- One harm index (ilp/analytics/threats.py): its title and unit, or no row when the snapshot does not
-- hold ($harm_index, $harm_version).
SELECT index_name, version, title, unit
FROM harm_indices
WHERE index_name = $harm_index AND version = $harm_version;
