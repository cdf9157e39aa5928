-- Dashboard: change volume over time, per source table and event name (duplicates excluded).
SELECT table_name, hour, event_name, changes
FROM change_volume
