-- family: The lake's tables and views
-- source: tests/sql_corpus/lake_records.json (results derived by hand from these records)

-- function: SHOW TABLES
-- note: issue 13 — answered from the catalog, without a warning
SHOW TABLES
-- => audit_trail
-- => change_volume
-- => changes
-- => changes_unique
-- => current_state
-- => deletions
-- => raw_changes
-- => things

-- function: SHOW TABLES
SHOW TABLES LIKE 'change*|deletions'
-- => change_volume
-- => changes
-- => changes_unique
-- => deletions

-- function: changes
SELECT count(*), count(DISTINCT event_id) FROM changes
-- => 7 | 6

-- function: changes_unique
SELECT count(*) FROM changes_unique
-- => 6

-- function: current_state
-- note: issue 13 — exact numbers through json_extract_scalar on the lake's images
SELECT table_name, key, json_extract_scalar(item, '$.status'), json_extract_scalar(item, '$.amount') FROM current_state
-- => orders | order_id=o1 | paid | 0.12345678901234567890123

-- function: audit_trail
SELECT attribute, old_value, new_value, actor FROM audit_trail WHERE event_name = 'MODIFY' ORDER BY attribute
-- => status | "new" | "paid" | bob
-- => updated_by | "alice" | "bob" | bob

-- function: audit_trail
SELECT count(*), count(DISTINCT event_id) FROM audit_trail
-- => 21 | 6

-- function: audit_trail
SELECT new_value FROM audit_trail WHERE key = 'order_id=o2' AND attribute = 'amount' AND event_name = 'INSERT'
-- => 12345678901234567.5

-- function: audit_trail
SELECT element_at(map_agg(attribute, new_value), 'status') FROM audit_trail WHERE event_name = 'MODIFY'
-- => "paid"

-- function: change_volume
SELECT table_name, hour, event_name, changes FROM change_volume ORDER BY hour, table_name, event_name
-- => orders | 2024-05-01 10:00:00.000 | INSERT | 2
-- => orders | 2024-05-01 10:00:00.000 | MODIFY | 1
-- => orders | 2024-05-01 11:00:00.000 | REMOVE | 1
-- => users | 2024-05-01 11:00:00.000 | INSERT | 1
-- => users | 2024-05-02 09:00:00.000 | REMOVE | 1

-- function: deletions
SELECT table_name, key, deletion_kind, deleted_by FROM deletions ORDER BY key
-- => orders | order_id=o2 | ttl | dynamodb.amazonaws.com
-- => users | user_id=u1 | user | NULL

-- function: GROUPING SETS (lake)
-- unordered
SELECT table_name, event_name, count(*) FROM changes_unique GROUP BY GROUPING SETS ((table_name, event_name), (table_name), ())
-- => orders | INSERT | 2
-- => orders | MODIFY | 1
-- => orders | REMOVE | 1
-- => users | INSERT | 1
-- => users | REMOVE | 1
-- => orders | NULL | 4
-- => users | NULL | 2
-- => NULL | NULL | 6

-- function: UNNEST (lake)
SELECT a FROM changes_unique CROSS JOIN UNNEST(changed_attributes) AS t (a) WHERE event_name = 'MODIFY' ORDER BY a
-- => status
-- => updated_by

-- function: format_datetime (lake)
SELECT format_datetime(event_time, 'yyyy-MM-dd HH:mm') FROM deletions WHERE key = 'user_id=u1'
-- => 2024-05-02 09:00

-- function: typeof (lake)
SELECT typeof(changed_attributes), typeof(size_bytes), typeof(key) FROM changes LIMIT 1
-- => array(varchar) | bigint | varchar

-- function: "$path" (curated)
-- note: issue 13 — "$path" on a curated table gives each row's data file
SELECT count(DISTINCT "$path") > 0, bool_and("$path" LIKE 's3://%/changes/table_name=%/dt=%/%.parquet') FROM changes
-- => true | true

-- function: "$path" (curated)
SELECT c."$path" LIKE '%/table_name=users/dt=2024-05-02/%' FROM changes AS c WHERE c.event_id = 'e6'
-- => true

-- function: raw_changes.record
-- note: issue 13 — record is the DDL's struct locally too
SELECT record.eventname, count(*) FROM raw_changes GROUP BY 1 ORDER BY 1
-- => INSERT | 3
-- => MODIFY | 1
-- => REMOVE | 2

-- function: raw_changes.record
SELECT record.useridentity.principalid, record.dynamodb.approximatecreationdatetime FROM raw_changes WHERE record.eventid = 'e4'
-- => dynamodb.amazonaws.com | 1.7145612E9

-- function: raw_changes.record
SELECT json_extract_scalar(record.dynamodb.newimage, '$.amount.N'), json_extract_scalar(record.dynamodb.keys, '$.order_id.S') FROM raw_changes WHERE record.eventid = 'e1'
-- => 0.12345678901234567890123 | o1

-- function: "$path" (raw)
SELECT count(*) FROM raw_changes WHERE "$path" LIKE 's3://%/raw/%.json.gz'
-- => 6
