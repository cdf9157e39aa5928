-- Every delete, told apart: 'ttl' when DynamoDB's Time to Live sweeper removed the item
-- (userIdentity Service / dynamodb.amazonaws.com), 'user' otherwise.
-- For counts: SELECT table_name, dt, deletion_kind, count(*) FROM deletions GROUP BY 1, 2, 3
CREATE OR REPLACE VIEW deletions AS
SELECT
  table_name,
  key,
  event_time,
  CASE WHEN is_ttl_delete THEN 'ttl' ELSE 'user' END AS deletion_kind,
  user_identity AS deleted_by,
  old_image AS last_image,
  event_id,
  dt
FROM changes_unique
WHERE event_name = 'REMOVE'
