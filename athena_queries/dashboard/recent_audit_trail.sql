-- Dashboard: the latest changed attributes, newest first (who changed what, from which value to which).
SELECT table_name, key, event_time, event_name, attribute, old_value, new_value, actor
FROM audit_trail
ORDER BY event_time DESC, shard_id DESC, sequence_number DESC, attribute
LIMIT 50
