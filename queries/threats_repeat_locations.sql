-- Repeat locations (ilp/analytics/threats.py `repeat_locations`). One row per location (the source's
-- location_text, already block-level: "011XX S CANAL ST") with at least $min_incidents harm-bearing
-- incidents in the recent window ($recent_days days ending $as_of, inclusive), with its beat and district
-- (those of most of its recent incidents), its recent incidents and harm ($harm_index, $harm_version;
-- category_harm, ilp/harm.sql, with proactive categories included unless $exclude_proactive),
-- its incidents in the baseline (the $baseline_weeks weeks before the recent window), the first and last
-- day of its recent incidents, and its top three categories (label and count, highest harm first) with
-- the top one's code and label.
-- Left out: incidents with no location_text; categories with no positive weight in the chosen index
-- (non-crime, unmapped); proactive categories when $exclude_proactive; categories flagged `sensitive`
-- (homicide, sexual offences) and incidents flagged domestic, whose repeat locations would point at
-- victims' homes. Respects $district and $category (NULL = all): only that district's and that
-- category's incidents count.
WITH categories AS (
    SELECT c.category, c.label, h.harm_weight AS weight
    FROM offence_categories c
    JOIN category_harm($harm_index, $harm_version, include_proactive := NOT $exclude_proactive) h
      ON h.category = c.category
    WHERE h.harm_weight > 0 AND NOT c.sensitive
),
scoped AS (
    SELECT
        i.location_text,
        i.beat,
        i.district,
        i.offense_category AS category,
        i.occurred_at,
        i.occurred_at >= CAST($as_of AS DATE) + 1 - CAST($recent_days AS INTEGER) AS recent
    FROM incidents i
    -- bounds written as constants, so the scan reads the baseline and recent days only
    WHERE i.occurred_at >= CAST($as_of AS DATE) + 1 - CAST($recent_days AS INTEGER) - 7 * CAST($baseline_weeks AS INTEGER)
      AND i.occurred_at < CAST($as_of AS DATE) + 1
      AND i.location_text IS NOT NULL
      AND NOT coalesce(i.domestic, false)
      AND i.offense_category IN (SELECT category FROM categories)
      AND ($district IS NULL OR i.district = $district)
      AND ($category IS NULL OR i.offense_category = $category)
),
repeat AS (
    SELECT location_text
    FROM scoped
    WHERE recent
    GROUP BY location_text
    HAVING count(*) >= CAST($min_incidents AS INTEGER)
),
recent AS (
    SELECT s.*
    FROM scoped s
    JOIN repeat USING (location_text)
    WHERE s.recent
),
by_category AS (
    SELECT
        r.location_text,
        r.category,
        c.label,
        count(*) AS incidents,
        count(*) * c.weight AS harm
    FROM recent r
    JOIN categories c USING (category)
    GROUP BY r.location_text, r.category, c.label, c.weight
),
ranked_categories AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY location_text ORDER BY harm DESC, incidents DESC, category) AS position
    FROM by_category
),
category_summary AS (
    SELECT
        location_text,
        string_agg(label || ' ' || incidents, ', ' ORDER BY position) FILTER (WHERE position <= 3) AS categories,
        count(*) AS category_count,
        sum(harm) AS harm,
        sum(incidents) AS incidents
    FROM ranked_categories
    GROUP BY location_text
),
places AS (
    SELECT
        location_text,
        first(beat ORDER BY n DESC, beat NULLS LAST) AS beat,
        first(district ORDER BY n DESC, district NULLS LAST) AS district
    FROM (
        SELECT location_text, beat, district, count(*) AS n
        FROM recent
        GROUP BY location_text, beat, district
    ) AS counted
    GROUP BY location_text
),
days AS (
    SELECT
        location_text,
        CAST(min(occurred_at) AS DATE) AS first_seen,
        CAST(max(occurred_at) AS DATE) AS last_seen
    FROM recent
    GROUP BY location_text
),
baseline AS (
    SELECT s.location_text, count(*) AS baseline_count
    FROM scoped s
    JOIN repeat USING (location_text)
    WHERE NOT s.recent
    GROUP BY s.location_text
)
SELECT
    s.location_text AS location,
    p.beat,
    p.district,
    coalesce(a.name, p.district) AS district_name,
    s.incidents,
    s.harm,
    s.categories,
    s.category_count,
    t.category AS top_category,
    t.label AS top_category_label,
    t.incidents AS top_category_incidents,
    coalesce(b.baseline_count, 0) AS baseline_count,
    d.first_seen,
    d.last_seen
FROM category_summary s
JOIN places p USING (location_text)
JOIN days d USING (location_text)
JOIN ranked_categories t ON t.location_text = s.location_text AND t.position = 1
LEFT JOIN baseline b USING (location_text)
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = p.district
ORDER BY s.harm DESC, s.incidents DESC, s.location_text;
