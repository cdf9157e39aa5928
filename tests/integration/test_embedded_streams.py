"""The embedded streams forget what AWS forgets (issue 11): DynamoDB Streams iterators once consumed
or expired, stream records past their retention (24 h for DynamoDB Streams, the stream's for Kinesis),
with sequence numbers and GetRecords as before (TRIM_HORIZON starts at the oldest retained record).

Each test fails if moto's internals change under the patches (lake.local.embedded.patch_moto)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lake.aws.clients import Clients
from lake.aws.provision import provision
from lake.local import embedded
from lake.local.embedded import ACCOUNT_ID
from lake.settings import Settings

DAY = 24 * 3600


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(embedded, "stream_now", c)
    return c


def ddb_streams_backend(settings: Settings) -> Any:
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    return dynamodbstreams_backends[ACCOUNT_ID][settings.region]


def shard_of(clients: Clients, arn: str) -> str:
    return str(clients.dynamodbstreams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"])


def iterator(clients: Clients, arn: str, kind: str, seq: str | None = None) -> str:
    kw: dict[str, Any] = {"SequenceNumber": seq} if seq else {}
    return str(clients.dynamodbstreams.get_shard_iterator(StreamArn=arn, ShardId=shard_of(clients, arn),
                                                          ShardIteratorType=kind, **kw)["ShardIterator"])


def put(clients: Clients, pk: str) -> None:
    clients.dynamodb.put_item(TableName="orders", Item={"pk": {"S": pk}, "sk": {"S": "1"}})


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def test_dynamodb_stream_iterators_are_dropped_once_consumed_or_expired(settings: Settings, clients: Clients,
                                                                         clock: Clock) -> None:
    arn = provision(settings, clients).stream_arns["orders"]
    st = clients.dynamodbstreams
    put(clients, "a")
    store = ddb_streams_backend(settings).shard_iterators
    it = iterator(clients, arn, "LATEST")
    for _ in range(100):  # the runtime's idle poll: one read every 100 ms, following NextShardIterator
        prev, it = it, st.get_records(ShardIterator=it)["NextShardIterator"]
        clock.t += 0.1
    assert st.get_records(ShardIterator=prev)["Records"] == []  # a retry right after a lost answer works
    clock.t += embedded.CONSUMED_ITERATOR_GRACE_S + 1
    put(clients, "b")
    resp = st.get_records(ShardIterator=it)  # not consumed since last handed out, a minute ago: valid
    assert [r["dynamodb"]["Keys"]["pk"] for r in resp["Records"]] == [{"S": "b"}]
    assert len(store) <= 3, len(store)  # not 101
    assert resp["NextShardIterator"] != it
    clock.t += embedded.CONSUMED_ITERATOR_GRACE_S + 1
    with pytest.raises(ClientError) as e:
        st.get_records(ShardIterator=it)  # consumed over a minute ago
    assert code(e) == "ExpiredIteratorException"
    for _ in range(100):  # a reader asking for a new iterator before each read: one position, one entry
        st.get_records(ShardIterator=iterator(clients, arn, "LATEST"))
        clock.t += 0.1
    assert len(store) <= 3, len(store)
    fresh = iterator(clients, arn, "TRIM_HORIZON")
    clock.t += 15 * 60 + 1  # DynamoDB Streams iterators expire 15 minutes after they are handed out
    with pytest.raises(ClientError) as e:
        st.get_records(ShardIterator=fresh)
    assert code(e) == "ExpiredIteratorException"
    assert len(store) <= 1


def test_dynamodb_stream_records_past_24h_are_dropped(settings: Settings, clients: Clients, clock: Clock) -> None:
    arn = provision(settings, clients).stream_arns["orders"]
    st = clients.dynamodbstreams
    for pk in ("old0", "old1", "old2"):
        put(clients, pk)
    old = st.get_records(ShardIterator=iterator(clients, arn, "TRIM_HORIZON"))["Records"]
    old_seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in old]
    clock.t += DAY - 60
    waiting = iterator(clients, arn, "AFTER_SEQUENCE_NUMBER", str(old_seqs[-1]))  # a caught-up reader
    horizon = iterator(clients, arn, "TRIM_HORIZON")  # handed out before the old records go
    at_old = iterator(clients, arn, "AT_SEQUENCE_NUMBER", str(old_seqs[1]))
    clock.t += 61
    put(clients, "new0")
    put(clients, "new1")
    from moto.dynamodb.models import dynamodb_backends

    assert len(dynamodb_backends[ACCOUNT_ID][settings.region].get_table("orders").stream_shard.items) == 2
    recs = st.get_records(ShardIterator=iterator(clients, arn, "TRIM_HORIZON"))["Records"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in recs] == ["new0", "new1"]
    assert [int(r["dynamodb"]["SequenceNumber"]) for r in recs] == [old_seqs[-1] + 1, old_seqs[-1] + 2]
    for it in (waiting, horizon):
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in st.get_records(ShardIterator=it)["Records"]] == \
            ["new0", "new1"]
    with pytest.raises(ClientError) as e:
        st.get_records(ShardIterator=at_old)
    assert code(e) == "TrimmedDataAccessException"
    after = iterator(clients, arn, "AFTER_SEQUENCE_NUMBER", str(old_seqs[-1]))
    assert len(st.get_records(ShardIterator=after)["Records"]) == 2
    with pytest.raises(ClientError) as e:
        iterator(clients, arn, "AT_SEQUENCE_NUMBER", str(old_seqs[0]))
    assert code(e) == "TrimmedDataAccessException"
    latest = iterator(clients, arn, "LATEST")
    put(clients, "new2")
    (rec,) = st.get_records(ShardIterator=latest)["Records"]
    assert int(rec["dynamodb"]["SequenceNumber"]) == old_seqs[-1] + 3


def test_kinesis_records_past_the_stream_retention_are_dropped(settings: Settings, clients: Clients,
                                                               clock: Clock) -> None:
    from moto.kinesis.models import kinesis_backends

    kin = clients.kinesis
    kin.create_stream(StreamName="k", ShardCount=1)
    shard_id = kin.list_shards(StreamName="k")["Shards"][0]["ShardId"]
    moto_shard = kinesis_backends[ACCOUNT_ID][settings.region].streams["k"].shards[shard_id]

    def it(kind: str, seq: str | None = None) -> str:
        kw: dict[str, Any] = {"StartingSequenceNumber": seq} if seq else {}
        return str(kin.get_shard_iterator(StreamName="k", ShardId=shard_id, ShardIteratorType=kind,
                                          **kw)["ShardIterator"])

    old = [kin.put_record(StreamName="k", Data=f"old{i}".encode(), PartitionKey="p")["SequenceNumber"]
           for i in range(3)]
    clock.t += DAY + 1  # the default retention: 24 h
    new = [kin.put_record(StreamName="k", Data=f"new{i}".encode(), PartitionKey="p")["SequenceNumber"]
           for i in range(2)]
    assert len(moto_shard.records) == 2
    assert int(new[0]) == int(old[-1]) + 1  # numbering goes on
    recs = kin.get_records(ShardIterator=it("TRIM_HORIZON"))["Records"]
    assert [r["Data"] for r in recs] == [b"new0", b"new1"]
    latest = it("LATEST")
    last = kin.put_record(StreamName="k", Data=b"new2", PartitionKey="p")["SequenceNumber"]
    assert [r["SequenceNumber"] for r in kin.get_records(ShardIterator=latest)["Records"]] == [last]
    kin.increase_stream_retention_period(StreamName="k", RetentionPeriodHours=48)
    clock.t += DAY + 1
    kin.put_record(StreamName="k", Data=b"new3", PartitionKey="p")
    assert len(moto_shard.records) == 4  # within 48 h
    clock.t += DAY
    seq = kin.put_record(StreamName="k", Data=b"new4", PartitionKey="p")["SequenceNumber"]
    assert [r.sequence_number for r in moto_shard.records.values()] == [int(seq) - 1, int(seq)]
    # every shard of the stream gets the same
    assert moto_shard.get_max_sequence_number() == int(seq)
    assert moto_shard.get_min_sequence_number() == int(seq) - 1


def test_the_moto_internals_the_stream_patches_rely_on() -> None:
    """If this fails, moto changed: re-read the patches in lake.local.embedded before bumping it."""
    import inspect

    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator

    embedded.patch_moto()
    src = {name: inspect.getsource(f) for name, f in embedded.MOTO_ORIGINALS.items()}
    # DynamoDB Streams: seq = starting + position in a list; iterators in a dict read by subscript
    assert "seq = len(self.items) + self.starting_sequence_number" in src["StreamShard.add"]
    assert "start -= self.starting_sequence_number" in src["StreamShard.get"]
    assert "self.shard_iterators: dict[str, ShardIterator] = {}" in src["DynamoDBStreamsBackend.__init__"]
    assert "self.shard_iterators[iterator_arn]" in src["DynamoDBStreamsBackend.get_records"]
    assert "self.stream_shard.get(self.sequence_number, limit)" in src["ShardIterator.get"]
    assert "self.id = " in src["ShardIterator.__init__"]
    assert "|1|{self.id}" in inspect.getsource(ShardIterator.arn.fget)  # type: ignore[attr-defined]
    assert isinstance(DynamoDBStreamsBackend("us-east-1", ACCOUNT_ID).shard_iterators, embedded.IteratorStore)
    # Kinesis: records in an ordered dict by sequence number, numbered max + 1, read in order
    assert "sequence_number = last_sequence_number + 1" in src["Shard.put_record"]
    assert "for sequence_number, record in self.records.items():" in src["Shard.get_records"]
    assert "shard.put_record(partition_key, data, explicit_hash_key)" in src["Stream.put_record"]
    # every model instance tracked by its class (the patches opt four per-request models out)
    from moto.core.common_models import BaseModel

    assert "cls.instances_tracked.append(instance)" in inspect.getsource(BaseModel.__new__)


def test_moto_does_not_keep_every_item_record_and_iterator(settings: Settings, clients: Clients,
                                                           clock: Clock) -> None:
    """moto's BaseModel appends every instance to its class's ``instances_tracked`` (for its
    dashboard) and never lets go: every item version, stream record and iterator would live on."""
    import gc
    import weakref

    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import StreamRecord
    from moto.dynamodbstreams.models import ShardIterator
    from moto.kinesis.models import Record, kinesis_backends

    arn = provision(settings, clients).stream_arns["orders"]
    table = dynamodb_backends[ACCOUNT_ID][settings.region].get_table("orders")
    put(clients, "x")
    first = weakref.ref(table.get_item(DynamoType({"S": "x"}), DynamoType({"S": "1"})))
    tracked = {cls: len(cls.instances_tracked) for cls in (Item, StreamRecord, ShardIterator, Record)}  # type: ignore[attr-defined]
    for _ in range(20):
        put(clients, "x")
        clients.dynamodbstreams.get_records(ShardIterator=iterator(clients, arn, "TRIM_HORIZON"))
        clients.kinesis.put_record(StreamName=settings.kinesis_stream, Data=b"d", PartitionKey="p")
    gc.collect()
    assert first() is None  # the overwritten version is gone
    assert {cls: len(cls.instances_tracked) for cls in tracked} == tracked  # type: ignore[attr-defined]
    shards = kinesis_backends[ACCOUNT_ID][settings.region].streams[settings.kinesis_stream].shards.values()
    shard = next(s for s in shards if s.records)
    oldest = weakref.ref(next(iter(shard.records.values())))
    clock.t += DAY + 1
    clients.kinesis.put_record(StreamName=settings.kinesis_stream, Data=b"d", PartitionKey="p")
    gc.collect()
    assert oldest() is None  # dropped past the retention, and not kept elsewhere


def test_records_put_after_a_kinesis_split_go_to_the_open_children(clients: Clients) -> None:
    """moto routes by the first shard covering the hash key, the closed parent included; AWS (and the
    patched embedded Kinesis) routes to the open child covering it, so readers that finished the
    parent see every later record."""
    k = clients.kinesis
    k.create_stream(StreamName="split-me", ShardCount=1)
    parent = k.list_shards(StreamName="split-me")["Shards"][0]
    hi = int(parent["HashKeyRange"]["EndingHashKey"])
    k.split_shard(StreamName="split-me", ShardToSplit=parent["ShardId"], NewStartingHashKey=str(hi // 2))
    resp = k.put_records(StreamName="split-me", Records=[{"Data": b"x", "PartitionKey": f"key-{i}"}
                                                        for i in range(40)])
    shards = {r["ShardId"] for r in resp["Records"]}
    children = {s["ShardId"] for s in k.list_shards(StreamName="split-me")["Shards"]
                if s.get("ParentShardId") == parent["ShardId"]}
    assert shards == children  # both children, never the parent
    one = k.put_record(StreamName="split-me", Data=b"y", PartitionKey="z", ExplicitHashKey=str(hi - 1))
    assert one["ShardId"] in children


def test_a_kinesis_split_leaves_the_parents_records_and_their_sequence_numbers(clients: Clients) -> None:
    k = clients.kinesis
    k.create_stream(StreamName="keep-me", ShardCount=1)
    parent = k.list_shards(StreamName="keep-me")["Shards"][0]
    put = k.put_records(StreamName="keep-me", Records=[{"Data": str(i).encode(), "PartitionKey": f"p{i}"}
                                                      for i in range(5)])
    before = [r["SequenceNumber"] for r in put["Records"]]

    def parent_records() -> list[dict[str, Any]]:
        it = k.get_shard_iterator(StreamName="keep-me", ShardId=parent["ShardId"],
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        return list(k.get_records(ShardIterator=it)["Records"])

    arrived = [r["ApproximateArrivalTimestamp"] for r in parent_records()]
    time.sleep(1.1)
    k.split_shard(StreamName="keep-me", ShardToSplit=parent["ShardId"], NewStartingHashKey=str(2**127))
    after = parent_records()
    assert [r["SequenceNumber"] for r in after] == before
    assert [r["Data"] for r in after] == [str(i).encode() for i in range(5)]
    # the same records, not copies put again at the split (moto's, numbered from 1 again)
    assert [r["ApproximateArrivalTimestamp"] for r in after] == arrived
