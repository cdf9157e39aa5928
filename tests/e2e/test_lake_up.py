"""`lake up` in one process, plain boto3 in another: changes reach the wired handlers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import REPO, LakeUp

pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def sink_records(up: LakeUp) -> list[dict]:
    if not up.sink.exists():
        return []
    return [json.loads(line) for line in up.sink.read_text().splitlines() if line.strip()]


def test_external_put_item_reaches_the_wired_handler(lake_up: LakeUp) -> None:
    out = "".join(lake_up.output)
    assert "AWS_ENDPOINT_URL=" + lake_up.endpoint in out  # tells the user how to point tools at it
    ddb = lake_up.client("dynamodb")
    assert "orders" in ddb.list_tables()["TableNames"]
    ddb.put_item(TableName="orders", Item={"pk": {"S": "CUSTOMER#1"}, "sk": {"S": "ORDER#1"},
                                           "amount": {"N": "12345678901234567890.123456789012345678"}})
    got = wait_for(lambda: sink_records(lake_up))
    assert len(got) == 1
    rec = got[0]["record"]
    assert rec["eventName"] == "INSERT" and rec["eventSource"] == "aws:dynamodb"
    assert rec["dynamodb"]["NewImage"]["amount"] == {"N": "12345678901234567890.123456789012345678"}
    assert rec["eventSourceARN"].startswith("arn:aws:dynamodb:us-east-1:")

    ddb.delete_item(TableName="orders", Key={"pk": {"S": "CUSTOMER#1"}, "sk": {"S": "ORDER#1"}})
    got = wait_for(lambda: len(sink_records(lake_up)) >= 2 and sink_records(lake_up))
    assert [r["record"]["eventName"] for r in got] == ["INSERT", "REMOVE"]
    assert lake_up.stop() == 0  # SIGTERM stops it cleanly
    assert any("stopping" in line for line in lake_up.output)


def lake_query(up: LakeUp, sql: str) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "lake.cli", "query", "--endpoint-url", up.endpoint, "--bucket", "e2e-lake",
         "--format", "json", sql],
        cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))},
    )
    if proc.returncode != 0:
        return []
    text = proc.stdout.strip()
    return json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]


def test_external_writes_are_queryable_with_lake_query(lake_up: LakeUp) -> None:
    ddb = lake_up.client("dynamodb")
    for i in range(5):
        ddb.put_item(TableName="orders", Item={"pk": {"S": f"C#{i}"}, "sk": {"S": "O#1"}, "status": {"S": "new"},
                                               "updated_by": {"S": "e2e"}})
    ddb.update_item(TableName="orders", Key={"pk": {"S": "C#0"}, "sk": {"S": "O#1"}},
                    UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": "paid"}})
    ddb.delete_item(TableName="orders", Key={"pk": {"S": "C#4"}, "sk": {"S": "O#1"}})

    rows = wait_for(lambda: (r := lake_query(lake_up, "SELECT key, event_name FROM changes ORDER BY key"))
                    and len(r) >= 7 and r, timeout=60, interval=1.0)
    assert rows, "".join(lake_up.output[-30:])
    assert sorted((r["key"], r["event_name"]) for r in rows) == sorted(
        [(f"pk=C#{i}|sk=O#1", "INSERT") for i in range(5)]
        + [("pk=C#0|sk=O#1", "MODIFY"), ("pk=C#4|sk=O#1", "REMOVE")])

    state = lake_query(lake_up, "SELECT key FROM current_state ORDER BY key")
    assert [r["key"] for r in state] == [f"pk=C#{i}|sk=O#1" for i in range(4)]
    audit = lake_query(lake_up, "SELECT key, attribute, old_value, new_value, actor FROM audit_trail "
                                "WHERE event_name = 'MODIFY'")
    assert audit == [{"key": "pk=C#0|sk=O#1", "attribute": "status", "old_value": '"new"',
                      "new_value": '"paid"', "actor": "e2e"}]


def test_a_table_created_later_with_a_stream_is_wired(lake_up: LakeUp) -> None:
    ddb = lake_up.client("dynamodb")
    ddb.create_table(
        TableName="invoices", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.put_item(TableName="invoices", Item={"id": {"S": "INV-1"}, "total": {"N": "10.50"}})
    got = wait_for(lambda: sink_records(lake_up))
    assert [r["record"]["dynamodb"]["Keys"] for r in got] == [{"id": {"S": "INV-1"}}]
    assert ":table/invoices/stream/" in got[0]["record"]["eventSourceARN"]
    s3 = lake_up.client("s3")
    keys = wait_for(lambda: [o["Key"] for o in s3.list_objects_v2(Bucket="e2e-lake", Prefix="raw/table=invoices/")
                             .get("Contents", [])])
    assert keys and keys[0].endswith(".json.gz")
