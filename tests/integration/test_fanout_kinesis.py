"""Fan-out on the embedded AWS: injected partial PutRecords failures, order, claim checks."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket, ensure_kinesis
from lake.fanout import FanoutOptions, FaultInjectingKinesis, publish
from lake.settings import Settings
from tests.kinesis_readback import read_stream

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2024-01-01T00:00:00.000"


def stream_record(i: int, key: str, table: str = "orders", new: dict[str, Any] | None = None,
                  old: dict[str, Any] | None = None, event: str = "MODIFY", t: float | None = None) -> dict:
    """A DynamoDB stream record as Lambda delivers it (seconds, SequenceNumber, eventSourceARN)."""
    keys = {"pk": {"S": key}, "sk": {"S": "0"}}
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": t if t is not None else 1_700_000_000 + i,
                           "Keys": keys, "SequenceNumber": str(10**20 + i), "SizeBytes": 64,
                           "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None or event != "REMOVE":
        ddb["NewImage"] = {**keys, "i": {"N": str(i)}, **(new or {})}
    if old is not None:
        ddb["OldImage"] = old
    return {"eventID": f"ev-{i:06d}", "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": ddb, "eventSourceARN": ARN.format(table)}


def setup_stream(settings: Settings, clients: Clients, shards: int = 4) -> None:
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_kinesis(clients, settings.kinesis_stream, shards)


def order_violations(shards: dict[str, list[dict]], first_occurrence: bool = False) -> tuple[int, list[str]]:
    """Per-key order violations in what Kinesis holds; also the event ids read, in stream order."""
    last: dict[str, int] = {}
    seen: set[str] = set()
    ids, violations = [], 0
    for recs in shards.values():
        for r in recs:
            doc = orjson.loads(base64.b64decode(r["kinesis"]["data"]))
            rec = doc["record"]
            if first_occurrence and rec["eventID"] in seen:
                continue
            seen.add(rec["eventID"])
            ids.append(rec["eventID"])
            key = doc["lake"]["table"] + rec["dynamodb"]["Keys"]["pk"]["S"]
            n = int(rec["dynamodb"]["NewImage"]["i"]["N"])
            if n <= last.get(key, -1):
                violations += 1
            last[key] = n
    return violations, ids


def test_partial_failures_lose_nothing_and_keep_per_key_order(settings: Settings, clients: Clients) -> None:
    setup_stream(settings, clients)
    # hot keys (several changes each in one batch) and two tables
    records = [stream_record(i, f"K{i % 23}", table="orders" if i % 2 else "users") for i in range(600)]
    kin = FaultInjectingKinesis(clients.kinesis, fail_prob=0.35, seed=7)
    result = publish(settings, records, clients, kinesis=kin, sleep=lambda s: None,
                     options=FanoutOptions(max_attempts=50))
    assert kin.injected > 50 and result.retried == kin.injected
    assert result.failures == [] and result.delivered == 600
    shards = read_stream(clients.kinesis, settings.kinesis_stream)
    violations, ids = order_violations(shards)
    assert violations == 0
    assert sorted(ids) == sorted(r["eventID"] for r in records)  # nothing lost, nothing doubled
    assert sum(1 for recs in shards.values() if recs) > 1  # the keys really spread over shards


def test_a_failed_record_is_never_overtaken_by_its_key(settings: Settings, clients: Clients) -> None:
    setup_stream(settings, clients, shards=1)
    records = [stream_record(i, "A" if i % 2 == 0 else "B") for i in range(10)]
    failed_once: set[str] = set()

    def fail(call: int, pos: int, entry: dict) -> bool:
        # every record of key A fails on its first attempt
        eid = orjson.loads(entry["Data"])["record"]["eventID"]
        if entry["PartitionKey"].endswith("A|sk=0") and eid not in failed_once:
            failed_once.add(eid)
            return True
        return False

    kin = FaultInjectingKinesis(clients.kinesis, fail=fail)
    result = publish(settings, records, clients, kinesis=kin, sleep=lambda s: None)
    assert result.failures == [] and kin.injected == 5
    violations, ids = order_violations(read_stream(clients.kinesis, settings.kinesis_stream))
    assert violations == 0 and len(ids) == 10


def test_give_up_reports_the_tail_and_redelivery_keeps_first_occurrences_in_order(
        settings: Settings, clients: Clients) -> None:
    setup_stream(settings, clients, shards=2)
    records = [stream_record(i, f"K{i % 3}") for i in range(12)]
    stuck = {"ev-000004"}
    kin = FaultInjectingKinesis(
        clients.kinesis, fail=lambda c, p, e: orjson.loads(e["Data"])["record"]["eventID"] in stuck)
    result = publish(settings, records, clients, kinesis=kin, sleep=lambda s: None,
                     options=FanoutOptions(max_attempts=3))
    by_seq = {r["dynamodb"]["SequenceNumber"]: r for r in records}
    failed_ids = [by_seq[s]["eventID"] for s in result.failures]
    # the stuck record, the later records of its key, and nothing before it
    assert failed_ids[0] == "ev-000004"
    assert {"ev-000007", "ev-000010"} <= set(failed_ids)
    assert all(int(e[3:]) >= 4 for e in failed_ids)
    # Lambda redelivers from the lowest failed sequence number; the shard recovered
    stuck.clear()
    lowest = min(records.index(by_seq[s]) for s in result.failures)
    again = publish(settings, records[lowest:], clients, kinesis=kin, sleep=lambda s: None)
    assert again.failures == []
    shards = read_stream(clients.kinesis, settings.kinesis_stream)
    violations, ids = order_violations(shards, first_occurrence=True)
    assert violations == 0 and sorted(ids) == sorted(r["eventID"] for r in records)


def test_records_over_one_megabyte_go_through_a_claim_check(settings: Settings, clients: Clients) -> None:
    setup_stream(settings, clients, shards=1)
    big = stream_record(1, "BIG", new={"blob": {"S": "x" * 1_100_000}})
    result = publish(settings, [stream_record(0, "BIG"), big, stream_record(2, "BIG")], clients)
    assert result.claims == 1 and result.failures == []
    recs = read_stream(clients.kinesis, settings.kinesis_stream)["shardId-000000000000"]
    docs = [orjson.loads(base64.b64decode(r["kinesis"]["data"])) for r in recs]
    claim = docs[1]["lake"]["claim"]
    assert len(recs[1]["kinesis"]["data"]) < 10_000 and docs[1]["eventID"] == "ev-000001"
    body = clients.s3.get_object(Bucket=claim["bucket"], Key=claim["key"])["Body"].read()
    assert claim["key"].startswith(settings.zone_prefix("claims"))
    assert orjson.loads(body)["record"] == big


def test_malformed_stream_records_are_quarantined_and_the_rest_goes_on(
        settings: Settings, clients: Clients) -> None:
    setup_stream(settings, clients, shards=1)
    bad = {"eventID": "x", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "5"},
           "eventSourceARN": ARN.format("orders")}
    result = publish(settings, [stream_record(0, "A"), bad, stream_record(2, "A")], clients)
    assert result.quarantined == 1 and result.delivered == 2 and result.failures == []
    keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket=settings.bucket,
                                                          Prefix="quarantine/stage=fanout/")["Contents"]]
    assert len(keys) == 1


def test_lambda_handler_reads_settings_from_the_environment(settings: Settings, clients: Clients) -> None:
    from lambdas.fanout import lambda_handler

    setup_stream(settings, clients, shards=1)
    out = lambda_handler({"Records": [stream_record(i, "A") for i in range(3)]}, None)
    assert out == {"batchItemFailures": []}
    assert len(read_stream(clients.kinesis, settings.kinesis_stream)["shardId-000000000000"]) == 3


