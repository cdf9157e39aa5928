-- One row per changed attribute per change: who changed what, from which value to which.
--
-- old_value / new_value are the JSON text of the attribute (numbers as exact literals,
-- strings quoted, maps/lists as JSON); NULL when the attribute is absent on that side,
-- the text 'null' when it holds a DynamoDB NULL.
-- actor: the item attribute named by settings.actor_attribute (default updated_by) of
-- the new image, else the stream's user identity (TTL expiries: dynamodb.amazonaws.com;
-- a REMOVE has no new image, so its actor is always the stream identity).
-- Order within a key: (shard_id, sequence_number) inside a shard, event_time across shards.
CREATE OR REPLACE VIEW audit_trail AS
SELECT
  c.table_name,
  c.key,
  c.event_time,
  c.event_name,
  a.attribute,
  json_format(element_at(CAST(json_parse(c.old_image) AS MAP(VARCHAR, JSON)), a.attribute)) AS old_value,
  json_format(element_at(CAST(json_parse(c.new_image) AS MAP(VARCHAR, JSON)), a.attribute)) AS new_value,
  c.is_ttl_delete,
  coalesce(json_extract_scalar(c.new_image, '$.${actor_attribute}'), c.user_identity) AS actor,
  c.event_id,
  c.shard_id,
  c.sequence_number,
  c.dt
FROM changes_unique AS c
CROSS JOIN UNNEST(c.changed_attributes) AS a (attribute)
