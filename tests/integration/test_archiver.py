"""The stream archiver handler against the embedded AWS (moto): objects, lines, idempotency."""

from __future__ import annotations

import copy
import gzip
import hashlib
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest

from lake.archive.keys import RawObjectKey, zone_prefix
from lake.archive.summary import raw_summary
from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket
from lake.settings import Settings
from lambdas import stream_archiver
from tests.conftest import load_event
from tests.events.factories import event, large_item, nested_item, stream_record
from tests.raw_zone import decode_line, iter_object_lines


@pytest.fixture
def lake(settings: Settings, clients: Clients) -> Iterator[tuple[Settings, Clients]]:
    ensure_bucket(clients, settings.bucket, settings.region)
    stream_archiver.configure(settings, clients)
    yield settings, clients
    stream_archiver.configure()


def raw_objects(settings: Settings, clients: Clients) -> dict[str, dict[str, Any]]:
    """key → {"lines": [(envelope, record)], "meta": ..., "body": ...} for every raw object."""
    out = {}
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=zone_prefix(settings.prefix))
    for item in listing.get("Contents", []):
        got = clients.s3.get_object(Bucket=settings.bucket, Key=item["Key"])
        body = got["Body"].read()
        if not item["Key"].endswith(".json.gz"):
            out[item["Key"]] = {"lines": [], "meta": got["Metadata"], "body": body}
            continue
        out[item["Key"]] = {"lines": [decode_line(x) for x in iter_object_lines(body)],
                            "meta": got["Metadata"], "body": body}
    return out


def quarantined(settings: Settings, clients: Clients) -> list[dict[str, Any]]:
    prefix = settings.zone_prefix("quarantine") + "stage=archive/"
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    return [orjson.loads(clients.s3.get_object(Bucket=settings.bucket, Key=o["Key"])["Body"].read())
            for o in listing.get("Contents", [])]


def test_sam_event_expected_object_lines_and_metadata(lake: tuple[Settings, Clients]) -> None:
    settings, clients = lake
    ev = load_event("samDynamoDBUpdate.json")
    assert stream_archiver.lambda_handler(copy.deepcopy(ev), None) == {"batchItemFailures": []}
    objects = raw_objects(settings, clients)
    (key,) = objects
    parsed = RawObjectKey.parse(key)
    assert (parsed.table, parsed.dt, parsed.hour) == ("ExampleTableWithStream", date(2015, 4, 9), 0)
    assert (parsed.first_seq, parsed.last_seq) == ("4421584500000000017450439091", "4421584500000000017450439093")
    obj = objects[key]
    assert [rec for _, rec in obj["lines"]] == ev["Records"]  # verbatim round trip
    assert [env["id"] for env, _ in obj["lines"]] == [r["eventID"] for r in ev["Records"]]
    meta = obj["meta"]
    assert meta["record-count"] == "3"
    assert (meta["first-sequence"], meta["last-sequence"]) == (parsed.first_seq, parsed.last_seq)
    assert meta["sha256"] == hashlib.sha256(gzip.decompress(obj["body"])).hexdigest()
    assert meta["sha256-of"] == "uncompressed"


def test_redelivery_three_times_is_idempotent(lake: tuple[Settings, Clients]) -> None:
    settings, clients = lake
    ev = load_event("ddbHourBoundary.json")
    stream_archiver.lambda_handler(copy.deepcopy(ev), None)
    first = raw_objects(settings, clients)
    for _ in range(3):
        assert stream_archiver.lambda_handler(copy.deepcopy(ev), None) == {"batchItemFailures": []}
    again = raw_objects(settings, clients)
    assert sorted(again) == sorted(first)
    assert {k: v["body"] for k, v in again.items()} == {k: v["body"] for k, v in first.items()}
    assert sum(len(v["lines"]) for v in again.values()) == len(ev["Records"])


def test_hour_boundary_splits_into_partitions(lake: tuple[Settings, Clients]) -> None:
    settings, clients = lake
    ev = load_event("ddbHourBoundary.json")
    stream_archiver.lambda_handler(ev, None)
    keys = [RawObjectKey.parse(k) for k in raw_objects(settings, clients)]
    assert sorted((k.dt.isoformat(), k.hour) for k in keys) == [
        ("2024-05-01", 0), ("2024-05-01", 1), ("2024-05-02", 0)]


def test_ttl_deletions_are_marked(lake: tuple[Settings, Clients]) -> None:
    settings, clients = lake
    ev = load_event("ddbTtlRemove.json")
    stream_archiver.lambda_handler(copy.deepcopy(ev), None)
    (obj,) = raw_objects(settings, clients).values()
    assert [(env["event"], env["ttl"]) for env, _ in obj["lines"]] == [
        ("INSERT", False), ("REMOVE", True), ("REMOVE", False)]
    assert [rec for _, rec in obj["lines"]] == ev["Records"]


