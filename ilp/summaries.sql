-- sqlfluff:rules:capitalisation.types:extended_capitalisation_policy:upper
-- Per-snapshot summaries: what the pages read instead of scanning every incident (ilp/summaries.py).
-- Each is a table macro over `incidents`; ilp/summaries.py stores their rows as tables in the snapshot's
-- schema `summary` at the end of every write (summary.weeks for the weeks a write touched, the others
-- from summary.weeks), and a snapshot written before summaries reads them through views over the same
-- macros instead. Harm is not stored: a query multiplies `incidents` by category_harm's harm_weight
-- (ilp/harm.sql, the one definition of harm), so a new or changed harm index needs no rebuild.
-- Statements are idempotent (CREATE OR REPLACE); each ends with ";" at the end of a line (the Python splits there).

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
WHERE (i.occurred_at >= CAST(week_from AS TIMESTAMP) AND i.occurred_at < CAST(week_to AS TIMESTAMP))  -- noqa: RF03
   OR (undated AND i.occurred_at IS NULL)  -- noqa: RF03
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
