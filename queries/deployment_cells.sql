-- One row per grid cell (cell_x = floor(longitude / $cell_dlon), cell_y = floor(latitude / $cell_dlat))
-- holding at least one located incident in the period, district, category and $shift ('all', 'day'
-- 07:00-15:00, 'evening' 15:00-23:00, 'night' 23:00-07:00; a shift needs an exact time): incident count,
-- harm (sum of incident_harm's harm, ilp/harm.sql: proactive categories count 0 unless
-- $include_proactive), the cell's commonest beat and district, and how many of its incidents are
-- sensitive offences.
-- Cells only: no incident points leave this query.
WITH located AS (
    SELECT
        floor(i.longitude / $cell_dlon)::BIGINT AS cell_x,
        floor(i.latitude / $cell_dlat)::BIGINT AS cell_y,
        i.beat,
        i.district,
        coalesce(c.sensitive, false) AS sensitive,
        i.harm
    FROM incident_harm($harm_index, $harm_version, include_proactive := $include_proactive) i
    LEFT JOIN offence_categories c ON c.category = i.offense_category
    WHERE i.occurred_at >= $start AND i.occurred_at < $end
      AND i.location_status = 'ok'
      AND ($district IS NULL OR i.district = $district)
      AND ($category IS NULL OR i.offense_category = $category)
      AND ($shift = 'all' OR (
            i.occurred_precision = 'exact'
            AND CASE
                    WHEN hour(i.occurred_at) >= 7 AND hour(i.occurred_at) < 15 THEN 'day'
                    WHEN hour(i.occurred_at) >= 15 AND hour(i.occurred_at) < 23 THEN 'evening'
                    ELSE 'night'
                END = $shift))
)
SELECT
    cell_x,
    cell_y,
    count(*) AS incidents,
    sum(harm) AS harm,
    mode(beat) AS beat,
    mode(district) AS district,
    count(*) FILTER (WHERE sensitive) AS sensitive_incidents
FROM located
GROUP BY cell_x, cell_y
ORDER BY harm DESC, incidents DESC, cell_x, cell_y;
