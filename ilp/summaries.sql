-- sqlfluff:rules:capitalisation.types:extended_capitalisation_policy:upper
-- Per-snapshot summaries: what the pages read instead of scanning every incident (ilp/summaries.py).
-- Each is a table macro over `incidents`; ilp/summaries.py stores their rows as tables in the snapshot's
-- schema `summary` at the end of every write (summary.weeks for the weeks a write touched, the others
-- from summary.weeks), and a snapshot written before summaries reads them through views over the same
-- macros instead. Harm is not stored: a query multiplies `incidents` by category_harm's harm_weight
-- (ilp/harm.sql, the one definition of harm), so a new or changed harm index needs no rebuild.
-- Statements are idempotent (CREATE OR REPLACE); each ends with ";" at the end of a line (the Python splits there).

-- Whether an incident time falls in the weeks a summary row set covers: from week_from (inclusive) to week_to
-- (exclusive), or undated (NULL) when `undated`. One definition for every macro below.
CREATE OR REPLACE MACRO summary.dated_in(occurred_at, week_from, week_to, undated) AS  -- noqa: CP05
    (occurred_at >= CAST(week_from AS TIMESTAMP) AND occurred_at < CAST(week_to AS TIMESTAMP))
    OR (undated AND occurred_at IS NULL);

