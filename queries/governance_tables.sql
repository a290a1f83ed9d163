-- What the snapshot holds: one row per warehouse table with its (estimated) row count and columns.
-- ("table" is quoted: it is a keyword, and the governance page reads that column name.)
SELECT table_name AS "table",  -- noqa: RF06
       estimated_size AS rows,
       column_count AS columns
FROM duckdb_tables()
WHERE schema_name = 'main'
ORDER BY table_name;
