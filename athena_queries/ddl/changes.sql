-- Curated zone: one row per change (docs/CONTRACTS.md, "Curated zone").
-- lake.curate registers this table (and its partitions) in Glue itself; this DDL is the
-- same table for an Athena-only setup, with partition projection so no crawler or
-- MSCK REPAIR is needed: table_name is an enum of the configured source tables and dt a
-- date range up to today. Placeholders are filled by lake.query.sqlfiles.render.
CREATE EXTERNAL TABLE IF NOT EXISTS changes (
  event_id string,
  event_name string,
  event_time timestamp,
  sequence_number string,
  shard_id string,
  source_sequence_number string,
  keys string,
  key string,
  old_image string,
  new_image string,
  changed_attributes array<string>,
  is_ttl_delete boolean,
  user_identity string,
  size_bytes bigint
)
PARTITIONED BY (table_name string, dt string)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'
LOCATION '${curated_url}changes/'
TBLPROPERTIES (
  'parquet.compression' = 'SNAPPY',
  'projection.enabled' = 'true',
  'projection.table_name.type' = 'enum',
  'projection.table_name.values' = '${source_tables}',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2020-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = '${curated_url}changes/table_name=${table_name}/dt=${dt}/'
)
