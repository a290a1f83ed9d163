-- What the snapshot holds: one row per warehouse table with its (estimated) row count and columns.
SELECT table_name AS "table",
       estimated_size AS rows,
       column_count AS columns
FROM duckdb_tables()
WHERE schema_name = 'main'
ORDER BY table_name;
