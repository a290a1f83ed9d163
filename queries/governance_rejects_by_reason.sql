-- Rows the ingests rejected, by reason: one row per (reason, field) with the rejected rows, the files
-- they came from and the ingests that met them.
SELECT reason,
       field,
       count(*) AS rows,
       count(DISTINCT file) AS files,
       min(ingest_id) AS first_ingest,
       max(ingest_id) AS last_ingest
FROM rejects
GROUP BY reason, field
ORDER BY count(*) DESC, reason, field;
