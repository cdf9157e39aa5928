"""Curate on the embedded AWS: both input formats, type round trip, schema evolution, readers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import orjson
import pytest

from lake.aws.catalog import IcebergTables
from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket, ensure_glue_database, ensure_kinesis
from lake.curate import curate, curated_summary
from lake.curate.columns import number_text
from lake.curate.evolve import ATTRIBUTE_PROPERTY, DYNAMODB_TYPE_PROPERTY
from lake.fanout import publish
from lake.query.local import LocalEngine
from lake.settings import Settings
from tests.conftest import load_event
from tests.integration.test_fanout_kinesis import stream_record
from tests.kinesis_readback import read_stream

BIG = "12345678901234567890123456789012345678"  # 38 digits


@pytest.fixture
def lake(settings: Settings, clients: Clients) -> Settings:
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_kinesis(clients, settings.kinesis_stream, 2)
    ensure_glue_database(clients, settings.glue_database)
    return settings


@pytest.fixture
def wr(settings: Settings) -> Iterator[Any]:
    import awswrangler

    awswrangler.config.s3_endpoint_url = settings.endpoint_url
    awswrangler.config.glue_endpoint_url = settings.endpoint_url
    yield awswrangler
    awswrangler.config.reset()


def through_kinesis(settings: Settings, clients: Clients, records: list[dict]) -> dict[str, list[dict]]:
    before = {s: len(r) for s, r in read_stream(clients.kinesis, settings.kinesis_stream).items()}
    assert publish(settings, records, clients).failures == []
    after = read_stream(clients.kinesis, settings.kinesis_stream)
    return {s: r[before.get(s, 0):] for s, r in after.items() if r[before.get(s, 0):]}


def curate_all(settings: Settings, clients: Clients, shards: dict[str, list[dict]]) -> None:
    for recs in shards.values():
        res = curate(settings, recs, clients)
        assert res.failures == []


def scan(settings: Settings, clients: Clients, table: str) -> list[dict]:
    """Every row of a curated Iceberg table (pyiceberg's scan), by event id."""
    rows = IcebergTables(settings, clients).scan(table).to_pylist()
    return sorted(rows, key=lambda r: r["event_id"])


def read_history(settings: Settings, table: str) -> list[dict]:
    return scan(settings, Clients(settings), table)


def history_columns(settings: Settings, clients: Clients, table: str) -> dict[str, tuple[str, str]]:
    """column → (attribute, DynamoDB type), as the table's properties record them."""
    props = IcebergTables(settings, clients).load(table).properties
    return {k[len(ATTRIBUTE_PROPERTY):]: (v, props.get(DYNAMODB_TYPE_PROPERTY + k[len(ATTRIBUTE_PROPERTY):], ""))
            for k, v in props.items() if k.startswith(ATTRIBUTE_PROPERTY)}


def column_types(settings: Settings, clients: Clients, table: str) -> dict[str, str]:
    return {f.name: str(f.field_type) for f in IcebergTables(settings, clients).load(table).schema().fields}


ALL_TYPES = {
    "s": {"S": "héllo"}, "n_int": {"N": "-42"}, "n_big": {"N": BIG}, "n_dec": {"N": "3.25"},
    "b": {"B": base64.b64encode(b"\x00\xffbin").decode()}, "flag": {"BOOL": True},
    "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", BIG]}, "bs": {"BS": [base64.b64encode(b"\x01").decode()]},
    "m": {"M": {"deep": {"L": [{"N": "0.1"}, {"B": "AAE="}, {"SS": ["x"]}, {"NULL": True}]},
                "t": {"BOOL": False}}},
    "l": {"L": [{"S": "x"}, {"M": {"n": {"N": BIG}}}]},
    "nothing": {"NULL": True},
}


