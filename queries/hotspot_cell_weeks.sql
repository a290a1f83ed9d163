-- The hot-spot forecasts' one input (ilp/analytics/hotspot_forecast.py): one row per (grid cell, week, shift)
-- with at least one located incident from $start to before $end in the district ($district NULL = all).
-- cell_x = floor(longitude / $cell_dlon), cell_y = floor(latitude / $cell_dlat) (ilp.analytics.hotspots.Grid);
-- week is the Monday; shift_number is 1 (day) from $day_start to $evening_start o'clock, 2 (evening) to
-- $night_start, 3 (night) to $day_start the next morning, 0 when the source gives only the day or month.
-- incidents and harm count the chosen category ($category NULL = every offence; harm is incident_harm's,
-- ilp/harm.sql: proactive categories count 0 unless $include_proactive); all_incidents counts every
-- offence, which defines the study area and feeds the model's all-crime history.
SELECT
    floor(i.longitude / $cell_dlon)::BIGINT AS cell_x,
    floor(i.latitude / $cell_dlat)::BIGINT AS cell_y,
    date_trunc('week', i.occurred_at)::DATE AS week,
    CASE
        WHEN i.occurred_precision <> 'exact' THEN 0
        WHEN hour(i.occurred_at) >= $day_start AND hour(i.occurred_at) < $evening_start THEN 1
        WHEN hour(i.occurred_at) >= $evening_start AND hour(i.occurred_at) < $night_start THEN 2
        ELSE 3
    END AS shift_number,
    count(*) FILTER (WHERE $category IS NULL OR i.offense_category = $category) AS incidents,
    coalesce(sum(i.harm) FILTER (WHERE $category IS NULL OR i.offense_category = $category), 0.0) AS harm,
    count(*) AS all_incidents
FROM incident_harm($harm_index, $harm_version, include_proactive := $include_proactive) i
WHERE i.occurred_at >= $start AND i.occurred_at < $end
  AND i.location_status = 'ok'
  AND ($district IS NULL OR i.district = $district)
GROUP BY ALL
ORDER BY week, cell_x, cell_y, shift_number;
