"""The fan-out record and claim check: the exact bytes, and readers that read what is written."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from lake.curate.decode import ClaimRef, Coordinates, unwrap
from lake.errors import MalformedRecordError
from lake.fanout import wire
from lake.fanout.plan import make_entry
from lake.records import event_time_us

REC: dict[str, Any] = {
    "eventID": "1", "eventName": "INSERT",
    "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000",
    "dynamodb": {"ApproximateCreationDateTime": 1_700_000_000, "SequenceNumber": "5", "Keys": {"pk": {"S": "a"}}}}


def test_the_envelope_keeps_the_record_untouched_and_its_time_convention() -> None:
    doc = orjson.loads(wire.envelope(REC, "orders"))
    assert doc["record"] == REC and doc["lake"]["table"] == "orders"
    # tableName is not added to the record: it would make the seconds read as milliseconds
    assert event_time_us(doc["record"]) == 1_700_000_000_000_000


def test_the_bytes_on_the_stream() -> None:
    assert wire.envelope({"a": 1}, "orders") == b'{"lake":{"v":1,"table":"orders"},"record":{"a":1}}'
    entry = make_entry(0, REC)
    pointer = wire.claim_pointer(entry, "bkt", "claims/orders/x.json", REC)
    digest = hashlib.sha256(entry.data).hexdigest()
    assert pointer == (
        b'{"lake":{"v":1,"table":"orders","claim":{"bucket":"bkt","key":"claims/orders/x.json","bytes":%d,'
        b'"sha256":"%s"}},"eventID":"1","SequenceNumber":"5","eventSourceARN":"%s","Keys":{"pk":{"S":"a"}}}'
        % (len(entry.data), digest.encode(), REC["eventSourceARN"].encode()))
    assert wire.claim_key("pre/claims/", "orders", entry.data) == f"pre/claims/orders/{digest}.json"


def test_split_envelope_slices_the_record_as_written() -> None:
    data = wire.envelope(REC, "my_table.v-2")
    table, body = wire.split_envelope(data) or ("", b"")
    assert table == "my_table.v-2" and body == orjson.dumps(REC)
    assert wire.has_envelope(data)


@pytest.mark.parametrize("data", [
    wire.envelope(REC, "odd table"),  # a name DynamoDB would not allow: parsed, not sliced
    b'{"lake":{"table":"orders","v":1},"record":{}}',  # another writer's field order
    b'{"lake":{"v":2,"table":"orders"},"record":{}}',
    orjson.dumps(REC),  # a bare stream record
    wire.envelope(REC, "orders") + b" ",  # not as written
])
def test_anything_else_is_left_to_read(data: bytes) -> None:
    assert wire.split_envelope(data) is None


def test_read_gives_the_record_the_claim_or_nothing() -> None:
    assert wire.read(orjson.loads(wire.envelope(REC, "orders"))) == ("orders", REC)
    entry = make_entry(0, REC)
    claim = wire.read(orjson.loads(wire.claim_pointer(entry, "bkt", "k", REC)))
    assert claim == wire.Claim("orders", "bkt", "k", hashlib.sha256(entry.data).hexdigest())
    assert wire.read(REC) is None
    coords = Coordinates("shardId-000000000000", "49")
    assert unwrap(orjson.loads(wire.claim_pointer(entry, "bkt", "k", REC)), coords) == \
        ClaimRef(coords, "orders", "bkt", "k", hashlib.sha256(entry.data).hexdigest())
    assert unwrap(REC, coords) == ("orders", REC)


@pytest.mark.parametrize(("doc", "reason"), [
    ({"lake": {"v": 1}, "record": {}}, "without a table"),
    ({"lake": {"v": 1, "table": "t", "claim": {"bucket": "b", "key": "k"}}}, "claim check without 'sha256'"),
    ({"lake": {"v": 1, "table": "t"}, "record": [1]}, "without a record"),
])
def test_read_refuses_a_broken_envelope(doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedRecordError, match=reason):
        wire.read(doc)
