"""LocalApp (lake/local/apps.py): a small app wired on the embedded stack — a table with a stream,
a function on it sending to a queue named by its environment, a worker on that queue — and the
lake archiving the app's table."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from lake.apps import App, Function, KinesisEvents, Queue, QueueEvents, StreamEvents, Table
from lake.errors import ConfigError
from lake.local.apps import LocalApp
from lake.local.up import EmbeddedLake
from tests.integration.test_triggers_sqs import start_lake

HERE = "tests.integration.test_local_app"
WORKED: list[str] = []


def on_change(event: dict[str, Any], context: Any) -> None:
    """Each new order becomes a job: the queue's URL comes from the function's environment."""
    sqs = boto3.client("sqs")  # reaches the embedded AWS through AWS_ENDPOINT_URL, as on Lambda
    for r in event["Records"]:
        if r["eventName"] == "INSERT":
            sqs.send_message(QueueUrl=os.environ["JOBS_URL"], MessageBody=r["dynamodb"]["Keys"]["id"]["S"])


def worker(event: dict[str, Any], context: Any) -> None:
    WORKED.extend(r["body"] for r in event["Records"])


def consumer_b(event: dict[str, Any], context: Any) -> None:
    """Reads the lake's Kinesis stream (the fan-out of every archived table's changes)."""


APP = App(
    "shop",
    tables=(Table("shop-orders", hash_key="id"),),
    queues=(Queue("shop-jobs"),),
    functions=(
        Function("on-change", f"{HERE}:on_change", environment=(("JOBS_URL", "${queue:shop-jobs}"),),
                 triggers=(StreamEvents("shop-orders", batch_size=10,
                                        filter_patterns=(json.dumps({"eventName": ["INSERT", "MODIFY"]}),)),)),
        Function("worker", f"{HERE}:worker", triggers=(QueueEvents("shop-jobs"),)),
        Function("consumer-b", f"{HERE}:consumer_b", triggers=(KinesisEvents(batch_size=50),)),
    ),
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLake]:
    lake = start_lake(tmp_path_factory.mktemp("local-app"))
    yield lake
    lake.stop()


def test_an_app_is_wired_its_chain_runs_and_its_table_reaches_the_lake(lake: EmbeddedLake) -> None:
    WORKED.clear()
    with LocalApp(APP, lake) as local:
        assert os.environ["JOBS_URL"] == local.resolve("${queue:shop-jobs}") == local.queue_urls["shop-jobs"]
        assert local.resolve("${table-stream:shop-orders}").startswith("arn:aws:dynamodb:")
        assert local.resolve("${lake-stream}") == lake.settings.kinesis_stream
        ddb = local.clients.dynamodb
        for i in range(3):
            ddb.put_item(TableName="shop-orders", Item={"id": {"S": f"o{i}"}, "total": {"N": str(i)}})
        ddb.update_item(TableName="shop-orders", Key={"id": {"S": "o0"}}, UpdateExpression="SET paid = :t",
                        ExpressionAttributeValues={":t": {"BOOL": True}})
        assert local.wait_idle(60)
        assert sorted(WORKED) == ["o0", "o1", "o2"]  # the MODIFY passed the filter but made no job
        changes = [r["eventName"] for e in local.events("on-change") for r in e["Records"]]
        assert sorted(changes) == ["INSERT", "INSERT", "INSERT", "MODIFY"]
        raw = local.clients.s3.list_objects_v2(Bucket=lake.settings.bucket, Prefix="raw/table=shop-orders/")
        assert raw.get("KeyCount", 0) >= 1  # the lake archived the app's table
        stats = local.stats()
        assert stats["worker:sqs:shop-jobs"]["succeeded"] == 3
        fanned = [base64.b64decode(r["kinesis"]["data"]) for e in local.events("consumer-b") for r in e["Records"]]
        assert sum(b"shop-orders" in d for d in fanned) == 4  # every change, through the lake's stream
    assert "JOBS_URL" not in os.environ  # stop() put the environment back
    # Started again (idempotent resources), the same app works on.
    with LocalApp(APP, lake) as again:
        lake.clients.dynamodb.put_item(TableName="shop-orders", Item={"id": {"S": "o9"}})  # type: ignore[union-attr]
        assert again.wait_idle(60)
    assert "o9" in WORKED


def test_two_values_for_one_variable_are_refused(lake: EmbeddedLake) -> None:
    app = App("clash", queues=(Queue("clash-a"), Queue("clash-b")), functions=(
        Function("f1", f"{HERE}:worker", environment=(("URL", "${queue:clash-a}"),)),
        Function("f2", f"{HERE}:worker", environment=(("URL", "${queue:clash-b}"),))))
    with pytest.raises(ConfigError, match="URL"):
        LocalApp(app, lake).start()
    assert "URL" not in os.environ  # nothing exported when start() fails
