-- Geocoding completeness by source: one row per source with incidents, how many have a usable
-- location (location_status = 'ok'), the share, and the counts of each failure status. Read from the
-- data-quality cube summary.source_weeks (ilp/summaries.sql).
SELECT source,
       CAST(sum(incidents) AS BIGINT) AS incidents,
       CAST(coalesce(sum(incidents) FILTER (WHERE location_status = 'ok'), 0) AS BIGINT) AS located,
       coalesce(sum(incidents) FILTER (WHERE location_status = 'ok'), 0) / sum(incidents) AS share_located,
       CAST(coalesce(sum(incidents) FILTER (WHERE location_status = 'missing'), 0) AS BIGINT) AS missing,
       CAST(coalesce(sum(incidents) FILTER (WHERE location_status = 'zero'), 0) AS BIGINT) AS zero,
       CAST(coalesce(sum(incidents) FILTER (WHERE location_status = 'out_of_bounds'), 0) AS BIGINT) AS out_of_bounds,
       CAST(coalesce(sum(incidents) FILTER (WHERE location_status = 'unparseable'), 0) AS BIGINT) AS unparseable
FROM summary.source_weeks
GROUP BY source
ORDER BY source;
