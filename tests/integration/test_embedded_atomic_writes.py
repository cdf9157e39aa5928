"""The embedded DynamoDB applies each write atomically, as DynamoDB does: an atomic counter
updated by many clients at once hands out every number once."""

from __future__ import annotations

import threading

from lake.aws.clients import Clients
from lake.settings import Settings


def test_concurrent_atomic_counter_updates_hand_out_every_number_once(settings: Settings) -> None:
    Clients(settings).dynamodb.create_table(
        TableName="counters", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    got: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        ddb = Clients(settings).dynamodb
        for _ in range(40):
            out = ddb.update_item(TableName="counters", Key={"pk": {"S": "seq"}},
                                  UpdateExpression="SET n = if_not_exists(n, :zero) + :one",
                                  ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
                                  ReturnValues="UPDATED_NEW")
            with lock:
                got.append(int(out["Attributes"]["n"]["N"]))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 321))
