-- A sample of rejected rows: at most 5 per (reason, field), newest ingest first, 200 in all.
-- One row per rejected source row: ingest, file, line number (header = line 1), field, reason, raw row.
SELECT ingest_id,
       file,
       line_number,
       field,
       reason,
       raw_row
FROM rejects
QUALIFY row_number() OVER (PARTITION BY reason, field ORDER BY ingest_id DESC, file, line_number) <= 5
ORDER BY reason, field, ingest_id DESC, file, line_number
LIMIT 200;
