-- Which raw-zone objects hold the changes of one item in a time range: the input of a
-- targeted replay. "$path" is Athena's hidden object-URL column (DuckDB's `filename`
-- locally). Parameters, in order:
--   1 source table, 2 item key as lake.records.key_string renders it ('pk=A|sk=1'),
--   3 from, 4 to (UTC 'YYYY-MM-DD HH:MM:SS'), 5 from, 6 to again (they bound the dt
--   partitions, so only those days are read).
SELECT
  "$path" AS object,
  count(*) AS records,
  min(from_unixtime(lake.t / 1000000.0)) AS first_event_time,
  max(from_unixtime(lake.t / 1000000.0)) AS last_event_time
FROM raw_changes
WHERE "table" = ?
  AND lake.key = ?
  AND from_unixtime(lake.t / 1000000.0) BETWEEN CAST(? AS TIMESTAMP) AND CAST(? AS TIMESTAMP)
  AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
GROUP BY "$path"
ORDER BY object
