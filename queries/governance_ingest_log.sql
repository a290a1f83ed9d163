-- The ingest log: one row per write to the warehouse (ingest, demo build, areas or harm load), newest
-- first, with row counts, the rejected count, the snapshot it produced and the files it read.
SELECT ingest_id,
       kind,
       source,
       mapping,
       started_at,
       finished_at,
       round(epoch(finished_at - started_at), 1) AS seconds,
       rows_read,
       loaded,
       updated,
       unchanged,
       rejected,
       snapshot,
       array_to_string(json_extract_string(files, '$[*].path'), ', ') AS files
FROM ingest_log
ORDER BY ingest_id DESC;
