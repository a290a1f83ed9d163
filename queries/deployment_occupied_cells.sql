-- One row: how many grid cells ($cell_dlat x $cell_dlon degrees) hold at least one located incident in the
-- whole warehouse (all dates, the chosen district): the reference area for concentration figures when no
-- area boundaries are loaded.
SELECT count(*) AS occupied_cells
FROM (
    SELECT DISTINCT floor(longitude / $cell_dlon)::BIGINT AS cell_x, floor(latitude / $cell_dlat)::BIGINT AS cell_y
    FROM incidents
    WHERE location_status = 'ok'
      AND ($district IS NULL OR district = $district)
) AS cells;
