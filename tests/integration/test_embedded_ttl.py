"""The embedded TTL sweeper keeps an expiry index: a pass touches the expired items only (issue 11),
and still expires exactly what DynamoDB would, however the item was written."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.aws.provision import provision
from lake.local.embedded import ACCOUNT_ID, sweep_ttl
from lake.settings import Settings
from tests.integration.test_embedded import stream_records

FIVE_YEARS = 5 * 365 * 24 * 3600


def backend(settings: Settings) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT_ID][settings.region]


def item(pk: str, expires: Any = None, **extra: Any) -> dict[str, Any]:
    out = {"pk": {"S": pk}, "sk": {"S": "1"}, **extra}
    if expires is not None:
        out["expires_at"] = expires if isinstance(expires, dict) else {"N": str(expires)}
    return out


def keys(clients: Clients) -> set[str]:
    return {i["pk"]["S"] for i in clients.dynamodb.scan(TableName="orders")["Items"]}


def test_a_pass_examines_the_expired_items_only(settings: Settings, clients: Clients,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    provision(settings, clients)
    now = time.time()
    be = backend(settings)
    for i in range(20_000):
        be.put_item("orders", item(f"live#{i}", int(now) + 3600 + i))
    for i in range(10):
        be.put_item("orders", item(f"old#{i}", int(now) - 10))
    (first,) = sweep_ttl(settings.region, now=now)
    assert first.expired == 10  # the first pass may list the table once to build the index

    from moto.dynamodb.models.table import Table

    def no_listing(self: Any) -> Any:
        raise AssertionError("a sweep pass listed the whole table")

    monkeypatch.setattr(Table, "all_items", no_listing)
    for i in range(5):
        be.put_item("orders", item(f"later#{i}", int(now) - 1))
    clients.dynamodb.update_item(TableName="orders", Key={"pk": {"S": "live#7"}, "sk": {"S": "1"}},
                                 UpdateExpression="SET expires_at = :t",
                                 ExpressionAttributeValues={":t": {"N": str(int(now) - 1)}})
    (second,) = sweep_ttl(settings.region, now=now)
    assert second.expired == 6
    assert second.examined <= 6
    (third,) = sweep_ttl(settings.region, now=now)
    assert (third.expired, third.examined) == (0, 0)
    (later,) = sweep_ttl(settings.region, now=int(now) + 3600 + 99.5)  # live#0 … live#99 are due
    assert later.expired == 99 and later.examined <= 100  # live#7 was already gone


def test_every_write_path_is_indexed(settings: Settings, clients: Clients) -> None:
    prov = provision(settings, clients)
    sweep_ttl(settings.region)  # the index exists (empty) before any write: writes must reach it
    ddb, now = clients.dynamodb, int(time.time())
    past, future = now - 60, now + 3600
    ddb.put_item(TableName="orders", Item=item("put", past))
    ddb.put_item(TableName="orders", Item=item("upd-to-past", future))
    ddb.update_item(TableName="orders", Key=item("upd-to-past"), UpdateExpression="SET expires_at = :t",
                    ExpressionAttributeValues={":t": {"N": str(past)}})
    ddb.update_item(TableName="orders", Key=item("upd-new"), UpdateExpression="SET expires_at = :t",
                    ExpressionAttributeValues={":t": {"N": str(past)}})
    ddb.put_item(TableName="orders", Item=item("upd-to-future", past))
    ddb.update_item(TableName="orders", Key=item("upd-to-future"), UpdateExpression="SET expires_at = :t",
                    ExpressionAttributeValues={":t": {"N": str(future)}})
    ddb.put_item(TableName="orders", Item=item("reput-without-ttl", past))
    ddb.put_item(TableName="orders", Item=item("reput-without-ttl"))
    ddb.put_item(TableName="orders", Item=item("deleted", past))
    ddb.delete_item(TableName="orders", Key=item("deleted"))
    ddb.put_item(TableName="orders", Item=item("removed-attr", past))
    ddb.update_item(TableName="orders", Key=item("removed-attr"), UpdateExpression="REMOVE expires_at")
    ddb.batch_write_item(RequestItems={"orders": [{"PutRequest": {"Item": item(f"batch#{i}", past)}}
                                                  for i in range(3)]})
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "orders", "Item": item("tx-put", past)}},
        {"Update": {"TableName": "orders", "Key": item("tx-upd"), "UpdateExpression": "SET expires_at = :t",
                    "ExpressionAttributeValues": {":t": {"N": str(past)}}}},
    ])
    ddb.execute_statement(Statement=f"INSERT INTO orders VALUE {{'pk': 'partiql', 'sk': '1', 'expires_at': {past}}}")
    ddb.put_item(TableName="orders", Item=item("string-ttl", {"S": str(past)}))
    ddb.put_item(TableName="orders", Item=item("set-ttl", {"NS": [str(past)]}))
    ddb.put_item(TableName="orders", Item=item("too-old", now - FIVE_YEARS - 86400))
    ddb.put_item(TableName="orders", Item=item("future", future))

    (result,) = sweep_ttl(settings.region, now=now)
    expired = {"put", "upd-to-past", "upd-new", "batch#0", "batch#1", "batch#2", "tx-put", "tx-upd", "partiql"}
    assert result.expired == len(expired)
    assert keys(clients) == {"upd-to-future", "reput-without-ttl", "removed-attr", "string-ttl", "set-ttl",
                             "too-old", "future"}
    removes = [r for r in stream_records(clients, prov.stream_arns["orders"]) if r["eventName"] == "REMOVE"]
    by_service = {r["dynamodb"]["Keys"]["pk"]["S"] for r in removes
                  if r.get("userIdentity") == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}}
    assert by_service == expired
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in removes if "userIdentity" not in r] == ["deleted"]


def test_the_index_follows_the_ttl_attribute_and_the_table(settings: Settings, clients: Clients) -> None:
    provision(settings, clients)
    ddb, now = clients.dynamodb, int(time.time())
    sweep_ttl(settings.region)
    ddb.put_item(TableName="orders", Item=item("a", now - 60, gone_at={"N": str(now + 3600)}))
    ddb.put_item(TableName="orders", Item=item("b", now + 3600, gone_at={"N": str(now - 60)}))
    ddb.update_time_to_live(TableName="orders",
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": "gone_at"})
    assert [r.expired for r in sweep_ttl(settings.region, now=now)] == [1]
    assert keys(clients) == {"a"}
    ddb.update_time_to_live(TableName="orders",
                            TimeToLiveSpecification={"Enabled": False, "AttributeName": "gone_at"})
    assert sweep_ttl(settings.region, now=now + 7200) == []
    assert keys(clients) == {"a"}
    # deleted and re-created under the same name: a new table, a new index
    ddb.delete_table(TableName="orders")
    provision(settings, clients)
    ddb.put_item(TableName="orders", Item=item("c", now - 60))
    assert [r.expired for r in sweep_ttl(settings.region, now=now)] == [1]
    assert keys(clients) == set()


def test_a_table_with_its_index_can_be_copied_and_pickled(settings: Settings, clients: Clients) -> None:
    """moto deep-copies tables (transactions, backups); a persisted lake may pickle them."""
    import copy
    import pickle

    provision(settings, clients)
    now = int(time.time())
    clients.dynamodb.put_item(TableName="orders", Item=item("a", now - 60))
    sweep_ttl(settings.region, now=now - 3600)  # builds the index, expires nothing
    table = backend(settings).get_table("orders")
    for clone in (copy.deepcopy(table), pickle.loads(pickle.dumps(table))):
        index = clone._lake_ttl_index
        assert len(index.heap) == 1 and index.lock is not table._lake_ttl_index.lock
        index.note(clone.get_item(*backend(settings).get_keys_value(clone, item("a"))))
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    pickle.loads(pickle.dumps(dynamodbstreams_backends[ACCOUNT_ID][settings.region]))
