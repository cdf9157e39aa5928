"""The Iceberg curated zone's promises on the embedded AWS (docs/adr/0003): each change once
whatever the redelivery, many writers, one bad record one quarantine, names apart, time travel."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import orjson
import pytest

from lake.aws.catalog import Append, IcebergTables
from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket, ensure_glue_database
from lake.curate import curate
from lake.curate.names import history_table
from lake.fanout.wire import envelope
from lake.query.local import LocalEngine
from lake.records import partition_key, table_from_arn
from lake.settings import Settings
from tests.integration.test_fanout_kinesis import stream_record
from tests.integration.test_iceberg_tables import snapshot_summaries


@pytest.fixture
def lake(settings: Settings, clients: Clients) -> Settings:
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_glue_database(clients, settings.glue_database)
    return settings


def kinesis(records: list[dict[str, Any]], shard: str = "shardId-000000000000", first: int = 1) -> list[dict]:
    """Lambda Kinesis event records of ``records`` as the fan-out puts them, on one shard."""
    out = []
    for i, rec in enumerate(records):
        table = table_from_arn(rec["eventSourceARN"])
        seq = f"{49_000_000_000 + first + i:056d}"
        out.append({"kinesis": {"kinesisSchemaVersion": "1.0", "sequenceNumber": seq,
                                "partitionKey": partition_key(table, rec["dynamodb"]["Keys"]),
                                "data": base64.b64encode(envelope(rec, table)).decode(),
                                "approximateArrivalTimestamp": 1.7e9},
                    "eventSource": "aws:kinesis", "eventID": f"{shard}:{seq}", "eventName": "aws:kinesis:record",
                    "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/lake-changes"})
    return out


def rows(settings: Settings, clients: Clients, table: str) -> list[dict[str, Any]]:
    return IcebergTables(settings, clients).scan(table).to_pylist()


def event_ids(settings: Settings, clients: Clients, table: str) -> list[str]:
    return sorted(r["event_id"] for r in rows(settings, clients, table))


def test_any_redelivery_leaves_each_change_once(lake: Settings, clients: Clients) -> None:
    changes = [stream_record(i, f"K{i % 5}", new={"n": {"N": str(i)}}) for i in range(30)]
    batch = kinesis(changes)
    assert curate(lake, batch[:12], clients).failures == []
    # the same batch again, then shifted boundaries (bisect / a partial-failure retry), then all
    for redelivery in (batch[:12], batch[5:20], batch[8:], batch):
        assert curate(lake, redelivery, clients).failures == []
    want = sorted(r["eventID"] for r in changes)
    assert event_ids(lake, clients, "changes") == want
    assert event_ids(lake, clients, "orders_history") == want
    # the same changes put on Kinesis a second time (a fan-out retry, a replay into the lake's
    # own stream): other Kinesis sequence numbers, other shard, same changes
    again = curate(lake, kinesis(changes, shard="shardId-000000000003", first=900), clients)
    assert again.rows == 0 and again.duplicates == 30
    assert event_ids(lake, clients, "changes") == want


def test_each_commit_records_its_shard_and_sequence_range(lake: Settings, clients: Clients) -> None:
    batch = kinesis([stream_record(i, "K") for i in range(4)], first=10)
    curate(lake, batch, clients)
    (summary,) = snapshot_summaries(IcebergTables(lake, clients).load("orders_history"))
    seqs = [r["kinesis"]["sequenceNumber"] for r in batch]
    assert summary["lake.shard-id"] == "shardId-000000000000"
    assert (summary["lake.first-sequence"], summary["lake.last-sequence"]) == (seqs[0].zfill(64), seqs[-1].zfill(64))
    assert summary["lake.rows"] == "4" and summary["lake.duplicates-dropped"] == "0"


def test_four_concurrent_writers_lose_no_row_and_no_column(lake: Settings, clients: Clients) -> None:
    # four shards' consumers at once (ON_DEMAND Kinesis on AWS), each bringing its own attribute
    errors: list[BaseException] = []
    per_shard = 3

    def consumer(w: int) -> None:
        own = Clients(lake)
        try:
            for b in range(per_shard):
                recs = [stream_record(1000 * w + 10 * b + i, f"W{w}-{i}", new={f"attr_{w}": {"N": str(w)}})
                        for i in range(5)]
                res = curate(lake, kinesis(recs, shard=f"shardId-00000000000{w}", first=100 * b), own)
                assert res.failures == [], res
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=consumer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history = rows(lake, clients, "orders_history")
    assert len(history) == 4 * per_shard * 5 and len(rows(lake, clients, "changes")) == 4 * per_shard * 5
    for w in range(4):
        mine = [r for r in history if r["key"].startswith(f"pk=W{w}-")]
        assert len(mine) == per_shard * 5 and all(r[f"attr_{w}"] == w for r in mine)


@pytest.mark.parametrize("bad_value", [{"N": ".5"}, {"Q": "x"}, {"N": "12abc"}],
                         ids=["n-dot5", "unknown-tag", "n-text"])
def test_one_bad_value_quarantines_exactly_its_record_with_its_body(
        lake: Settings, clients: Clients, bad_value: dict[str, str]) -> None:
    good = [stream_record(i, f"K{i}", new={"v": {"N": str(i)}}) for i in range(100)]
    bad = stream_record(500, "BAD", new={"v": bad_value})
    batch = kinesis([*good[:40], bad, *good[40:]])
    res = curate(lake, batch, clients)
    assert res.failures == [] and res.quarantined == 1 and res.rows == 100
    assert len(rows(lake, clients, "orders_history")) == 100
    store = clients.store(lake.bucket)
    (key,) = list(store.list("quarantine/stage=curate/"))
    body = orjson.loads(store.get(key))
    assert body["coordinates"]["sequence_number"] == batch[40]["kinesis"]["sequenceNumber"]
    assert body["reason"]
    assert body["record"]["record"] == bad  # the whole stream record (in its fan-out envelope), not only its id


def test_tables_that_differ_only_in_case_or_punctuation_stay_apart(lake: Settings, clients: Clients) -> None:
    sources = ["orders", "Orders", "foo.bar", "foo_bar"]
    recs = [stream_record(i, "K", table=t, new={"src": {"S": t}}) for i, t in enumerate(sources)]
    assert curate(lake, kinesis(recs), clients).failures == []
    names = {t: history_table(t) for t in sources}
    assert len(set(names.values())) == 4
    for t, name in names.items():
        (row,) = rows(lake, clients, name)
        assert row["src"] == t
    tables = IcebergTables(lake, clients)
    assert tables.load(names["Orders"]).properties["lake.source-table"] == "Orders"
    by_source = {r["table_name"]: r for r in rows(lake, clients, "changes")}
    assert sorted(by_source) == sorted(sources)


def test_time_travel_returns_the_earlier_state(lake: Settings, clients: Clients) -> None:
    first = [stream_record(i, f"K{i}", new={"status": {"S": "NEW"}}) for i in range(3)]
    curate(lake, kinesis(first), clients)
    time.sleep(0.02)
    between = time.time()
    time.sleep(0.02)
    later = [stream_record(10 + i, f"K{i}", new={"status": {"S": "PAID"}}) for i in range(3)]
    curate(lake, kinesis(later, first=50), clients)
    engine = LocalEngine(lake, clients)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(between)) + f".{int(between % 1 * 1000):03d} UTC"
    sql = ("SELECT count(*) AS n FROM orders_history FOR TIMESTAMP AS OF TIMESTAMP '{}' "
           "WHERE status = 'NEW'")
    assert engine.query(sql.format(stamp)).column("n").to_pylist() == [3]
    assert engine.query("SELECT count(*) AS n FROM orders_history").column("n").to_pylist() == [6]
    then = engine.query(f"SELECT count(*) AS n FROM changes FOR TIMESTAMP AS OF TIMESTAMP '{stamp}'")
    assert then.column("n").to_pylist() == [3]


@pytest.mark.parametrize("records", [
    "not a list", {"a": 1}, [None], ["a string"], [{"kinesis": "not an object"}],
    [{"kinesis": {"sequenceNumber": "1", "data": "!!!not base64"}}],
], ids=["string", "object", "null-record", "string-record", "kinesis-string", "bad-base64"])
def test_malformed_events_never_raise(lake: Settings, records: Any) -> None:
    from lambdas.parquet_consumer import lambda_handler

    got = lambda_handler({"Records": records})
    assert set(got) == {"batchItemFailures"}


def test_an_event_time_out_of_range_is_quarantined_alone(lake: Settings, clients: Clients) -> None:
    recs = [stream_record(i, f"K{i}") for i in range(3)]
    recs[1]["dynamodb"]["ApproximateCreationDateTime"] = 1e20  # beyond any timestamp type
    res = curate(lake, kinesis(recs), clients)
    assert res.failures == [] and res.quarantined == 1 and res.rows == 2


def test_a_legal_promotion_widens_the_column_in_place(lake: Settings, clients: Clients) -> None:
    # a history table made elsewhere (Athena, a migration) may hold an int; our bigint
    # values promote it to long, as Iceberg allows, instead of adding a sibling
    import pyarrow as pa

    from lake.curate.commit import HISTORY_ICEBERG
    from lake.curate.evolve import ATTRIBUTE_PROPERTY

    tables = IcebergTables(lake, clients)
    schema = pa.schema([*HISTORY_ICEBERG, pa.field("qty", pa.int32())])
    tables.ensure("orders_history", schema, ["dt"], source="orders", kind="history")
    tables.commit("orders_history", lambda t: Append(pa.table({}), properties={ATTRIBUTE_PROPERTY + "qty": "qty"}))
    recs = [stream_record(i, f"K{i}", new={"qty": {"N": str(2**40 + i)}}) for i in range(3)]
    assert curate(lake, kinesis(recs), clients).failures == []
    fields = {f.name: str(f.field_type) for f in tables.load("orders_history").schema().fields}
    assert fields["qty"] == "long" and not any(n.startswith("qty__") for n in fields)
    assert sorted(r["qty"] for r in rows(lake, clients, "orders_history")) == [2**40 + i for i in range(3)]