-- The weekly cube. One row per (week, month, district, beat, offence category, occurred_precision,
-- shift) with at least one incident dated from week_from (inclusive) to week_to (exclusive), plus the
-- undated incidents (week and month NULL) when `undated`:
--   week                the Monday of the incident's week; month, the first of its month (a week that
--                       straddles two months is two rows, so monthly figures add up from the cube too)
--   district, beat      the incident's area ids (NULL when not placed); names come from `areas`
--   shift               'day' 07:00-15:00, 'evening' 15:00-23:00, 'night' 23:00-07:00 (as the deployment
--                       map's queries), NULL when the time of day is not known (precision day or month)
--   incidents, located (usable coordinates), with_location_text, domestic: counts
--   first_at, last_at   the earliest and latest occurred_at among them
CREATE OR REPLACE MACRO summary.week_rows(week_from, week_to, undated) AS TABLE  -- noqa: CP05
SELECT
    CAST(date_trunc('week', i.occurred_at) AS DATE) AS week,
    CAST(date_trunc('month', i.occurred_at) AS DATE) AS month,
    i.district,
    i.beat,
    i.offense_category AS category,
    i.occurred_precision,
    CASE
        WHEN i.occurred_precision <> 'exact' OR i.occurred_at IS NULL THEN NULL
        WHEN hour(i.occurred_at) >= 7 AND hour(i.occurred_at) < 15 THEN 'day'
        WHEN hour(i.occurred_at) >= 15 AND hour(i.occurred_at) < 23 THEN 'evening'
        ELSE 'night'
    END AS shift,
    count(*) AS incidents,
    count(*) FILTER (WHERE i.location_status = 'ok') AS located,
    count(i.location_text) AS with_location_text,
    count(*) FILTER (WHERE i.domestic) AS domestic,
    min(i.occurred_at) AS first_at,
    max(i.occurred_at) AS last_at
FROM incidents i
WHERE summary.dated_in(i.occurred_at, week_from, week_to, undated)  -- noqa: RF03
GROUP BY ALL;

-- What the snapshot's incidents carry, in one row (ilp/snapshot.py SnapshotInfo): the first and last day
-- with incident data (NULL when there are none), the number of incidents, how many are placed in a beat
-- and in a district (and how many distinct of each), how many have usable coordinates and location text,
-- and how many are dated to the exact time, to the day only and to the month only.
CREATE OR REPLACE MACRO summary.facts_rows() AS TABLE
SELECT
    CAST(min(w.first_at) AS DATE) AS first_day,
    CAST(max(w.last_at) AS DATE) AS last_day,
    CAST(coalesce(sum(w.incidents), 0) AS BIGINT) AS incidents,
    CAST(coalesce(sum(w.incidents) FILTER (WHERE w.beat IS NOT NULL), 0) AS BIGINT) AS with_beat,
    count(DISTINCT w.beat) AS beats,
    CAST(coalesce(sum(w.incidents) FILTER (WHERE w.district IS NOT NULL), 0) AS BIGINT) AS with_district,
    count(DISTINCT w.district) AS districts,
    CAST(coalesce(sum(w.located), 0) AS BIGINT) AS located,
    CAST(coalesce(sum(w.with_location_text), 0) AS BIGINT) AS with_location_text,
    CAST(coalesce(sum(w.incidents) FILTER (WHERE w.occurred_precision = 'exact'), 0) AS BIGINT) AS exact_times,
    CAST(coalesce(sum(w.incidents) FILTER (WHERE w.occurred_precision = 'day'), 0) AS BIGINT) AS day_only,
    CAST(coalesce(sum(w.incidents) FILTER (WHERE w.occurred_precision = 'month'), 0) AS BIGINT) AS month_only
FROM summary.weeks w;

-- One row per district that has incidents, with how many.
CREATE OR REPLACE MACRO summary.district_rows() AS TABLE
SELECT w.district, CAST(sum(w.incidents) AS BIGINT) AS incidents
FROM summary.weeks w
WHERE w.district IS NOT NULL
GROUP BY w.district;

-- One row per offence category (as recorded on incidents) that has incidents, with how many.
CREATE OR REPLACE MACRO summary.category_rows() AS TABLE
SELECT w.category, CAST(sum(w.incidents) AS BIGINT) AS incidents
FROM summary.weeks w
GROUP BY w.category;

-- ---------------------------------------------------------------------------------------------------------
-- Issue 10 (cold pages at 10M incidents): the person-level and data-quality summaries. Like the cube, each
-- is kept by week (a write recomputes the weeks it touched) and its macro takes (week_from, week_to,
-- undated); ilp/summaries.py WEEKLY_TABLES lists them.

-- Victim links with their incident's time and place (summary.victims), so repeat-victim figures read the
-- weeks they need instead of joining every person link to every incident. One row per incident_persons row
-- with role 'victim' whose incident (current version) is dated from week_from (inclusive) to week_to
-- (exclusive), or undated when `undated`: week (the Monday, NULL when undated), the incident's occurred_at,
-- source, source_id, district, beat, offence category and domestic flag, and the person's pseudonymous
-- person_key and age band. Person-level like incident_persons: never shown, only counted.
CREATE OR REPLACE MACRO summary.victim_rows(week_from, week_to, undated) AS TABLE  -- noqa: CP05
SELECT
    CAST(date_trunc('week', i.occurred_at) AS DATE) AS week,
    i.occurred_at,
    p.person_key,
    i.source,
    i.source_id,
    i.district,
    i.beat,
    i.offense_category AS category,
    i.domestic,
    p.age_band
FROM incidents i
INNER JOIN incident_persons p ON i.source = p.source AND i.source_id = p.source_id
WHERE
    p.role = 'victim'
    AND summary.dated_in(i.occurred_at, week_from, week_to, undated)  -- noqa: RF03
    -- implied by the join, but lets DuckDB probe incident_persons with the few incidents of the weeks instead of
    -- joining all of it (a one-week refresh at 10M: 1.0 s -> 0.01 s)
    AND p.source_id IN (
        SELECT s.source_id FROM incidents AS s
        WHERE summary.dated_in(s.occurred_at, week_from, week_to, undated)  -- noqa: RF03
    );

-- The data-quality cube (summary.source_weeks): what the governance page and the outcomes' availability
-- check count over every incident. One row per (week, month, source, location_status, clearance_status,
-- whether the arrest flag is recorded, whether the offence is unmapped and then its offence_code) with
-- incidents dated from week_from (inclusive) to week_to (exclusive), plus the undated ones (week and month
-- NULL) when `undated`: incidents, the first and last occurred_at, and for unmapped codes the smallest
-- offence description as published (NULL for mapped offences).
CREATE OR REPLACE MACRO summary.source_week_rows(week_from, week_to, undated) AS TABLE  -- noqa: CP05
SELECT
    CAST(date_trunc('week', i.occurred_at) AS DATE) AS week,
    CAST(date_trunc('month', i.occurred_at) AS DATE) AS month,
    i.source,
    i.location_status,
    i.clearance_status,
    i.arrest IS NOT NULL AS arrest_recorded,
    i.offense_category = 'unmapped' AS unmapped,
    CASE WHEN i.offense_category = 'unmapped' THEN i.offense_code END AS unmapped_code,
    min(CASE WHEN i.offense_category = 'unmapped' THEN i.offense_description END) AS unmapped_description,
    count(*) AS incidents,
    min(i.occurred_at) AS first_at,
    max(i.occurred_at) AS last_at
FROM incidents i
WHERE summary.dated_in(i.occurred_at, week_from, week_to, undated)  -- noqa: RF03
GROUP BY ALL;
