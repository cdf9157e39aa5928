"""The catalog door (lake.aws.catalog): the one Glue ↔ Arrow type map, and Glue calls whose
errors are translated (botocore's only). Glue answers come from botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pyarrow as pa
import pytest
from botocore.stub import ANY, Stubber

from lake.aws.catalog import CatalogTable, GlueCatalog, arrow_type, glue_type
from lake.curate import columns
from lake.curate.tables import CHANGES_GLUE_TYPES, HISTORY_META_GLUE
from lake.errors import LakeError, NotFoundError, TerminalError, TransientError

DB = "lake_db"


@pytest.mark.parametrize(("text", "expected"), [
    ("string", pa.string()), ("varchar(10)", pa.string()), ("char(3)", pa.string()),
    ("bigint", pa.int64()), ("int", pa.int32()), ("integer", pa.int32()), ("smallint", pa.int16()),
    ("tinyint", pa.int8()), ("boolean", pa.bool_()), ("double", pa.float64()), ("float", pa.float32()),
    ("real", pa.float32()), ("date", pa.date32()), ("binary", pa.binary()),
    ("timestamp", pa.timestamp("us", "UTC")),  # docs/adr/0002: UTC microseconds
    ("decimal", pa.decimal128(10, 0)), ("decimal(38,18)", pa.decimal128(38, 18)),
    ("DECIMAL(38, 2)", pa.decimal128(38, 2)),
    ("array<string>", pa.list_(pa.string())), ("array<decimal(38,0)>", pa.list_(pa.decimal128(38, 0))),
    ("map<string,array<int>>", pa.map_(pa.string(), pa.list_(pa.int32()))),
    ("array<struct<a:int, `my col`:array<binary>>>",
     pa.list_(pa.struct([("a", pa.int32()), ("my col", pa.list_(pa.binary()))]))),
])
def test_glue_types_to_arrow(text: str, expected: pa.DataType) -> None:
    assert arrow_type(text) == expected


@pytest.mark.parametrize("text", ["foo", "int extra", "array<int>>", "uniontype<int,string>", "", "json"])
def test_unknown_glue_types_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError):
        arrow_type(text)


@pytest.mark.parametrize("text", [
    "string", "bigint", "int", "boolean", "double", "binary", "date", "timestamp", "decimal(38,18)",
    "array<string>", "array<decimal(38,0)>", "map<string,bigint>", "struct<a:int,b:array<string>>",
])
def test_arrow_to_glue_is_the_inverse(text: str) -> None:
    assert glue_type(arrow_type(text)) == text


def test_one_map_for_the_types_curate_writes() -> None:
    # lake.curate.columns still has its own fast arrow_type for the few types it writes; it must agree
    curated = {*CHANGES_GLUE_TYPES.values(), *HISTORY_META_GLUE.values(), "binary", "double", columns.DECIMAL_TYPE,
               "decimal(38,0)", "array<binary>", "array<decimal(38,18)>", "array<bigint>"}
    assert {t: columns.arrow_type(t) for t in curated} == {t: arrow_type(t) for t in curated}


def test_catalog_table_from_glue() -> None:
    table = CatalogTable.from_glue({
        "Name": "changes", "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {
            "Columns": [{"Name": "event_time", "Type": "timestamp"}, {"Name": "n", "Type": "decimal(38,18)"}],
            "Location": "s3://b/curated/changes/",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}},
    })
    assert (table.format, table.location, table.is_view) == ("parquet", "s3://b/curated/changes/", False)
    assert table.arrow_schema() == pa.schema([("event_time", pa.timestamp("us", "UTC")),
                                              ("n", pa.decimal128(38, 18))])
    assert table.partition_schema() == pa.schema([("dt", pa.string())])
    assert CatalogTable.from_glue({"Name": "v", "TableType": "VIRTUAL_VIEW"}).is_view


# -- Glue calls ------------------------------------------------------------------------------

@pytest.fixture
def glue() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("glue", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_a_missing_table_is_none_a_missing_database_not_found(glue: tuple[Any, Stubber]) -> None:
    client, stub = glue
    stub.add_client_error("get_table", service_error_code="EntityNotFoundException", http_status_code=400)
    stub.add_client_error("get_tables", service_error_code="EntityNotFoundException", http_status_code=400)
    door = GlueCatalog(client, DB)
    assert door.get_table("nope") is None
    with pytest.raises(NotFoundError, match=DB):
        door.list_tables()


def test_throttling_is_transient_and_refusals_terminal(glue: tuple[Any, Stubber]) -> None:
    client, stub = glue
    stub.add_client_error("get_table", service_error_code="ThrottlingException", http_status_code=400)
    stub.add_client_error("update_table", service_error_code="AccessDeniedException", http_status_code=400)
    door = GlueCatalog(client, DB)
    with pytest.raises(TransientError):
        door.get_table("t")
    with pytest.raises(TerminalError):
        door.put_table({"Name": "t"}, exists=True)


def test_a_bug_inside_the_glue_call_propagates_unchanged() -> None:
    class Buggy:
        def get_table(self, **_: Any) -> Any:
            raise TypeError("bad argument")

    with pytest.raises(TypeError) as info:
        GlueCatalog(Buggy(), DB).get_table("t")
    assert not isinstance(info.value, LakeError)


def test_put_table_creates_or_updates(glue: tuple[Any, Stubber]) -> None:
    client, stub = glue
    ti = {"Name": "t", "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "string"}]}}
    stub.add_client_error("get_table", service_error_code="EntityNotFoundException", http_status_code=400)
    stub.add_response("create_table", {}, {"DatabaseName": DB, "TableInput": ti})
    stub.add_client_error("create_table", service_error_code="AlreadyExistsException", http_status_code=400)
    stub.add_response("update_table", {}, {"DatabaseName": DB, "TableInput": ti})
    door = GlueCatalog(client, DB)
    door.put_table(ti)  # looked up: absent, so created
    door.put_table(ti, exists=False)  # a concurrent writer created it first: fine
    door.put_table(ti, exists=True)


def test_add_partitions_batches_and_tolerates_existing_ones(glue: tuple[Any, Stubber]) -> None:
    client, stub = glue
    parts = [{"Values": [f"2024-05-{d:02d}"]} for d in range(1, 31)] * 5  # 150: two calls
    stub.add_response("batch_create_partition", {"Errors": [
        {"PartitionValues": ["2024-05-01"], "ErrorDetail": {"ErrorCode": "AlreadyExistsException"}}]},
        {"DatabaseName": DB, "TableName": "t", "PartitionInputList": parts[:100]})
    stub.add_response("batch_create_partition", {"Errors": [
        {"PartitionValues": ["2024-05-02"], "ErrorDetail": {"ErrorCode": "ResourceNumberLimitExceededException"}}]},
        {"DatabaseName": DB, "TableName": "t", "PartitionInputList": ANY})
    with pytest.raises(TerminalError, match="ResourceNumberLimitExceeded"):
        GlueCatalog(client, DB).add_partitions("t", parts)


def test_ensure_database(glue: tuple[Any, Stubber]) -> None:
    client, stub = glue
    stub.add_response("get_database", {"Database": {"Name": DB}}, {"Name": DB})
    stub.add_client_error("get_database", service_error_code="EntityNotFoundException", http_status_code=400)
    stub.add_response("create_database", {}, {"DatabaseInput": {"Name": DB, "Description": "lake"}})
    door = GlueCatalog(client, DB)
    assert door.ensure_database("lake") is False
    assert door.ensure_database("lake") is True


def test_list_tables(glue: tuple[Any, Stubber]) -> None:
    client, stub = glue
    stub.add_response("get_tables", {"TableList": [
        {"Name": "changes", "StorageDescriptor": {"Location": "s3://b/c/"}},
        {"Name": "v", "TableType": "VIRTUAL_VIEW"},
        {"Name": "h", "Parameters": {"table_type": "ICEBERG"}, "StorageDescriptor": {"Location": "s3://b/h"}}]},
        {"DatabaseName": DB})
    door = GlueCatalog(client, DB)
    got = [(t.name, t.is_view, t.format) for t in door.list_tables()]
    assert got == [("changes", False, "unknown"), ("v", True, "unknown"), ("h", False, "iceberg")]


def test_the_local_engine_shows_athena_zone_less_timestamps() -> None:
    from lake.query.local import athena_schema

    utc = pa.timestamp("us", "UTC")
    schema = pa.schema([("t", utc), ("ts", pa.list_(utc)), ("s", pa.struct([("t", utc)])), ("n", pa.int64())])
    assert athena_schema(schema) == pa.schema([("t", pa.timestamp("us")), ("ts", pa.list_(pa.timestamp("us"))),
                                               ("s", pa.struct([("t", pa.timestamp("us"))])), ("n", pa.int64())])
