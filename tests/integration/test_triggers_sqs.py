"""SQS event source mappings (lake/local/triggers/sqs.py) on the embedded stack: Lambda's event
shape, partial batch failures, redrive to the dead-letter queue, FIFO order under a failing message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lake.apps import App, Function, Queue, QueueEvents
from lake.local.apps import LocalApp
from lake.local.up import EmbeddedLake
from lake.settings import Settings

# What the handlers below do with a message body: "fail" always, "fail-once" the first time.
_seen: dict[str, int] = {}
_lock = threading.Lock()


def handler(event: dict[str, Any], context: Any) -> Any:
    """Reports the messages whose body asks to fail (ReportBatchItemFailures)."""
    failures = []
    for r in event["Records"]:
        body = json.loads(r["body"])
        with _lock:
            _seen[body["id"]] = _seen.get(body["id"], 0) + 1
            times = _seen[body["id"]]
        if body.get("fail") == "always" or (body.get("fail") == "once" and times == 1):
            failures.append({"itemIdentifier": r["messageId"]})
    return {"batchItemFailures": failures}


def raising(event: dict[str, Any], context: Any) -> None:
    for r in event["Records"]:
        if json.loads(r["body"]).get("fail") == "always":
            raise RuntimeError("poison")


def start_lake(tmp: Path) -> EmbeddedLake:
    s = Settings.resolve({"state_dir": str(tmp / "state")}, environ={}, config_path=None)
    lake = EmbeddedLake(s, port=0, ttl_interval_s=None, poll_interval_s=0.02, status_interval_s=None)
    lake.handler_processes = False
    lake.start()
    return lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLake]:
    lake = start_lake(tmp_path_factory.mktemp("triggers-sqs"))
    yield lake
    lake.stop()


HERE = "tests.integration.test_triggers_sqs"


def send(local: LocalApp, queue: str, bodies: list[dict[str, Any]], group: str | None = None) -> None:
    url = local.queue_urls[queue]
    entries = []
    for i, b in enumerate(bodies):
        e: dict[str, Any] = {"Id": str(i), "MessageBody": json.dumps(b)}
        if group is not None:
            e |= {"MessageGroupId": b.get("group", group), "MessageDeduplicationId": b["id"]}
        entries.append(e)
    local.clients.sqs.send_message_batch(QueueUrl=url, Entries=entries)


def test_a_batch_has_lambdas_shape_and_only_reported_failures_come_back(lake: EmbeddedLake) -> None:
    app = App("sqs-partial", queues=(Queue("sp-jobs", visibility_timeout_s=2),), functions=(
        Function("sp-worker", f"{HERE}:handler",
                 triggers=(QueueEvents("sp-jobs", batch_size=3, batching_window_s=1),)),))
    with LocalApp(app, lake) as local:
        send(local, "sp-jobs", [{"id": "p1"}, {"id": "p2", "fail": "once"}, {"id": "p3"}])
        assert local.wait_idle(30)
        events = local.events("sp-worker")
        stats = local.stats()["sp-worker:sqs:sp-jobs"]
    first = events[0]["Records"]
    assert [json.loads(r["body"])["id"] for r in first] == ["p1", "p2", "p3"]
    r = first[0]
    assert r["eventSource"] == "aws:sqs" and r["eventSourceARN"].endswith(":sp-jobs") and r["awsRegion"] == "us-east-1"
    assert {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody"} <= set(r)
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        r["attributes"])
    # Only p2 was reported: p1 and p3 were deleted, p2 came back alone (receive count 2) and then succeeded.
    assert [[json.loads(x["body"])["id"] for x in e["Records"]] for e in events[1:]] == [["p2"]]
    assert int(events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"]) >= 2
    assert stats["succeeded"] == 3 and stats["failed_items"] == 1 and stats["invocations"] == 2


def test_a_message_failing_every_time_is_redriven_to_the_dead_letter_queue(lake: EmbeddedLake) -> None:
    app = App("sqs-dlq", queues=(Queue("dl-dead"), Queue("dl-jobs", visibility_timeout_s=0, dead_letter="dl-dead",
                                                         max_receive_count=2)),
              functions=(Function("dl-worker", f"{HERE}:raising", triggers=(QueueEvents("dl-jobs", batch_size=1),)),))
    with LocalApp(app, lake) as local:
        send(local, "dl-jobs", [{"id": "d-ok"}, {"id": "d-poison", "fail": "always"}])
        assert local.wait_idle(30)
        got = local.clients.sqs.receive_message(QueueUrl=local.queue_urls["dl-dead"], MaxNumberOfMessages=10)
        stats = local.stats()["dl-worker:sqs:dl-jobs"]
        poison = [e for e in local.events("dl-worker") if "d-poison" in e["Records"][0]["body"]]
        left = local.clients.sqs.get_queue_attributes(QueueUrl=local.queue_urls["dl-jobs"],
                                                      AttributeNames=["ApproximateNumberOfMessages"])
    assert [json.loads(m["Body"])["id"] for m in got.get("Messages", [])] == ["d-poison"]
    assert len(poison) == 2  # maxReceiveCount deliveries, then moto's redrive moved it
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert stats["dead_lettered"] == 1 and stats["function_errors"] == 2 and stats["succeeded"] == 1


def test_fifo_a_failing_message_blocks_its_group_only_and_order_is_kept(lake: EmbeddedLake) -> None:
    app = App("sqs-fifo", queues=(Queue("ff-jobs.fifo", fifo=True, visibility_timeout_s=1),), functions=(
        Function("ff-worker", f"{HERE}:handler", triggers=(QueueEvents("ff-jobs.fifo", batch_size=10),)),))
    with LocalApp(app, lake) as local:
        local.stop()  # the messages are all on the queue before the first receive
        bodies = [{"id": "a1", "group": "a"}, {"id": "b1", "group": "b"}, {"id": "a2", "group": "a", "fail": "once"},
                  {"id": "b2", "group": "b"}, {"id": "a3", "group": "a"}, {"id": "b3", "group": "b"}]
        send(local, "ff-jobs.fifo", bodies, group="g")
        local.start()
        assert local.wait_idle(30)
        events = local.events("ff-worker")
        stats = local.stats()["ff-worker:sqs:ff-jobs.fifo"]
    batches = [[json.loads(r["body"])["id"] for r in e["Records"]] for e in events]
    # The handler reported only a2; a3 (after it in group a) was kept back all the same, the
    # whole of group b was done, and a2 then a3 came back in order after the visibility timeout.
    assert batches == [["a1", "b1", "a2", "b2", "a3", "b3"], ["a2", "a3"]]
    first = events[0]["Records"][0]["attributes"]
    assert first["MessageGroupId"] == "a" and first["MessageDeduplicationId"] == "a1" and "SequenceNumber" in first
    assert stats["blocked_in_group"] == 1 and stats["failed_items"] == 1 and stats["succeeded"] == 6


def test_fifo_one_at_a_time_a_failed_message_holds_back_its_group_while_others_go_on(lake: EmbeddedLake) -> None:
    app = App("sqs-fifo1", queues=(Queue("f1-jobs.fifo", fifo=True, visibility_timeout_s=1),), functions=(
        Function("f1-worker", f"{HERE}:handler", triggers=(QueueEvents("f1-jobs.fifo", batch_size=1),)),))
    with LocalApp(app, lake) as local:
        local.stop()
        bodies = [{"id": "x1", "group": "x"}, {"id": "x2", "group": "x", "fail": "once"}, {"id": "x3", "group": "x"},
                  {"id": "y1", "group": "y"}, {"id": "y2", "group": "y"}]
        send(local, "f1-jobs.fifo", bodies, group="g")
        local.start()
        assert local.wait_idle(30)
        order = [json.loads(e["Records"][0]["body"])["id"] for e in local.events("f1-worker")]
    x = [i for i in order if i.startswith("x")]
    assert x == ["x1", "x2", "x2", "x3"]  # x3 never before x2's success
    assert [i for i in order if i.startswith("y")] == ["y1", "y2"]
    # group y went on while x2 waited for its visibility timeout
    assert order.index("y2") < len(order) - 1 - order[::-1].index("x2")
