-- Threat candidates (ilp/analytics/threats.py, `ilp threats`). One row per (area at $level, offence
-- category) with at least one incident in the recent window ($recent_days days ending $as_of, inclusive)
-- or in its baseline (the $baseline_weeks weeks before the recent window). $level is 'beat', 'district'
-- or 'city' (one area, 'citywide': offence categories ranked citywide, for data placed in neither).
-- Columns: incidents in each window; the harm weight of the chosen index ($harm_index, $harm_version:
-- category_harm's harm_weight, ilp/harm.sql, proactive categories included unless $exclude_proactive);
-- a recency-weighted count (sum of $decay ^ weeks-before-as-of) for the expected-harm forecast;
-- victims of recent incidents counted by pseudonymous person_key only (never names), with those
-- under 18 or 65+ and those with 2+ incidents in the $repeat_victim_days days ending $as_of (any
-- category, anywhere); repeat locations (the same location_text, 2+ recent incidents of the category
-- in the area); and data-quality facts for the confidence score (geocoded, timed to the day or better,
-- reported within $timely_days days).
-- Respects $district (NULL = all). Left out: incidents with no area at this level; categories with no positive weight in the chosen
-- index (non-crime, unmapped); proactive categories when $exclude_proactive (they count police activity,
-- not harm, and the CCHI excludes them).
WITH bounds AS (
    SELECT
        CAST($as_of AS DATE) + 1 AS recent_end,
        CAST($as_of AS DATE) + 1 - CAST($recent_days AS INTEGER) AS recent_start,
        CAST($as_of AS DATE) + 1 - CAST($recent_days AS INTEGER) - 7 * CAST($baseline_weeks AS INTEGER)
            AS baseline_start
),
categories AS (
    SELECT c.category, c.label, c.proactive, c.sensitive, h.harm_weight AS weight
    FROM offence_categories c
    JOIN category_harm($harm_index, $harm_version, include_proactive := NOT $exclude_proactive) h
      ON h.category = c.category
    WHERE h.harm_weight > 0
),
scoped AS (
    SELECT
        i.source,
        i.source_id,
        CASE $level WHEN 'beat' THEN i.beat WHEN 'district' THEN i.district ELSE 'citywide' END AS area_id,
        i.offense_category AS category,
        i.occurred_at >= b.recent_start AS recent,
        date_diff('day', CAST(i.occurred_at AS DATE), CAST($as_of AS DATE)) // 7 AS age_weeks,
        i.location_text,
        i.location_status = 'ok' AS geocoded,
        i.occurred_precision IN ('exact', 'day') AS precise,
        coalesce(i.domestic, false) AS domestic,
        date_diff('second', i.occurred_at, i.reported_at) / 86400.0 AS lag_days
    FROM incidents i
    CROSS JOIN bounds b
    WHERE i.occurred_at >= b.baseline_start
      AND i.occurred_at < b.recent_end
      AND i.offense_category IN (SELECT category FROM categories)
      AND (CASE $level WHEN 'beat' THEN i.beat WHEN 'district' THEN i.district ELSE 'citywide' END) IS NOT NULL
      AND ($district IS NULL OR i.district = $district)
),
counts AS (
    SELECT
        area_id,
        category,
        count(*) FILTER (WHERE recent) AS recent_count,
        count(*) FILTER (WHERE NOT recent) AS baseline_count,
        sum(pow(CAST($decay AS DOUBLE), age_weeks)) AS weighted_count,
        count(*) FILTER (WHERE recent AND domestic) AS recent_domestic,
        count(*) FILTER (WHERE geocoded) AS geocoded,
        count(*) FILTER (WHERE precise) AS precise,
        count(*) FILTER (WHERE recent AND lag_days IS NOT NULL) AS recent_with_report_time,
        count(*) FILTER (WHERE recent AND lag_days <= $timely_days) AS recent_timely
    FROM scoped
    GROUP BY area_id, category
),
location_counts AS (
    SELECT area_id, category, location_text, count(*) AS incidents
    FROM scoped
    WHERE recent AND location_text IS NOT NULL
    GROUP BY area_id, category, location_text
),
locations AS (
    SELECT
        area_id,
        category,
        count(*) FILTER (WHERE incidents >= 2) AS repeat_locations,
        coalesce(sum(incidents) FILTER (WHERE incidents >= 2), 0) AS at_repeat_locations,
        first(location_text ORDER BY incidents DESC, location_text) AS top_location,
        max(incidents) AS top_location_incidents
    FROM location_counts
    GROUP BY area_id, category
),
recent_victims AS (
    -- victim links of the recent window (summary.victims, ilp/summaries.sql: each with its incident's time and
    -- place, stored by week; bounds written as constants, so the scan reads the recent days only)
    SELECT
        s.area_id,
        s.category,
        v.person_key,
        bool_or(v.age_band = '<18') AS under_18,
        bool_or(v.age_band = '65+') AS aged_65_plus
    FROM scoped s
    JOIN summary.victims v ON v.source = s.source AND v.source_id = s.source_id
    WHERE s.recent
      AND v.occurred_at >= CAST($as_of AS DATE) + 1 - CAST($recent_days AS INTEGER)
      AND v.occurred_at < CAST($as_of AS DATE) + 1
    GROUP BY s.area_id, s.category, v.person_key
),
victim_history AS (
    SELECT v.person_key, count(DISTINCT v.source || '|' || v.source_id) AS incidents
    FROM summary.victims v
    WHERE v.person_key IN (SELECT person_key FROM recent_victims)
      AND v.occurred_at >= CAST($as_of AS DATE) + 1 - CAST($repeat_victim_days AS INTEGER)
      AND v.occurred_at < CAST($as_of AS DATE) + 1
    GROUP BY v.person_key
),
victims AS (
    SELECT
        v.area_id,
        v.category,
        count(*) AS victims,
        count(*) FILTER (WHERE v.under_18) AS victims_under_18,
        count(*) FILTER (WHERE v.aged_65_plus) AS victims_65_plus,
        count(*) FILTER (WHERE h.incidents >= 2) AS repeat_victims
    FROM recent_victims v
    LEFT JOIN victim_history h ON h.person_key = v.person_key
    GROUP BY v.area_id, v.category
)
SELECT
    k.area_id,
    coalesce(a.name, CASE WHEN k.area_id = 'citywide' THEN 'Citywide' ELSE k.area_id END) AS area_name,
    k.category,
    c.label AS category_label,
    c.proactive,
    c.sensitive,
    c.weight,
    k.recent_count,
    k.baseline_count,
    k.weighted_count,
    k.recent_domestic,
    k.geocoded,
    k.precise,
    k.recent_with_report_time,
    k.recent_timely,
    coalesce(l.repeat_locations, 0) AS repeat_locations,
    coalesce(l.at_repeat_locations, 0) AS at_repeat_locations,
    l.top_location,
    l.top_location_incidents,
    coalesce(v.victims, 0) AS victims,
    coalesce(v.victims_under_18, 0) AS victims_under_18,
    coalesce(v.victims_65_plus, 0) AS victims_65_plus,
    coalesce(v.repeat_victims, 0) AS repeat_victims
FROM counts k
JOIN categories c ON c.category = k.category
LEFT JOIN locations l ON l.area_id = k.area_id AND l.category = k.category
LEFT JOIN victims v ON v.area_id = k.area_id AND v.category = k.category
LEFT JOIN areas a ON a.level = $level AND a.area_id = k.area_id
ORDER BY k.area_id, k.category;
