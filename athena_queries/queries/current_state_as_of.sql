-- The state of every item as of a point in time (deleted keys excluded).
-- One parameter, the instant, as text 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC):
--   lake query --param '2024-05-01 12:00:00' current_state_as_of
--   Athena:  PREPARE as_of FROM <this text>; EXECUTE as_of USING '2024-05-01 12:00:00'
--   (or awswrangler.athena.read_sql_query(sql, params=[...], paramstyle="qmark")).
-- Same ordering rule as the current_state view.
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
    WHERE c.event_time <= CAST(? AS TIMESTAMP)
  ) AS s
) AS ranked
WHERE recency = 1 AND event_name <> 'REMOVE'
ORDER BY table_name, key
