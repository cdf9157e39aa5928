-- Dashboard: the attributes most often changed by updates (MODIFY), per source table.
-- INSERT and REMOVE list every attribute of the item, so they would say nothing here.
SELECT table_name, attribute, count(*) AS changes
FROM audit_trail
WHERE event_name = 'MODIFY'
GROUP BY table_name, attribute
