-- One row per (district, survey quarter) for the community-survey measure 'trust_police': district id and
-- name, quarter start and label, share agreeing (0..1) and respondents; every quarter on record up to
-- $month_to (exclusive), for the chosen district or all.
SELECT
    s.area_id,
    coalesce(a.name, s.area_id) AS name,
    s.period_start,
    s.period_label,
    s.value,
    s.respondents
FROM community_survey s
LEFT JOIN areas a ON a.level = 'district' AND a.area_id = s.area_id
WHERE s.measure = 'trust_police'
  AND s.area_level = 'district'
  AND s.period_start < $month_to
  AND ($district IS NULL OR s.area_id = $district)
ORDER BY s.period_start, s.area_id;
