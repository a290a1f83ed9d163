-- Repeat victims (ilp/analytics/threats.py `repeat_victims`), counted, never listed. One row per (area at
-- $level, offence category) of recent incidents of repeat victims: victims (incident_persons, role
-- 'victim', by pseudonymous person_key) with 2+ incidents in the $window_days days ending $as_of
-- (inclusive; any category, anywhere) and at least one in the recent $recent_days days. Per row: how
-- many such victims had a recent incident of the category in the area, those incidents, all their
-- incidents in the window, how many of those victims were under 18 or 65+ at a recent incident there,
-- and how many of those recent incidents were flagged domestic. $level is 'beat', 'district' or 'city'
-- (one area, 'citywide'). Respects $district and $category (NULL = all) for the recent incidents that
-- place a victim in a row (not for what makes them a repeat victim). Never returns a person_key or a
-- per-person row.
WITH victimisations AS (
    -- the window's incidents first (bounds written as constants, so the scan skips the rest), then their
    -- victims. A person linked twice to one incident gives two rows; everything below counts distinct
    -- incidents and people, so no DISTINCT here (it cost a sixth of the query).
    SELECT
        p.person_key,
        i.source,
        i.source_id,
        i.occurred_at >= CAST($as_of AS DATE) + 1 - CAST($recent_days AS INTEGER) AS recent,
        CASE $level WHEN 'beat' THEN i.beat WHEN 'district' THEN i.district ELSE 'citywide' END AS area_id,
        i.district,
        i.offense_category AS category,
        coalesce(i.domestic, false) AS domestic,
        p.age_band
    FROM incidents AS i
    INNER JOIN incident_persons AS p ON i.source = p.source AND i.source_id = p.source_id
    WHERE
        i.occurred_at >= CAST($as_of AS DATE) + 1 - CAST($window_days AS INTEGER)
        AND i.occurred_at < CAST($as_of AS DATE) + 1
        AND p.role = 'victim'
),
repeaters AS (
    SELECT person_key, count(DISTINCT source || '|' || source_id) AS window_incidents
    FROM victimisations
    GROUP BY person_key
    HAVING count(DISTINCT source || '|' || source_id) >= 2 AND bool_or(recent)
),
recent AS (
    SELECT v.*, r.window_incidents
    FROM victimisations v
    JOIN repeaters r USING (person_key)
    WHERE v.recent
      AND v.area_id IS NOT NULL
      AND ($district IS NULL OR v.district = $district)
      AND ($category IS NULL OR v.category = $category)
),
per_victim AS (
    SELECT
        area_id,
        category,
        person_key,
        max(window_incidents) AS window_incidents,
        bool_or(age_band = '<18') AS under_18,
        bool_or(age_band = '65+') AS aged_65_plus
    FROM recent
    GROUP BY area_id, category, person_key
),
victims AS (
    SELECT
        area_id,
        category,
        count(*) AS repeat_victims,
        sum(window_incidents) AS incidents_window,
        count(*) FILTER (WHERE under_18) AS under_18,
        count(*) FILTER (WHERE aged_65_plus) AS aged_65_plus
    FROM per_victim
    GROUP BY area_id, category
),
victim_incidents AS (
    SELECT
        area_id,
        category,
        count(DISTINCT source || '|' || source_id) AS incidents_recent,
        count(DISTINCT source || '|' || source_id) FILTER (WHERE domestic) AS domestic_recent
    FROM recent
    GROUP BY area_id, category
)
SELECT
    v.area_id AS area,
    coalesce(a.name, CASE WHEN v.area_id = 'citywide' THEN 'Citywide' ELSE v.area_id END) AS area_name,
    v.category AS offense_category,
    coalesce(c.label, v.category) AS category_label,
    v.repeat_victims,
    n.incidents_recent,
    v.incidents_window,
    v.under_18,
    v.aged_65_plus,
    n.domestic_recent
FROM victims v
JOIN victim_incidents n USING (area_id, category)
LEFT JOIN offence_categories c ON c.category = v.category
LEFT JOIN areas a ON a.level = $level AND a.area_id = v.area_id
ORDER BY v.repeat_victims DESC, n.incidents_recent DESC, v.area_id, v.category;
