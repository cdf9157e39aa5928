"""The embedded AWS's speed patches (lake.local.moto_speed) answer exactly as moto does.

Each patched path is compared with moto's own on the same state: the raw JSON bodies of
DynamoDB Streams and Kinesis GetRecords, Kinesis' shard reads, and the dispatcher's service
per host. They fail when moto is not the version the patches were written for.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.aws.provision import provision
from lake.local import moto_speed
from lake.local.embedded import ACCOUNT_ID, patch_moto, sweep_ttl
from lake.settings import Settings


def test_moto_is_the_version_the_patches_were_written_for() -> None:
    assert moto_speed.moto_version() == moto_speed.PINNED_MOTO
    patch_moto()  # installs the speed patches last, over embedded's own
    assert moto_speed.patch_moto_speed() is True
    assert set(moto_speed.MOTO_ORIGINALS) >= {
        "DynamoDBStreamsHandler.get_records", "KinesisResponse.get_records", "Shard.get_records",
        "list_of_moto_modules", "DomainDispatcherApplication.get_backend_for_host"}


def raw_bodies(client: Any, op: str, call: Any) -> tuple[bytes, bytes]:
    """The body of ``call()`` answered by the patched server, then by moto's own handler."""
    import moto.dynamodbstreams.responses as ddbs
    import moto.kinesis.responses as kin

    bodies: list[bytes] = []
    hook = f"after-call.{client.meta.service_model.endpoint_prefix}.{op}"

    def grab(http_response: Any, **_: Any) -> None:
        bodies.append(http_response.content)

    client.meta.events.register(hook, grab)
    try:
        call()
        handler = ddbs.DynamoDBStreamsHandler if "streams" in hook else kin.KinesisResponse
        patched = handler.get_records
        handler.get_records = moto_speed.MOTO_ORIGINALS[f"{handler.__name__}.get_records"]
        try:
            call()
        finally:
            handler.get_records = patched
    finally:
        client.meta.events.unregister(hook, grab)
    return bodies[0], bodies[1]


