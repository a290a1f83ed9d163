-- Where a forecast cell is, in words: one row per grid cell (as hotspot_cell_weeks.sql) with a located
-- incident from $start to before $end in the district ($district NULL = all): its commonest beat and
-- district, and its commonest block text among offences that are neither sensitive (offence_categories)
-- nor domestic, so a block never points at a sexual offence or a home where domestic abuse was reported
-- (NULL where the source has no block text, or the cell has only such offences). A tie goes to the first
-- in alphabetical order, so the same data always names the same place.
WITH located AS (
    SELECT
        floor(i.longitude / $cell_dlon)::BIGINT AS cell_x,
        floor(i.latitude / $cell_dlat)::BIGINT AS cell_y,
        i.beat,
        i.district,
        CASE
            WHEN NOT coalesce(c.sensitive, false) AND NOT coalesce(i.domestic, false) THEN i.location_text
        END AS block
    FROM incidents i
    LEFT JOIN offence_categories c ON c.category = i.offense_category
    WHERE i.occurred_at >= $start AND i.occurred_at < $end
      AND i.location_status = 'ok'
      AND ($district IS NULL OR i.district = $district)
),

cells AS (
    SELECT DISTINCT cell_x, cell_y FROM located
),

beat_of AS (
    SELECT cell_x, cell_y, first(beat ORDER BY n DESC, beat) AS beat
    FROM (SELECT cell_x, cell_y, beat, count(*) AS n FROM located WHERE beat IS NOT NULL GROUP BY ALL) AS counted
    GROUP BY ALL
),

district_of AS (
    SELECT cell_x, cell_y, first(district ORDER BY n DESC, district) AS district
    FROM (SELECT cell_x, cell_y, district, count(*) AS n FROM located WHERE district IS NOT NULL GROUP BY ALL) AS counted
    GROUP BY ALL
),

block_of AS (
    SELECT cell_x, cell_y, first(block ORDER BY n DESC, block) AS block
    FROM (SELECT cell_x, cell_y, block, count(*) AS n FROM located WHERE block IS NOT NULL GROUP BY ALL) AS counted
    GROUP BY ALL
)

SELECT
    cells.cell_x,
    cells.cell_y,
    b.beat,
    d.district,
    k.block
FROM cells
LEFT JOIN beat_of AS b ON b.cell_x = cells.cell_x AND b.cell_y = cells.cell_y
LEFT JOIN district_of AS d ON d.cell_x = cells.cell_x AND d.cell_y = cells.cell_y
LEFT JOIN block_of AS k ON k.cell_x = cells.cell_x AND k.cell_y = cells.cell_y
ORDER BY cells.cell_x, cells.cell_y;
