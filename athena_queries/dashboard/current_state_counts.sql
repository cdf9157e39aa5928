-- Dashboard: items that exist now, per source table and value of one chosen top-level attribute.
-- One parameter, the attribute's name (`lake dashboard --attribute`, setting dashboard_attribute):
-- bound by DuckDB locally, and written as a literal into QuickSight's custom SQL at deploy.
-- An item without the attribute, or whose value is not a scalar, counts under NULL.
-- Reads the current_state view (the <table>_current tables of the Glue jobs can replace it).
SELECT table_name, json_extract_scalar(item, concat('$.', ?)) AS value, count(*) AS items
FROM current_state
GROUP BY 1, 2
