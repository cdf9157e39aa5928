-- The latest image of every item that still exists (deleted keys excluded).
--
-- "Latest" per key: within one Kinesis shard the sequence number orders changes exactly
-- (the partition key is table + item key, so an item's changes share a shard); an item
-- seen on several shards (after a reshard) takes the shard holding its newest event_time,
-- then the highest sequence number there. ApproximateCreationDateTime has only second
-- precision on DynamoDB Streams, so event_time alone could not order two quick changes.
CREATE OR REPLACE VIEW current_state AS
SELECT
  table_name,
  key,
  keys,
  new_image AS item,
  event_time AS updated_at,
  event_name AS last_event_name,
  event_id AS last_event_id
FROM (
  SELECT
    s.*,
    row_number() OVER (
      PARTITION BY s.table_name, s.key
      ORDER BY s.shard_last_time DESC, s.shard_id DESC, s.sequence_number DESC
    ) AS recency
  FROM (
    SELECT
      c.*,
      max(c.event_time) OVER (PARTITION BY c.table_name, c.key, c.shard_id) AS shard_last_time
    FROM changes_unique AS c
  ) AS s
) AS ranked
WHERE recency = 1 AND event_name <> 'REMOVE'
