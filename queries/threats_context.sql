-- Context for a threat ranking (ilp/analytics/threats.py): one row with the first and last day of
-- incident data (occurred_at), and the default harm index (index_name, version, unit; the first index
-- by name when none is marked default; NULL when the snapshot holds none).
SELECT
    (SELECT CAST(min(occurred_at) AS DATE) FROM incidents) AS first_day,
    (SELECT CAST(max(occurred_at) AS DATE) FROM incidents) AS last_day,
    d.index_name AS default_harm_index,
    d.version AS default_harm_version,
    d.unit AS default_harm_unit
FROM (SELECT 1) AS one
LEFT JOIN (
    SELECT index_name, version, unit
    FROM harm_indices
    ORDER BY is_default DESC, index_name, version
    LIMIT 1
) AS d ON true;
