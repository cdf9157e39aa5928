-- The changes table without at-least-once duplicates: one row per event_id.
-- Every other view reads this one, so a redelivered batch never shows anywhere.
--
-- Duplicates of one change share its event_time, hence its table_name and dt, so the
-- window is also partitioned by those: the result is the same, and a filter on dt or
-- table_name can be pushed below the window (partition pruning keeps working through
-- the views). Of the copies, the first delivered one (lowest shard/sequence) is kept.
CREATE OR REPLACE VIEW changes_unique AS
SELECT
  event_id, event_name, event_time, sequence_number, shard_id, source_sequence_number,
  keys, key, old_image, new_image, changed_attributes, is_ttl_delete, user_identity,
  size_bytes, table_name, dt
FROM (
  SELECT
    c.*,
    row_number() OVER (
      PARTITION BY c.table_name, c.dt, c.event_id
      ORDER BY c.shard_id, c.sequence_number
    ) AS copy_number
  FROM changes AS c
) AS numbered
WHERE copy_number = 1
