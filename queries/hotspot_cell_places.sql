-- Where a forecast cell is, in words: one row per grid cell (as hotspot_cell_weeks.sql) with a located
-- incident from $start to before $end in the district ($district NULL = all): its commonest beat and
-- district, and its commonest block text among offences that are neither sensitive (offence_categories)
-- nor domestic, so a block never points at a sexual offence or a home where domestic abuse was reported
-- (NULL where the source has no block text, or the cell has only such offences).
SELECT
    floor(i.longitude / $cell_dlon)::BIGINT AS cell_x,
    floor(i.latitude / $cell_dlat)::BIGINT AS cell_y,
    mode(i.beat) AS beat,
    mode(i.district) AS district,
    mode(i.location_text) FILTER (
        WHERE NOT coalesce(c.sensitive, false) AND NOT coalesce(i.domestic, false)
    ) AS block
FROM incidents i
LEFT JOIN offence_categories c ON c.category = i.offense_category
WHERE i.occurred_at >= $start AND i.occurred_at < $end
  AND i.location_status = 'ok'
  AND ($district IS NULL OR i.district = $district)
GROUP BY ALL
ORDER BY cell_x, cell_y;
