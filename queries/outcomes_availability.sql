-- One row: what the outcome metrics can be computed from in this snapshot (row counts of the optional
-- tables, whether areas carry population, whether the source records clearances other than by arrest).
-- A metric whose table is empty says "not available" instead of showing zero: only 0 or not matters, so
-- the large person and call tables are only looked into for a first row (0 or 1; a full count read 21M
-- calls at 10M incidents). Incidents are counted from the data-quality cube summary.source_weeks
-- (ilp/summaries.sql).
SELECT
    CAST(EXISTS (SELECT 1 FROM calls_for_service) AS INTEGER) AS calls,
    CAST(EXISTS (SELECT 1 FROM calls_for_service WHERE priority = 1) AS INTEGER) AS priority_one_calls,
    (SELECT count(*) FROM use_of_force) AS use_of_force_events,
    (SELECT count(*) FROM community_survey WHERE measure = 'trust_police') AS trust_survey_rows,
    CAST(EXISTS (SELECT 1 FROM incident_persons WHERE role = 'victim') AS INTEGER) AS victim_links,
    (SELECT CAST(coalesce(sum(incidents), 0) AS BIGINT) FROM summary.source_weeks WHERE arrest_recorded)
        AS incidents_with_arrest_flag,
    (SELECT CAST(coalesce(sum(incidents), 0) AS BIGINT) FROM summary.source_weeks
        WHERE clearance_status IS NOT NULL AND clearance_status <> 'unknown') AS incidents_with_clearance,
    (SELECT CAST(coalesce(sum(incidents), 0) AS BIGINT) FROM summary.source_weeks
        WHERE clearance_status = 'cleared_other') AS cleared_other,
    (SELECT count(*) FROM areas WHERE level = 'district' AND population IS NOT NULL) AS districts_with_population;
