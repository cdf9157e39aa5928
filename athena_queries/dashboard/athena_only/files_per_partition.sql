-- Dashboard, pipeline health: data files per partition of the Iceberg `changes` table, from
-- Athena's "$files" metadata table (the local page reads the same Iceberg metadata with pyiceberg's
-- inspect.files(), which DuckDB cannot name).
SELECT "partition".table_name AS table_name, "partition".dt AS dt, count(*) AS files,
       sum(record_count) AS records
FROM "changes$files"
GROUP BY "partition".table_name, "partition".dt
