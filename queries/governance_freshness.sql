-- Data freshness: one row per (dataset, source) the snapshot holds: records, first and last event
-- date, the last ingest/build of that source (ingest_log) and how many days the last event date is
-- behind $today (the viewer's date, passed by the page). Incidents are counted from the data-quality cube
-- summary.source_weeks (ilp/summaries.sql).
WITH datasets AS (
    SELECT 'Incidents' AS dataset, source, sum(incidents)::BIGINT AS records,
           min(first_at)::DATE AS first_date, max(last_at)::DATE AS last_date
    FROM summary.source_weeks GROUP BY source
    UNION ALL
    SELECT 'Calls for service', source, count(*), min(received_at)::DATE, max(received_at)::DATE
    FROM calls_for_service GROUP BY source
    UNION ALL
    SELECT 'Use of force', source, count(*), min(occurred_at)::DATE, max(occurred_at)::DATE
    FROM use_of_force GROUP BY source
    UNION ALL
    SELECT 'Community survey', source, count(*), min(period_start), max(period_start)
    FROM community_survey GROUP BY source
),
ingests AS (
    SELECT source,
           max(coalesce(finished_at, started_at)) AS last_ingest_at,
           arg_max(kind, ingest_id) AS last_ingest_kind,
           count(*) AS ingests
    FROM ingest_log WHERE source IS NOT NULL GROUP BY source
)
SELECT d.dataset,
       d.source,
       d.records,
       d.first_date,
       d.last_date,
       i.last_ingest_at,
       i.last_ingest_kind,
       coalesce(i.ingests, 0) AS ingests,
       ($today::DATE - d.last_date) AS days_behind
FROM datasets d
LEFT JOIN ingests i USING (source)
ORDER BY d.dataset = 'Incidents' DESC, d.dataset, d.source;
