"""The runtime takes GetRecords' records as their wire JSON (lake.local.runtime.sources): the events
it makes of them are exactly those it makes of boto3's parse of the same answer."""

from __future__ import annotations

import json
from typing import Any

from lake.aws.clients import Clients
from lake.local.runtime.events import (
    dynamodb_event_record,
    dynamodb_wire_record,
    kinesis_event_record,
    kinesis_wire_record,
)
from tests.runtime_helpers import make_kinesis, make_table


def both(client: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(boto3's parsed records, the same answer's records as JSON)."""
    bodies: list[bytes] = []
    hook = f"after-call.{client.meta.service_model.endpoint_prefix}.GetRecords"

    def grab(http_response: Any, **_: Any) -> None:
        bodies.append(http_response.content)

    client.meta.events.register(hook, grab)
    try:
        parsed = client.get_records(**kwargs)["Records"]
    finally:
        client.meta.events.unregister(hook, grab)
    return parsed, json.loads(bodies[0])["Records"]


def test_dynamodb_events_from_the_wire_are_boto3_s(clients: Clients) -> None:
    arn = make_table(clients)
    ddb = clients.dynamodb
    ddb.put_item(TableName="orders", Item={
        "pk": {"S": "a"}, "sk": {"S": "1"}, "blob": {"B": b"\x00\xff"}, "n": {"N": "1.50"},
        "nested": {"M": {"bs": {"BS": [b"x", b"y"]}, "l": {"L": [{"B": b"z"}, {"NULL": True}, {"BOOL": False}]}}},
        "ss": {"SS": ["p", "q"]}})
    ddb.update_item(TableName="orders", Key={"pk": {"S": "a"}, "sk": {"S": "1"}},
                    UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "2"}})
    ddb.delete_item(TableName="orders", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})
    st = clients.dynamodbstreams
    shard = st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = st.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    parsed, wire = both(st, ShardIterator=it)
    assert len(parsed) == len(wire) == 3
    for p, w in zip(parsed, wire, strict=True):
        mine, boto3s = dynamodb_wire_record(w, arn, "us-east-1"), dynamodb_event_record(p, arn, "us-east-1")
        assert mine.event == boto3s.event and mine.seq == boto3s.seq
        assert abs(mine.arrival - boto3s.arrival) < 1e-3


def test_kinesis_events_from_the_wire_are_boto3_s(clients: Clients) -> None:
    arn = make_kinesis(clients)
    kin = clients.kinesis
    for i in range(5):
        kin.put_record(StreamName="events", Data=bytes([i, 255 - i]) + "é".encode(), PartitionKey=f"k{i}")
    shard = kin.list_shards(StreamName="events")["Shards"][0]["ShardId"]
    it = kin.get_shard_iterator(StreamName="events", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    parsed, wire = both(kin, ShardIterator=it)
    assert len(parsed) == len(wire) == 5
    for p, w in zip(parsed, wire, strict=True):
        mine, boto3s = kinesis_wire_record(w, shard, arn, "us-east-1"), kinesis_event_record(p, shard, arn, "us-east-1")
        assert mine.seq == boto3s.seq and abs(mine.arrival - boto3s.arrival) < 1e-3
        mine.event["kinesis"].pop("approximateArrivalTimestamp")
        boto3s.event["kinesis"].pop("approximateArrivalTimestamp")
        assert mine.event == boto3s.event
