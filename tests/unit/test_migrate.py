"""``lake migrate``'s pure parts: the old layout, the old columns, which files register as they are."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake.curate.migrate import (
    MigrationReport,
    OldFile,
    TableReport,
    Unregistered,
    classify,
    compatible,
    ddb_of,
    layout,
    old_columns,
    old_history_name,
)
from lake.curate.names import history_table


def footer(table: pa.Table) -> pq.FileMetaData:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return pq.read_metadata(pa.BufferReader(sink.getvalue()))


def old_file(table: pa.Table, **partition: str) -> OldFile:
    return OldFile("k", "s3://b/k", 1, dict(partition), footer(table))


def test_layout_of_the_old_keys() -> None:
    keys = ["table_name", "dt"]
    assert layout("table_name=Orders.v2/dt=2024-05-01/shard-0001.parquet", keys) == {
        "table_name": "Orders.v2", "dt": "2024-05-01"}
    assert layout("table_name=a%3Db/dt=2024-05-01/f", keys) == {"table_name": "a=b", "dt": "2024-05-01"}
    # not data: the location's own marker, directory markers, Iceberg's files, hidden files
    for skipped in ("", "table_name=a/", "metadata/00000-x.metadata.json", "data/table_name=a/dt=x/f.parquet",
                    "table_name=a/dt=2024-05-01/_SUCCESS", "table_name=a/dt=2024-05-01/.f.crc"):
        assert layout(skipped, keys) is None, skipped
    for wrong in ("stray.parquet", "dt=2024-05-01/table_name=a/f.parquet", "table_name=a/f.parquet",
                  "table_name=/dt=2024-05-01/f.parquet", "table_name=a/dt=2024-05-01/x/f.parquet"):
        assert isinstance(layout(wrong, keys), str), wrong


def test_old_history_names_and_new_ones() -> None:
    assert old_history_name("orders") == history_table("orders") == "orders_history"
    assert old_history_name("Orders") == old_history_name("orders")  # the collision the old names had
    assert history_table("Orders") != history_table("orders")
    assert old_history_name("foo.bar-baz") == "foo_bar_baz_history"


def test_old_columns_from_parameters_comments_or_names() -> None:
    definition = {"StorageDescriptor": {"Columns": [
        {"Name": "event_id", "Type": "string"},
        {"Name": "status", "Type": "string", "Comment": "attribute Status (S)",
         "Parameters": {"dynamodb.attribute": "Status", "dynamodb.type": "S"}},
        {"Name": "amount", "Type": "decimal(38,18)", "Comment": "attribute amount (N)"},
        {"Name": "note", "Type": "string", "Comment": "attribute a (weird) name (mixed)"},
        {"Name": "attr_key", "Type": "string"},
        {"Name": "plain", "Type": "bigint"},
    ]}}
    cols = old_columns(definition)
    assert "event_id" not in cols
    assert (cols["status"].attribute, cols["status"].ddb) == ("Status", "S")
    assert (cols["amount"].attribute, cols["amount"].ddb, cols["amount"].glue) == ("amount", "N", "decimal(38,18)")
    assert (cols["note"].attribute, cols["note"].ddb) == ("a (weird) name", "mixed")
    assert (cols["attr_key"].attribute, cols["plain"].attribute, cols["plain"].ddb) == ("key", "plain", "")


@pytest.mark.parametrize(("t", "ddb"), [
    (pa.int64(), "N"), (pa.decimal128(38, 18), "N"), (pa.bool_(), "BOOL"), (pa.binary(), "B"),
    (pa.list_(pa.string()), "SS"), (pa.list_(pa.int64()), "NS"), (pa.list_(pa.binary()), "BS"), (pa.string(), ""),
])
def test_ddb_of(t: pa.DataType, ddb: str) -> None:
    assert ddb_of(t) == ddb


def test_compatible_types() -> None:
    assert compatible(pa.string(), pa.large_string())
    assert compatible(pa.list_(pa.field("item", pa.string())), pa.list_(pa.field("element", pa.large_string())))
    assert compatible(pa.int32(), pa.int64()) and compatible(pa.float32(), pa.float64())
    assert compatible(pa.timestamp("us", "UTC"), pa.timestamp("us", "+00:00"))
    assert not compatible(pa.timestamp("us"), pa.timestamp("us", "UTC"))
    assert not compatible(pa.timestamp("ns", "UTC"), pa.timestamp("us", "UTC"))
    assert not compatible(pa.int64(), pa.decimal128(38, 18))  # not an Iceberg promotion
    assert not compatible(pa.int64(), pa.string())


def test_classify_says_why_a_file_needs_a_rewrite() -> None:
    types = {"event_id": pa.string(), "qty": pa.decimal128(38, 18), "dt": pa.string()}
    good = pa.table({"event_id": ["a"], "qty": pa.array([1], pa.decimal128(38, 18))})
    assert classify(old_file(good, dt="2024-05-01"), types) == ""
    stale = pa.table({"event_id": ["a"], "qty": pa.array([1], pa.int64())})
    assert classify(old_file(stale, dt="2024-05-01"), types) == \
        "its column qty is bigint, the table's is decimal(38,18)"
    extra = pa.table({"event_id": ["a"], "other": [1]})
    assert classify(old_file(extra, dt="2024-05-01"), types) == "its column other is not in the table"
    assert classify(old_file(good, dt="2024-05-01"), types, {"qty": "held elsewhere"}) == "held elsewhere"
    # a partition column inside the file: fine when it holds the path's value, a rewrite otherwise
    inside = pa.table({"event_id": ["a", "b"], "dt": ["2024-05-01", "2024-05-01"]})
    assert classify(old_file(inside, dt="2024-05-01"), types) == ""
    assert "differs from its path" in classify(old_file(inside, dt="2024-05-02"), types)
    mixed = pa.table({"event_id": ["a", "b"], "dt": ["2024-05-01", "2024-05-02"]})
    assert "differs from its path" in classify(old_file(mixed, dt="2024-05-01"), types)


def test_report_ok_and_changed() -> None:
    done = TableReport("changes", "changes", status="already migrated")
    assert MigrationReport(False, [done]).ok and not MigrationReport(False, [done]).changed
    refused = TableReport("orders_history", "history", status="migrated", registered=3,
                          unregistered=[Unregistered("k", "not a Parquet file")])
    report = MigrationReport(False, [done, refused])
    assert not report.ok and report.changed
    assert report.to_dict()["tables"][1]["unregistered"] == [{"key": "k", "reason": "not a Parquet file"}]
    assert not MigrationReport(True, [refused]).changed
