-- Geocoding completeness by month: one row per (source, month of occurrence) with incidents, how many
-- have location_status = 'ok', and the share. Read from the data-quality cube summary.source_weeks
-- (ilp/summaries.sql), which counts every incident by week, month, source and location_status.
SELECT source,
       month,
       CAST(sum(incidents) AS BIGINT) AS incidents,
       CAST(coalesce(sum(incidents) FILTER (WHERE location_status = 'ok'), 0) AS BIGINT) AS located,
       coalesce(sum(incidents) FILTER (WHERE location_status = 'ok'), 0) / sum(incidents) AS share_located
FROM summary.source_weeks
WHERE month IS NOT NULL
GROUP BY source, month
ORDER BY source, month;
