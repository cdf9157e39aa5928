"""Helpers for the local-runtime tests: resources on the embedded AWS and recording handlers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from lake.aws.clients import Clients
from lake.aws.provision import ensure_kinesis, ensure_queue, ensure_table
from lake.settings import TableSpec


class Recorder:
    """A handler that records every event it gets; ``fail`` decides per event what to do."""

    def __init__(self, reply: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.reply = reply
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            self.events.append(event)
            self.contexts.append(context)
        return self.reply(event) if self.reply else None

    @property
    def batches(self) -> list[list[str]]:
        return [[seq_of(r) for r in e["Records"]] for e in self.events]

    def delivered(self) -> list[str]:
        return [s for b in self.batches for s in b]


HANDLED: list[dict[str, Any]] = []


def module_handler(event: dict[str, Any], context: Any) -> None:
    """A handler named as ``tests.runtime_helpers:module_handler``."""
    HANDLED.append(event)


def seq_of(record: dict[str, Any]) -> str:
    if "kinesis" in record:
        return str(record["kinesis"]["sequenceNumber"])
    return str(record["dynamodb"]["SequenceNumber"])


def make_table(clients: Clients, name: str = "orders") -> str:
    arn, _ = ensure_table(clients, TableSpec(name))
    return arn


def put_items(clients: Clients, n: int, table: str = "orders", start: int = 0, **extra: Any) -> None:
    for i in range(start, start + n):
        item = {"pk": {"S": f"item-{i:04d}"}, "sk": {"S": "0"}, "n": {"N": str(i)}}
        item.update(extra)
        clients.dynamodb.put_item(TableName=table, Item=item)


def stream_records(clients: Clients, arn: str) -> list[dict[str, Any]]:
    """The (boto3-parsed) records of a one-shard DynamoDB stream."""
    st = clients.dynamodbstreams
    shard = st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = st.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return list(st.get_records(ShardIterator=it, Limit=1000)["Records"])


def stream_seqs(clients: Clients, arn: str) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in stream_records(clients, arn)]


def stream_arrivals(clients: Clients, arn: str) -> list[float]:
    """When each record was written, epoch seconds (what the runtime measures record age from)."""
    return [r["dynamodb"]["ApproximateCreationDateTime"].timestamp() for r in stream_records(clients, arn)]


def make_kinesis(clients: Clients, name: str = "events", shards: int = 1) -> str:
    arn, _ = ensure_kinesis(clients, name, shards)
    return arn


def put_kinesis(clients: Clients, n: int, stream: str = "events", start: int = 0) -> list[str]:
    return [
        clients.kinesis.put_record(StreamName=stream, Data=json.dumps({"i": i}).encode(),
                                   PartitionKey=f"k{i}")["SequenceNumber"]
        for i in range(start, start + n)
    ]


def make_queue(clients: Clients, name: str = "esm-dlq") -> tuple[str, str]:
    url, arn, _ = ensure_queue(clients, name)
    return url, arn


def drain_queue(clients: Clients, url: str, expect: int = 0, timeout: float = 3.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        resp = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = resp.get("Messages", [])
        for m in msgs:
            out.append(json.loads(m["Body"]))
            clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if not msgs and (len(out) >= expect or time.monotonic() > deadline):
            return out


def fresh_moto() -> None:
    """Forget every resource of the embedded AWS, as a new `lake up` process starts with
    (moto's backends are per process: every server in it shares them)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
