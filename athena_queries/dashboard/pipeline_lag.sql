-- Dashboard, pipeline health: the newest change in the lake. The lag is "now" minus
-- newest_change_time, computed where "now" is known (QuickSight's now(), the local page's clock),
-- so the text is the same on both engines.
SELECT max(event_time) AS newest_change_time, count(*) AS changes
FROM changes_unique
