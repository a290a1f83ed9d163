-- Geocoding completeness by month: one row per (source, month of occurrence) with incidents, how many
-- have location_status = 'ok', and the share.
SELECT source,
       date_trunc('month', occurred_at)::DATE AS month,
       count(*) AS incidents,
       count(*) FILTER (WHERE location_status = 'ok') AS located,
       count(*) FILTER (WHERE location_status = 'ok') / count(*) AS share_located
FROM incidents
WHERE occurred_at IS NOT NULL
GROUP BY ALL
ORDER BY source, month;