def varied_items() -> list[dict[str, Any]]:
    nested = {"M": {"blob": {"B": b"\x00\xffbin"}, "list": {"L": [{"N": "1.50"}, {"S": "é ü"}, {"NULL": True},
                                                                 {"BS": [b"a", b"\x01"]}]},
                    "deep": {"M": {"x": {"BOOL": False}, "ns": {"NS": ["1", "2.5"]}}}}}
    return [
        {"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "12345678901234567890.123"}, "nested": nested},
        {"pk": {"S": "b"}, "sk": {"S": "2"}, "bin": {"B": b"\xfe\xfd"}, "ss": {"SS": ["x", "y"]}, "t": {"BOOL": True},
         "expires_at": {"N": str(int(time.time()) - 10)}},
        {"pk": {"S": "unicode ✓ \"quoted\""}, "sk": {"S": "3"}, "empty": {"S": ""}, "l": {"L": []}, "m": {"M": {}}},
    ]


def test_dynamodb_streams_get_records_body_is_moto_s(settings: Settings, clients: Clients) -> None:
    prov = provision(settings, clients)
    ddb = clients.dynamodb
    ddb.update_time_to_live(TableName="orders", TimeToLiveSpecification={"Enabled": True,
                                                                          "AttributeName": "expires_at"})
    for item in varied_items():
        ddb.put_item(TableName="orders", Item=item)
    ddb.update_item(TableName="orders", Key={"pk": {"S": "a"}, "sk": {"S": "1"}},
                    UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "-0.5"}})
    ddb.delete_item(TableName="orders", Key={"pk": {"S": "unicode ✓ \"quoted\""}, "sk": {"S": "3"}})
    assert [r.expired for r in sweep_ttl(settings.region) if r.table == "orders"] == [1]  # the service identity
    arn = prov.stream_arns["orders"]
    st = clients.dynamodbstreams
    shard = st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = st.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    fast, moto = raw_bodies(st, "GetRecords", lambda: st.get_records(ShardIterator=it))
    assert json.loads(fast) == json.loads(moto)
    records = json.loads(fast)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "INSERT", "MODIFY", "REMOVE", "REMOVE"]
    assert records[-1]["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    # And what boto3 makes of it (bytes, Decimal-free strings, datetimes) is the same too.
    parsed = st.get_records(ShardIterator=it)["Records"]
    assert parsed[0]["dynamodb"]["NewImage"]["nested"]["M"]["blob"]["B"] == b"\x00\xffbin"
    assert parsed[0]["dynamodb"]["NewImage"]["n"] == {"N": "12345678901234567890.123"}
    assert Decimal(parsed[3]["dynamodb"]["NewImage"]["n"]["N"]) == Decimal("-0.5")


def test_kinesis_get_records_body_and_shard_reads_are_moto_s(settings: Settings, clients: Clients) -> None:
    from moto.kinesis.models import kinesis_backends

    kin = clients.kinesis
    kin.create_stream(StreamName="speed", ShardCount=1)
    data = [bytes([i % 256]) * (i % 7 + 1) + "ü".encode() for i in range(40)]
    for i, d in enumerate(data):
        kin.put_record(StreamName="speed", Data=d, PartitionKey=f"k{i % 5}")
    shard_id = kin.list_shards(StreamName="speed")["Shards"][0]["ShardId"]
    it = kin.get_shard_iterator(StreamName="speed", ShardId=shard_id,
                                ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber="3")["ShardIterator"]
    fast, moto = raw_bodies(kin, "GetRecords", lambda: kin.get_records(ShardIterator=it, Limit=25))
    assert json.loads(fast) == json.loads(moto)
    got = kin.get_records(ShardIterator=it, Limit=25)["Records"]
    assert [r["Data"] for r in got] == data[3:28]

    shard = kinesis_backends[ACCOUNT_ID][settings.region].streams["speed"].shards[shard_id]
    original = moto_speed.MOTO_ORIGINALS["Shard.get_records"]

    def both(last: str, limit: int | None) -> None:
        mine, theirs = shard.get_records(last, limit), original(shard, last, limit)
        assert (mine[0], mine[1]) == (theirs[0], theirs[1]), (last, limit)
        assert mine[2] == theirs[2]

    for last in ("0", "1", "17", "39", "40", "41", "1000"):
        for limit in (1, 5, 100, None):
            both(last, limit)
    for _ in range(10):  # trimmed from the front, as the embedded streams do past their retention
        shard.records.popitem(last=False)
    for last in ("0", "10", "11", "12", "40"):
        for limit in (1, 3, None):
            both(last, limit)


def test_the_dispatcher_remembers_moto_s_own_answer_per_host(embedded_aws: Any) -> None:
    import moto.backends as backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.server import create_backend_app

    assert list(backends.list_of_moto_modules()) == list(moto_speed.MOTO_ORIGINALS["list_of_moto_modules"]())
    app = DomainDispatcherApplication(create_backend_app)
    original = moto_speed.MOTO_ORIGINALS["DomainDispatcherApplication.get_backend_for_host"]
    for host in ("dynamodb.us-east-1.amazonaws.com", "streams.dynamodb.us-east-1.amazonaws.com",
                 "kinesis.us-east-1.amazonaws.com", "s3.amazonaws.com", "glue.us-east-1.amazonaws.com",
                 "sqs.us-east-1.amazonaws.com", "moto_api", "dynamodb", None, "nothing.example"):
        for _ in range(2):  # the second answer comes from the memo
            assert app.get_backend_for_host(host) == original(app, host), host


def test_concurrent_writers_get_distinct_sequence_numbers(settings: Settings, clients: Clients) -> None:
    """moto numbers stream records without a lock; its server runs a thread per request."""
    import sys
    import threading

    from moto.dynamodb.models import dynamodb_backends

    prov = provision(settings, clients)
    backend = dynamodb_backends[ACCOUNT_ID][settings.region]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows at once without the lock
    try:
        def write(w: int) -> None:
            for i in range(300):
                backend.put_item("orders", {"pk": {"S": f"w{w}-{i}"}, "sk": {"S": "1"}})

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    st = clients.dynamodbstreams
    arn = prov.stream_arns["orders"]
    shard = st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = st.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seqs: list[int] = []
    while it:
        resp = st.get_records(ShardIterator=it, Limit=1000)
        if not resp["Records"]:
            break
        seqs += [int(r["dynamodb"]["SequenceNumber"]) for r in resp["Records"]]
        it = resp["NextShardIterator"]
    assert len(seqs) == 1200 and len(set(seqs)) == 1200 and seqs == sorted(seqs)


def test_stream_record_images_are_moto_s(settings: Settings, clients: Clients,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The images built without deep copies, and the item rendered once per record, equal moto's own."""
    import datetime

    import moto.dynamodb.models.table as moto_table
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import StreamRecord

    provision(settings, clients)
    # One creation time for both records: SizeBytes counts its text.
    monkeypatch.setattr(moto_table, "utcnow", lambda: datetime.datetime(2026, 1, 2, 3, 4, 5, 678901))
    backend = dynamodb_backends[ACCOUNT_ID][settings.region]
    table = backend.get_table("orders")
    regular = moto_speed.MOTO_ORIGINALS["DynamoType.to_regular_json"]
    for raw in varied_items():
        item = backend.put_item("orders", raw)
        for attr in item.attrs.values():
            assert attr.to_regular_json() == regular(attr)
        assert isinstance(item, Item)
        old, new = item, backend.put_item("orders", {**raw, "extra": {"L": [{"M": {"b": {"B": b"\x01"}}}]}})
        fast = StreamRecord(table, "NEW_AND_OLD_IMAGES", "MODIFY", old, new, 7)
        moto = StreamRecord.__new__(StreamRecord)
        moto_speed.MOTO_ORIGINALS["StreamRecord.__init__"](moto, table, "NEW_AND_OLD_IMAGES", "MODIFY", old, new, 7)
        for rec in (fast.record, moto.record):
            rec.pop("eventID")
        assert fast.record == moto.record
        assert isinstance(next(iter(new.attrs.values())), DynamoType)
