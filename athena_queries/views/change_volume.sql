-- Changes per source table, hour and event name (duplicates excluded).
-- dt is kept so that a dt predicate prunes partitions through the view.
CREATE OR REPLACE VIEW change_volume AS
SELECT
  table_name,
  date_trunc('hour', event_time) AS hour,
  event_name,
  count(*) AS changes,
  dt
FROM changes_unique
GROUP BY table_name, date_trunc('hour', event_time), event_name, dt
