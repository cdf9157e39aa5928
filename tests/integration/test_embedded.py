"""The embedded AWS: provisioning is idempotent, TTL expiry looks like DynamoDB's, errors name things."""

from __future__ import annotations

import time

import pytest

from lake.aws.clients import Clients
from lake.aws.provision import provision, stream_arn
from lake.errors import NotFoundError
from lake.local.embedded import EmbeddedAWS, free_port, sweep_ttl
from lake.settings import Settings


def stream_records(clients: Clients, arn: str) -> list[dict]:
    st = clients.dynamodbstreams
    shard = st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = st.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return st.get_records(ShardIterator=it, Limit=1000)["Records"]


def test_provision_creates_everything_once(settings: Settings, clients: Clients) -> None:
    s = settings.replace(source_tables=("orders", "users:user_id:-"))
    first = provision(s, clients)
    assert set(first.stream_arns) == {"orders", "users"}
    assert len(first.created) == 6  # bucket, 2 tables, stream, database, queue
    again = provision(s, clients)
    assert again.created == [] and again.stream_arns == first.stream_arns
    desc = clients.dynamodb.describe_table(TableName="users")["Table"]
    assert [k["AttributeName"] for k in desc["KeySchema"]] == ["user_id"]
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert clients.kinesis.describe_stream_summary(StreamName=s.kinesis_stream)["StreamDescriptionSummary"]
    assert clients.glue.get_database(Name=s.glue_database)["Database"]["Name"] == s.glue_database


def test_ttl_sweep_removes_expired_items_as_the_service(settings: Settings, clients: Clients) -> None:
    prov = provision(settings, clients)
    now = time.time()
    ddb = clients.dynamodb
    for pk, expires in (("old", {"N": str(int(now) - 5)}), ("new", {"N": str(int(now) + 999)}),
                        ("odd", {"S": "yesterday"})):
        ddb.put_item(TableName="orders", Item={"pk": {"S": pk}, "sk": {"S": "1"}, "expires_at": expires})
    result = {r.table: r.expired for r in sweep_ttl(settings.region, now=now)}
    assert result == {"orders": 1}
    remaining = {i["pk"]["S"] for i in ddb.scan(TableName="orders")["Items"]}
    assert remaining == {"new", "odd"}
    records = stream_records(clients, prov.stream_arns["orders"])
    removes = [r for r in records if r["eventName"] == "REMOVE"]
    assert len(removes) == 1 and removes[0]["dynamodb"]["Keys"]["pk"] == {"S": "old"}
    assert removes[0]["userIdentity"] == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
    assert all("userIdentity" not in r for r in records if r["eventName"] == "INSERT")


def test_missing_table_is_named(settings: Settings, clients: Clients) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        stream_arn(clients, "nope")


def test_embedded_aws_picks_a_free_port_and_refuses_a_taken_one() -> None:
    with EmbeddedAWS(port=0) as a:
        assert a.port and a.port > 0
        with pytest.raises(OSError, match=f"127.0.0.1:{a.port}"):
            EmbeddedAWS(port=a.port).start()
    assert free_port() > 0


def test_update_of_a_missing_item_is_one_insert(settings: Settings, clients: Clients) -> None:
    prov = provision(settings, clients)
    ddb = clients.dynamodb
    ddb.update_item(TableName="orders", Key={"pk": {"S": "u"}, "sk": {"S": "1"}},
                    UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "1"}})
    ddb.update_item(TableName="orders", Key={"pk": {"S": "u"}, "sk": {"S": "1"}},
                    UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "2"}})
    ddb.put_item(TableName="orders", Item={"pk": {"S": "v"}, "sk": {"S": "1"}})
    records = stream_records(clients, prov.stream_arns["orders"])
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "INSERT"]
    assert records[0]["dynamodb"]["NewImage"]["n"] == {"N": "1"}
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_binary_keys_are_not_encoded_twice(settings: Settings, clients: Clients) -> None:
    s = settings.replace(source_tables=("blobs:id/B:-",))
    prov = provision(s, clients)
    clients.dynamodb.put_item(TableName="blobs", Item={"id": {"B": b"\x01\x02"}, "v": {"B": b"\x03"}})
    (record,) = stream_records(clients, prov.stream_arns["blobs"])
    assert record["dynamodb"]["Keys"] == {"id": {"B": b"\x01\x02"}}  # boto3 decodes the base64
    assert record["dynamodb"]["NewImage"]["id"] == {"B": b"\x01\x02"}
