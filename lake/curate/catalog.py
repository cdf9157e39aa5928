"""The curate stage's tables in the catalog: their definitions, schema evolution, partitions.

What a curated table *is* (columns with their DynamoDB attribute and type, Parquet SerDe,
location) is decided here; the Glue calls go through the catalog door
(:class:`lake.aws.catalog.GlueCatalog`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from lake.aws.catalog import GlueCatalog
from lake.curate.columns import ColumnType
from lake.curate.tables import (
    CHANGES_GLUE_TYPES,
    CHANGES_PARTITIONS,
    HISTORY_META_GLUE,
    HistoryColumn,
    HistorySchema,
)
from lake.settings import Settings

log = logging.getLogger(__name__)

CHANGES_TABLE = "changes"
ATTRIBUTE = "dynamodb.attribute"
DDB_TYPE = "dynamodb.type"

_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                  "Parameters": {"serialization.format": "1"}},
}


def table_location(settings: Settings, name: str) -> str:
    return f"s3://{settings.bucket}/{settings.zone_prefix('curated')}{name}/"


def _table_input(settings: Settings, name: str, columns: list[dict[str, Any]],
                 partitions: Iterable[str], description: str) -> dict[str, Any]:
    return {
        "Name": name,
        "Description": description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "ZSTD"},
        "PartitionKeys": [{"Name": p, "Type": "string"} for p in partitions],
        "StorageDescriptor": {"Columns": columns, "Location": table_location(settings, name), **_PARQUET},
    }


def ensure_changes_table(catalog: GlueCatalog, settings: Settings) -> None:
    """Create the ``changes`` table (fixed schema, docs/CONTRACTS.md) unless it exists."""
    if catalog.get_table(CHANGES_TABLE) is not None:
        return
    cols = [{"Name": n, "Type": t} for n, t in CHANGES_GLUE_TYPES.items()]
    catalog.put_table(_table_input(settings, CHANGES_TABLE, cols, CHANGES_PARTITIONS, "one row per DynamoDB change"),
                   exists=False)


def history_schema(catalog: GlueCatalog, name: str) -> HistorySchema | None:
    """The attribute columns of a history table as registered, or None if it does not exist."""
    table = catalog.get_table(name)
    if table is None:
        return None
    schema = HistorySchema()
    for col in table.get("StorageDescriptor", {}).get("Columns", []):
        if col["Name"] in HISTORY_META_GLUE:
            continue
        params = col.get("Parameters") or {}
        attribute = params.get(ATTRIBUTE) or col["Name"]
        ddb = params.get(DDB_TYPE) or "mixed"
        schema.columns[attribute] = HistoryColumn(col["Name"], attribute, ColumnType(col["Type"], ddb))
    return schema


def put_history_table(catalog: GlueCatalog, settings: Settings, name: str, source_table: str, schema: HistorySchema,
                      exists: bool) -> None:
    """Create or update ``<table>_history`` with the metadata columns and ``schema``."""
    cols: list[dict[str, Any]] = [{"Name": n, "Type": t} for n, t in HISTORY_META_GLUE.items()]
    for c in schema.columns.values():
        cols.append({"Name": c.name, "Type": c.type.glue, "Comment": f"attribute {c.attribute} ({c.type.ddb})",
                     "Parameters": {ATTRIBUTE: c.attribute, DDB_TYPE: c.type.ddb}})
    ti = _table_input(settings, name, cols, ("dt",), f"typed change history of DynamoDB table {source_table}")
    catalog.put_table(ti, exists=exists)


def add_partitions(catalog: GlueCatalog, settings: Settings, table: str, partitions: list[list[str]]) -> None:
    """Register hive partitions (values in partition-key order); existing ones are fine."""
    loc = table_location(settings, table)
    keys = ("table_name", "dt") if table == CHANGES_TABLE else ("dt",)
    catalog.add_partitions(table, [{
        "Values": values,
        "StorageDescriptor": {"Columns": [], "Location": loc + "/".join(
            f"{k}={v}" for k, v in zip(keys, values, strict=True)) + "/", **_PARQUET},
    } for values in partitions])
