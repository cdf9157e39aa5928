"""`lake up` in one process, plain boto3 in another: changes reach the wired handlers."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import LakeUp

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