def test_every_type_deep_nesting_and_400kb_item(lake: tuple[Settings, Clients]) -> None:
    settings, clients = lake
    deep, big = nested_item(31), large_item()
    ev = load_event("ddbAllTypes.json")
    ev["Records"] += event(
        stream_record(50, event="INSERT", keys={"pk": deep["pk"], "sk": deep["sk"]}, new=deep),
        stream_record(51, event="INSERT", keys={"pk": big["pk"], "sk": big["sk"]}, new=big),
    )["Records"]
    assert stream_archiver.lambda_handler(copy.deepcopy(ev), None) == {"batchItemFailures": []}
    lines = [ln for o in raw_objects(settings, clients).values() for ln in o["lines"]]
    assert [rec for _, rec in lines] == ev["Records"]
    n38 = lines[0][1]["dynamodb"]["NewImage"]["n38"]
    assert n38 == {"N": "12345678901234567890123456789012345678"}
    assert quarantined(settings, clients) == []


def test_stream_view_types(lake: tuple[Settings, Clients]) -> None:
    settings, clients = lake
    ev = load_event("ddbStreamViewTypes.json")
    stream_archiver.lambda_handler(copy.deepcopy(ev), None)
    (obj,) = raw_objects(settings, clients).values()
    assert [rec for _, rec in obj["lines"]] == ev["Records"]


def test_powertools_sample_event_archives_verbatim(lake: tuple[Settings, Clients]) -> None:
    """Powertools' sample has placeholder ARNs and a record without a creation time: both are
    still archived verbatim (table=_unknown; the second placed by its arrival time)."""
    settings, clients = lake
    ev = load_event("dynamoStreamEvent.json")
    before_us = time.time_ns() // 1000
    assert stream_archiver.lambda_handler(copy.deepcopy(ev), None) == {"batchItemFailures": []}
    assert quarantined(settings, clients) == []
    objects = raw_objects(settings, clients)
    assert all("/table=_unknown/" in "/" + k for k in objects)
    lines = sorted((ln for o in objects.values() for ln in o["lines"]), key=lambda ln: ln[1]["eventID"])
    assert [rec for _, rec in lines] == ev["Records"]
    first, second = (env for env, _ in lines)
    assert first["t"] == 1693997155 * 1_000_000 and "tsrc" not in first
    assert second["tsrc"] == "arrival" and second["t"] >= before_us
    assert (first["key"], second["seq"]) == ("Id=101", "222")
    # with a real stream ARN the records land under their table
    arn = "arn:aws:dynamodb:us-west-2:123456789012:table/powertools/stream/2023-09-06T00:00:00.000"
    for rec in ev["Records"]:
        rec["eventSourceARN"] = arn
    stream_archiver.lambda_handler(ev, None)
    mine = [k for k in raw_objects(settings, clients) if "table=powertools/" in k]
    assert len(mine) == 2  # two hours: 2023-09-06 and the arrival hour


def test_settings_and_clients_are_resolved_lazily_from_the_environment(settings: Settings) -> None:
    clients = Clients(settings)
    ensure_bucket(clients, settings.bucket, settings.region)
    stream_archiver.configure()
    assert stream_archiver._runtime._cached is None  # nothing built at import or reset
    try:
        assert stream_archiver.lambda_handler(load_event("samDynamoDBUpdate.json"), None) == {
            "batchItemFailures": []}
        built = stream_archiver._runtime._cached
        assert built is not None and built.settings.endpoint_url == settings.endpoint_url
        assert len(raw_objects(settings, clients)) == 1
        stream_archiver.lambda_handler(load_event("samDynamoDBUpdate.json"), None)
        assert stream_archiver._runtime._cached is built  # warm invocations reuse the clients
    finally:
        stream_archiver.configure()


def test_raw_summary_counts(lake: tuple[Settings, Clients]) -> None:
    settings, clients = lake
    stream_archiver.lambda_handler(load_event("ddbHourBoundary.json"), None)
    stream_archiver.lambda_handler(load_event("samDynamoDBUpdate.json"), None)
    clients.s3.put_object(Bucket=settings.bucket, Key="raw/README.txt", Body=b"not ours")
    summary = raw_summary(settings, clients)
    objects = raw_objects(settings, clients)
    assert summary.objects == len(objects) - 1 == 4
    assert summary.records == 4 + 3
    assert summary.bytes == sum(len(v["body"]) for k, v in objects.items() if k.endswith(".json.gz"))
    assert {t: c.records for t, c in summary.tables.items()} == {"ExampleTableWithStream": 3, "orders": 4}
    assert summary.foreign == 1
