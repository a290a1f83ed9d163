-- Deployment without coordinates: where harm concentrates by area instead of by grid cell. One row per
-- area at $level ('beat' or 'district') with at least one incident in the period, district and category:
-- its name (the id when no name is loaded), incident count and harm (sum of incident_harm's harm,
-- ilp/harm.sql: proactive categories count 0 unless $include_proactive), highest harm first. Incidents not
-- placed at the level are left out.
WITH placed AS (
    SELECT
        CASE $level WHEN 'beat' THEN i.beat ELSE i.district END AS area_id,
        i.harm
    FROM incident_harm($harm_index, $harm_version, include_proactive := $include_proactive) i
    WHERE i.occurred_at >= $start AND i.occurred_at < $end
      AND ($district IS NULL OR i.district = $district)
      AND ($category IS NULL OR i.offense_category = $category)
)
SELECT
    p.area_id,
    coalesce(a.name, p.area_id) AS area_name,
    count(*) AS incidents,
    sum(p.harm) AS harm
FROM placed p
LEFT JOIN areas a ON a.level = $level AND a.area_id = p.area_id
WHERE p.area_id IS NOT NULL
GROUP BY ALL
ORDER BY harm DESC, incidents DESC, p.area_id;