def to_dynamodb(row: dict, columns: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A history row back to DynamoDB typed values, by the columns' recorded DynamoDB types."""
    item: dict[str, Any] = {}
    for name, (attr, t) in columns.items():
        v = row.get(name)
        if v is None:
            continue
        if t == "N":
            item[attr] = {"N": number_text(v)}
        elif t == "NS":
            item[attr] = {"NS": [number_text(x) for x in v]}
        elif t == "B":
            item[attr] = {"B": base64.b64encode(v).decode()}
        elif t == "BS":
            item[attr] = {"BS": [base64.b64encode(x).decode() for x in v]}
        elif t in ("M", "L"):
            item[attr] = {t: orjson.loads(v)}
        else:
            item[attr] = {t: v}
    return item


def test_every_type_round_trips_through_kinesis_and_parquet(lake: Settings, clients: Clients) -> None:
    rec = stream_record(1, "T", new=ALL_TYPES, event="INSERT")
    curate_all(lake, clients, through_kinesis(lake, clients, [rec]))
    types = column_types(lake, clients, "orders_history")
    assert types["n_int"] == "long" and types["n_big"] == "decimal(38, 0)" and types["n_dec"] == "decimal(38, 18)"
    assert types["ns"] == "list<decimal(38, 0)>" and types["bs"] == "list<binary>" and types["m"] == "string"
    assert "nothing" not in types  # only ever NULL: no column yet; changes.new_image keeps it
    (row,) = read_history(lake, "orders_history")
    back = to_dynamodb(row, history_columns(lake, clients, "orders_history"))
    expected = {k: v for k, v in rec["dynamodb"]["NewImage"].items() if k != "nothing"}
    assert back == expected
    assert row["n_big"] == Decimal(BIG)
    # the changes table: plain JSON with exact numbers and the NULL attribute
    (ch,) = scan(lake, clients, "changes")
    assert f'"n_big":{BIG}' in ch["new_image"] and orjson.loads(ch["new_image"])["nothing"] is None
    assert ch["table_name"] == "orders" and ch["dt"] == "2023-11-14" and ch["event_name"] == "INSERT"
    assert ch["source_sequence_number"] == rec["dynamodb"]["SequenceNumber"]
    assert len(ch["sequence_number"]) == 64 and ch["key"] == "pk=T|sk=0"
    assert sorted(ch["changed_attributes"]) == sorted(rec["dynamodb"]["NewImage"])


def test_native_kinesis_data_streams_for_dynamodb_records(lake: Settings, clients: Clients) -> None:
    event = load_event("kinesis/kds_for_dynamodb_event.json")
    payloads = load_event("kinesis/kds_for_dynamodb_payloads.json")
    res = curate(lake, event["Records"], clients)
    assert res.failures == [] and res.rows == 3
    rows = scan(lake, clients, "changes")
    by_id = {r["event_id"]: r for r in rows}
    us = [int(r["event_time"].timestamp() * 1_000_000) for r in (by_id[p["eventID"]] for p in payloads)]
    assert abs(us[0] - 1721011165891550) <= 1  # MICROSECOND precision
    assert abs(us[1] - 1721011222526000) <= 1  # milliseconds when no precision is given
    removed = by_id[payloads[2]["eventID"]]
    assert removed["is_ttl_delete"] and removed["user_identity"] == "dynamodb.amazonaws.com"
    assert removed["source_sequence_number"] is None and removed["dt"] == "2024-07-16"
    assert by_id[payloads[1]["eventID"]]["changed_attributes"] == ["status"]
    hist = read_history(lake, "flight_history")
    assert [r["seats"] for r in hist] == [214, 214, 214]
    # redelivery of the same batch commits nothing: each change is in each table once
    again = curate(lake, event["Records"], clients)
    assert again.failures == [] and again.rows == 0 and again.duplicates == 3
    assert curated_summary(lake, clients).history_rows["flight_history"] == 3
    assert len(scan(lake, clients, "changes")) == 3


def data_files(settings: Settings, clients: Clients, table: str) -> dict[str, str]:
    """Each data file of a table's current snapshot → its S3 ETag (a rewrite changes both)."""
    t = IcebergTables(settings, clients).load(table)
    out = {}
    for task in t.scan().plan_files():
        bucket, _, key = task.file.file_path.removeprefix("s3://").partition("/")
        out[task.file.file_path] = clients.s3.head_object(Bucket=bucket, Key=key)["ETag"]
    return out


def test_schema_evolution_never_rewrites_a_data_file(lake: Settings, clients: Clients) -> None:
    first = [stream_record(i, f"K{i}", new={"qty": {"N": str(i)}, "price": {"N": "1.5"}, "cost": {"N": "10"}})
             for i in range(4)]
    curate_all(lake, clients, through_kinesis(lake, clients, first))
    types = column_types(lake, clients, "orders_history")
    assert types["qty"] == "long" and types["price"] == "decimal(38, 18)" and types["cost"] == "long"
    before = {t: data_files(lake, clients, t) for t in ("orders_history", "changes")}
    second = [stream_record(10, "K0", new={"qty": {"S": "lots"}, "price": {"N": "2.5"}, "cost": {"N": "10.25"},
                                           "colour": {"S": "red"}, "Event_ID": {"S": "clash"}}),
              stream_record(11, "K1", new={"price": {"N": "0.1234567890123456789"}, "cost": {"N": "7"}})]
    curate_all(lake, clients, through_kinesis(lake, clients, second))
    types = column_types(lake, clients, "orders_history")
    assert types["colour"] == "string"  # a new attribute: a new column
    # no column changed type; values another type holds went to siblings
    assert types["qty"] == "long" and types["qty__string"] == "string"
    assert types["price"] == "decimal(38, 18)" and types["price__decimal_19"] == "decimal(38, 19)"
    assert types["cost"] == "long" and types["cost__decimal"] == "decimal(38, 18)"
    assert history_columns(lake, clients, "orders_history")["attr_event_id"] == ("Event_ID", "S")
    assert history_columns(lake, clients, "orders_history")["cost__decimal"] == ("cost", "N")
    rows = read_history(lake, "orders_history")
    assert [r["qty"] for r in rows] == [0, 1, 2, 3, None, None]
    assert [r["qty__string"] for r in rows] == [None] * 4 + ["lots", None]
    assert [r["price"] for r in rows] == [Decimal("1.5")] * 4 + [Decimal("2.5"), None]
    assert rows[5]["price__decimal_19"] == Decimal("0.1234567890123456789")
    assert [r["cost"] for r in rows] == [10] * 4 + [None, 7]  # an integer still fits the bigint column
    assert rows[4]["cost__decimal"] == Decimal("10.25")
    # every data file of the first batch is still there, unchanged: nothing was rewritten
    for table, files in before.items():
        after = data_files(lake, clients, table)
        assert {f: after.get(f) for f in files} == files
        assert len(after) > len(files)


def test_three_readers_one_answer(lake: Settings, clients: Clients) -> None:
    recs = [stream_record(i, f"K{i % 3}", new={"v": {"N": f"{i}.25"}, "tag": {"S": f"t{i}"}}) for i in range(9)]
    curate_all(lake, clients, through_kinesis(lake, clients, recs[:5]))
    late = [*recs[5:], stream_record(20, "X", new={"n": {"N": "1"}})]
    curate_all(lake, clients, through_kinesis(lake, clients, late))
    engine = LocalEngine(lake, clients)
    for table in ("orders_history", "changes"):
        arrow = IcebergTables(lake, clients).scan(table)
        by_pyiceberg = sorted(arrow.column("event_id").to_pylist())
        by_duckdb = [r[0] for r in duckdb.connect().execute("select event_id from arrow order by 1").fetchall()]
        by_lake_query = engine.query(f"SELECT event_id FROM {table} ORDER BY 1").column(0).to_pylist()
        assert by_pyiceberg == by_duckdb == by_lake_query and len(by_pyiceberg) == 10
    got = engine.query("SELECT tag, v FROM orders_history WHERE v IS NOT NULL ORDER BY event_id").to_pylist()
    assert got == [{"tag": f"t{i}", "v": Decimal(f"{i}.25")} for i in range(9)]


def test_bad_records_are_quarantined_with_coordinates_and_duplicates_dropped(
        lake: Settings, clients: Clients) -> None:
    good = through_kinesis(lake, clients, [stream_record(i, "A") for i in range(3)])
    (recs,) = good.values()
    shard = next(iter(good))

    def kinesis_record(data: bytes, seq: str) -> dict:
        return {**recs[0], "kinesis": {**recs[0]["kinesis"], "data": base64.b64encode(data).decode(),
                                       "sequenceNumber": seq}, "eventID": f"{shard}:{seq}"}

    batch = [*recs, recs[1], kinesis_record(b"not json", "999991"),
             kinesis_record(orjson.dumps({"hello": "world"}), "999992")]
    res = curate(lake, batch, clients)
    assert res.failures == [] and res.rows == 3 and res.duplicates == 1 and res.quarantined == 2
    objs = clients.s3.list_objects_v2(Bucket=lake.bucket, Prefix="quarantine/stage=curate/")["Contents"]
    bodies = [orjson.loads(clients.s3.get_object(Bucket=lake.bucket, Key=o["Key"])["Body"].read())
              for o in objs]
    assert sorted(b["coordinates"]["sequence_number"] for b in bodies) == ["999991", "999992"]
    assert all(b["coordinates"]["shard_id"] == shard and b["reason"] for b in bodies)
    assert len(scan(lake, clients, "changes")) == 3 and len(scan(lake, clients, "orders_history")) == 3


def test_claim_checks_are_resolved_by_the_consumer(lake: Settings, clients: Clients) -> None:
    big = stream_record(1, "BIG", new={"blob": {"S": "y" * 1_100_000}})
    curate_all(lake, clients, through_kinesis(lake, clients, [big]))
    (row,) = read_history(lake, "orders_history")
    assert len(row["blob"]) == 1_100_000 and row["event_id"] == "ev-000001"


def test_storage_errors_become_batch_item_failures(lake: Settings, clients: Clients) -> None:
    from lambdas.parquet_consumer import lambda_handler

    shards = through_kinesis(lake, clients, [stream_record(i, "A") for i in range(2)])
    (recs,) = shards.values()
    def throttled(**_: Any) -> None:
        error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        raise clients.client("glue", one_attempt=True).exceptions.ThrottlingException({"Error": error}, "GetTable")

    clients.client("glue", one_attempt=True).meta.events.register("before-call.glue.GetTable", throttled)
    try:
        res = curate(lake, recs, clients)
    finally:
        clients.client("glue", one_attempt=True).meta.events.unregister("before-call.glue.GetTable", throttled)
    assert sorted(res.failures) == sorted(r["kinesis"]["sequenceNumber"] for r in recs)
    assert lambda_handler({"Records": recs}) == {"batchItemFailures": []}
    assert len(scan(lake, clients, "changes")) == 2


def test_large_batches_take_the_columnar_path_and_fall_back_for_bad_records(
        lake: Settings, clients: Clients, caplog: pytest.LogCaptureFixture) -> None:
    from lake.curate.consumer import COLUMNAR_MIN_RECORDS

    n = COLUMNAR_MIN_RECORDS + 6
    recs = [stream_record(i, f"K{i % 7}", new={"v": {"N": f"{i}.5"}, "m": {"M": {"a": {"S": "x"}}}},
                          old={"v": {"N": "1"}}) for i in range(n)]
    recs.append(stream_record(n, "BIG", new={"blob": {"S": "y" * 1_100_000}}))  # a claim check
    shard = [r for rs in through_kinesis(lake, clients, recs).values() for r in rs]
    with caplog.at_level("INFO", logger="lake.curate.consumer"):
        res = curate(lake, shard, clients)
    assert res.failures == [] and res.rows == n + 1 and res.quarantined == 0
    assert "per-record path" not in caplog.text  # the columnar path took it, claim check included
    hist = read_history(lake, "orders_history")
    assert [r["v"] for r in hist[:3]] == [Decimal("0.5"), Decimal("1.5"), Decimal("2.5")]
    assert len(hist[-1]["blob"]) == 1_100_000 and orjson.loads(hist[0]["m"]) == {"a": {"S": "x"}}
    # one undecodable record: the batch takes the per-record path, which quarantines it
    bad = {**shard[0], "kinesis": {**shard[0]["kinesis"], "data": base64.b64encode(b"{oops").decode(),
                                   "sequenceNumber": "999999"}}
    with caplog.at_level("INFO", logger="lake.curate.consumer"):
        again = curate(lake, [*shard, bad], clients)
    assert again.failures == [] and again.quarantined == 1
    assert "per-record path" in caplog.text
    assert again.rows == 0 and again.duplicates == n + 1  # all there already: nothing committed twice
    assert len(read_history(lake, "orders_history")) == n + 1
