-- Geocoding completeness by source: one row per source with incidents, how many have a usable
-- location (location_status = 'ok'), the share, and the counts of each failure status.
SELECT source,
       count(*) AS incidents,
       count(*) FILTER (WHERE location_status = 'ok') AS located,
       count(*) FILTER (WHERE location_status = 'ok') / count(*) AS share_located,
       count(*) FILTER (WHERE location_status = 'missing') AS missing,
       count(*) FILTER (WHERE location_status = 'zero') AS zero,
       count(*) FILTER (WHERE location_status = 'out_of_bounds') AS out_of_bounds,
       count(*) FILTER (WHERE location_status = 'unparseable') AS unparseable
FROM incidents
GROUP BY source
ORDER BY source;
