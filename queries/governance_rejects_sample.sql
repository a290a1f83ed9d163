-- A sample of rejected rows: at most 5 per (rule, field), newest ingest first, 200 in all.
-- One row per rejected source row: ingest, file, line number (header = line 1), field, reason, raw line(s).
WITH all_rejects AS (
    SELECT * FROM rejects
    UNION ALL BY NAME
    SELECT NULL::VARCHAR AS rule WHERE false
)

SELECT ingest_id,
       file,
       line_number,
       field,
       reason,
       raw_row
FROM all_rejects
QUALIFY
    row_number() OVER (
        PARTITION BY coalesce(rule, reason), field ORDER BY ingest_id DESC, file, line_number
    ) <= 5
ORDER BY coalesce(rule, reason), field, ingest_id DESC, file, line_number
LIMIT 200;
