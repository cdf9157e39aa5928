-- Curated zone: one row per change, an Apache Iceberg table (docs/CONTRACTS.md, "Curated
-- zone"; docs/adr/0003). lake.curate creates it in Glue itself (through pyiceberg) on its
-- first commit; this DDL is the same table for an Athena-only setup. Athena writes Iceberg
-- tables at the location it is given; partitions are Iceberg's (identity on table_name
-- and dt), so there is no partition to register, crawl or repair, and a filter on dt
-- prunes files. Placeholders are filled by lake.query.sqlfiles.render.
CREATE TABLE IF NOT EXISTS changes (
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
  size_bytes bigint,
  table_name string,
  dt string
)
PARTITIONED BY (table_name, dt)
LOCATION '${curated_url}changes'
TBLPROPERTIES (
  'table_type' = 'ICEBERG',
  'format' = 'parquet',
  'write_compression' = 'zstd',
  'optimize_rewrite_delete_file_threshold' = '10'
)
