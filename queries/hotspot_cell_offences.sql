-- What drives a forecast cell: one row per (grid cell, offence category) with at least one located incident
-- from $start to before $end in the district ($district NULL = all) and shift ($shift 'all', or 'day',
-- 'evening', 'night' by the hours $day_start, $evening_start, $night_start, as hotspot_cell_weeks.sql):
-- the category's label, incident count and harm (incident_harm, ilp/harm.sql: proactive categories count 0
-- unless $include_proactive). Every category, so the plan names the offences behind each cell.
SELECT
    floor(i.longitude / $cell_dlon)::BIGINT AS cell_x,
    floor(i.latitude / $cell_dlat)::BIGINT AS cell_y,
    i.offense_category AS category,
    coalesce(c.label, i.offense_category) AS label,
    count(*) AS incidents,
    sum(i.harm) AS harm
FROM incident_harm($harm_index, $harm_version, include_proactive := $include_proactive) i
LEFT JOIN offence_categories c ON c.category = i.offense_category
WHERE i.occurred_at >= $start AND i.occurred_at < $end
  AND i.location_status = 'ok'
  AND ($district IS NULL OR i.district = $district)
  AND ($shift = 'all' OR (
        i.occurred_precision = 'exact'
        AND CASE
                WHEN hour(i.occurred_at) >= $day_start AND hour(i.occurred_at) < $evening_start THEN 'day'
                WHEN hour(i.occurred_at) >= $evening_start AND hour(i.occurred_at) < $night_start THEN 'evening'
                ELSE 'night'
            END = $shift))
GROUP BY ALL
ORDER BY cell_x, cell_y, harm DESC, incidents DESC, category;
