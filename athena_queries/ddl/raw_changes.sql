-- raw_changes: the raw zone (issue 3), one row per archived DynamoDB stream record.
-- Rendered by lake.archive.ddl.render_ddl: the raw_location and tables placeholders come
-- from the settings; the table, dt and hour placeholders of storage.location.template are
-- Athena's own (partition projection) and are left as they are.
--
-- Partition `table` uses an enum projection over the configured source tables: `injected`
-- would make every query name its tables in WHERE (an audit trail across all tables could
-- not be written), and the list is known whenever the DDL is rendered; adding a source
-- table means re-rendering and re-applying this statement (`lake up` does). Athena advises
-- enum projections of at most a few dozen values, far above a lake's source-table count.
--
-- Images (Keys, NewImage, OldImage) are `string` columns holding the DynamoDB JSON text:
-- their shape differs per table and item, and N values stay exact 38-digit strings. The
-- OpenX SerDe renders an object mapped to a string column as its JSON text (Trino's
-- implementation, lib/trino-hive-formats .../line/openxjson/README.md: "Text types support
-- all JSON values by rendering the value as canonical JSON"; also rcongiu/Hive-JSON-Serde
-- issue #70, a nested object read through a string column). Read them with json_extract.
-- Key names are matched case-insensitively (OpenX default), hence lower-case columns.
CREATE EXTERNAL TABLE IF NOT EXISTS raw_changes (
  lake struct<
    `table`: string,
    key: string,
    seq: string,
    t: bigint,
    event: string,
    id: string,
    ttl: boolean
  >,
  record struct<
    eventid: string,
    eventname: string,
    eventversion: string,
    eventsource: string,
    awsregion: string,
    eventsourcearn: string,
    useridentity: struct<type: string, principalid: string>,
    dynamodb: struct<
      approximatecreationdatetime: double,
      keys: string,
      newimage: string,
      oldimage: string,
      sequencenumber: string,
      sizebytes: bigint,
      streamviewtype: string
    >
  >
)
PARTITIONED BY (`table` string, dt string, hour int)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '${raw_location}'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.table.type' = 'enum',
  'projection.table.values' = '${tables}',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2012-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'projection.hour.type' = 'integer',
  'projection.hour.range' = '0,23',
  'projection.hour.digits' = '2',
  'storage.location.template' = '${raw_location}table=${table}/dt=${dt}/hour=${hour}/',
  'classification' = 'json',
  'compressionType' = 'gzip'
)
