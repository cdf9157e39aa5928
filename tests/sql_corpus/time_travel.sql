-- family: Time travel (Iceberg)
-- source: https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-time-travel-and-version-travel-queries.html
-- `things` is an Iceberg table committed three times (tests/integration/test_query_corpus.py):
-- two rows of 2026-11-01, then two of 2026-11-02, then two of 2026-11-03. ${first_snapshot}
-- is the first snapshot's id, ${second_snapshot_time} the second one's commit time (UTC).

-- function: current snapshot
SELECT dt, count(*) FROM things GROUP BY dt ORDER BY dt
-- => 2026-11-01 | 2
-- => 2026-11-02 | 2
-- => 2026-11-03 | 2

-- function: FOR VERSION AS OF
SELECT count(*) FROM things FOR VERSION AS OF ${first_snapshot}
-- => 2

-- function: FOR VERSION AS OF
SELECT event_id FROM things FOR VERSION AS OF ${first_snapshot} ORDER BY event_id
-- => 2026-11-01-a
-- => 2026-11-01-b

-- function: FOR TIMESTAMP AS OF
SELECT count(*) FROM things FOR TIMESTAMP AS OF TIMESTAMP '${second_snapshot_time} UTC'
-- => 4

-- function: FOR TIMESTAMP AS OF
SELECT x.dt, sum(x.n) FROM things FOR TIMESTAMP AS OF TIMESTAMP '${second_snapshot_time} UTC' AS x WHERE x.dt >= '2026-11-02' GROUP BY x.dt
-- => 2026-11-02 | 3

-- function: FOR TIMESTAMP AS OF
SELECT count(*) FROM things FOR TIMESTAMP AS OF current_timestamp
-- => 6
