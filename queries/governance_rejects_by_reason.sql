-- Rows the ingests rejected, by rule: one row per (rule, field) with the rejected rows, the files they
-- came from, the ingests that met them and one example reason. The rule is the mapping key or CSV
-- problem (e.g. '[occurred] formats: unparseable date'); a snapshot from before rules were stored groups
-- by the reason text instead (its rule column reads as NULL).
WITH all_rejects AS (
    SELECT * FROM rejects
    UNION ALL BY NAME
    SELECT NULL::VARCHAR AS rule WHERE false
)

SELECT coalesce(rule, reason) AS reason,
       field,
       count(*) AS rows,
       count(DISTINCT file) AS files,
       min(ingest_id) AS first_ingest,
       max(ingest_id) AS last_ingest,
       min(reason) AS example
FROM all_rejects
GROUP BY coalesce(rule, reason), field
ORDER BY count(*) DESC, coalesce(rule, reason), field;
