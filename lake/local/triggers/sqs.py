"""An SQS event source mapping, with Lambda's event shape and failure semantics.

* A batch (up to ``batch_size``, gathered for at most ``batching_window_s`` on the clock) is
  one invocation; success deletes it.
* A function error (raise, timeout, malformed reply) deletes nothing: the messages come back
  after the queue's visibility timeout, and the queue's redrive policy (moto applies it on
  the receive after ``maxReceiveCount``) moves them to its dead-letter queue.
* With ReportBatchItemFailures the reported messages stay and the others are deleted.
* FIFO: a message group is delivered in order. When a message fails, every later message of
  its group in the batch is kept back too (not deleted, whatever the reply says), so none of
  them can be processed before it; moto delivers nothing more of a group while one of its
  messages is in flight. Other groups go on. Only the first kept message of a group stays in
  flight; the later ones are made visible again (moto 5.2.5 delivers a group out of order
  when two of its messages come back together: :meth:`SqsMapping.release_behind_first`).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from lake.aws.clients import Clients
from lake.local.runtime.invoke import outcome
from lake.local.triggers.base import FunctionTarget, QueuePoller

log = logging.getLogger("lake.local.triggers")

_FIFO_ATTRIBUTES = ("MessageGroupId", "MessageDeduplicationId", "SequenceNumber")
_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
               "AWSTraceHeader", "DeadLetterQueueSourceArn", *_FIFO_ATTRIBUTES)


def message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS's ``MessageAttributes`` as Lambda's ``messageAttributes`` (camel-cased, lists present)."""
    out = {}
    for name, a in attributes.items():
        v: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": a.get("DataType", "String")}
        if "StringValue" in a:
            v["stringValue"] = a["StringValue"]
        if "BinaryValue" in a:
            raw = a["BinaryValue"]
            v["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes | bytearray) else raw
        out[name] = v
    return out


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received SQS message as Lambda's SQS event record."""
    attrs = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: str(attrs[k]) for k in _ATTRIBUTES if k in attrs},
        "messageAttributes": message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class SqsMapping(QueuePoller):
    """Polls ``queue_url`` for ``function`` (one poller: batches follow one another)."""

    def __init__(self, name: str, clients: Clients, function: FunctionTarget, queue_url: str, queue_arn: str, *,
                 batch_size: int = 10, batching_window_s: float = 0.0, report_batch_item_failures: bool = False,
                 fifo: bool = False, max_receive_count: int | None = None, poll_interval_s: float = 0.05) -> None:
        super().__init__(name, clients, queue_url, batch_size=batch_size, poll_interval_s=poll_interval_s)
        self.function, self.queue_arn = function, queue_arn
        self.batching_window_s = batching_window_s
        self.report_batch_item_failures = report_batch_item_failures
        self.fifo = fifo
        self.max_receive_count = max_receive_count  # of the queue's redrive policy, for the counters

    def receive(self, count: int | None = None) -> list[dict[str, Any]]:
        messages = super().receive()
        if not messages or self.batching_window_s <= 0:
            return messages
        # MaximumBatchingWindowInSeconds: gather until the batch is full or the window has passed.
        clock = self.function.clock
        deadline = clock.monotonic() + self.batching_window_s
        while len(messages) < self.batch_size and clock.monotonic() < deadline and not self._stop.is_set():
            more = super().receive(self.batch_size - len(messages))
            if more:
                # A message visible again at once (visibility timeout 0) is the same record: once per batch.
                ids = {m["MessageId"] for m in more}
                messages = [m for m in messages if m["MessageId"] not in ids] + more
            else:
                clock.sleep(min(self.poll_interval_s, max(0.0, deadline - clock.monotonic())) or self.poll_interval_s)
        return messages

    def handle(self, messages: list[dict[str, Any]]) -> None:
        region = self.clients.settings.region
        records = [sqs_record(m, self.queue_arn, region) for m in messages]
        ids = [r["messageId"] for r in records]
        self.stats.add(invocations=1)
        kind, result = self.function.call(self.name, {"Records": records})
        done = outcome(kind, result, ids, self.report_batch_item_failures)
        if done.ok:
            failed: set[str] = set()
        elif done.failed_items:
            failed = set(done.failed_items)
        else:
            failed = set(ids)
        if failed:
            self.stats.add(function_errors=1)
        blocked: set[str] = set()
        if self.fifo and failed:
            # Strict order per message group: nothing after a failed message of its group is done.
            stopped_groups: set[str] = set()
            for r in records:
                group = r["attributes"].get("MessageGroupId", "")
                if r["messageId"] in failed:
                    stopped_groups.add(group)
                elif group in stopped_groups:
                    blocked.add(r["messageId"])
        keep = failed | blocked
        done_messages = [m for m in messages if m["MessageId"] not in keep]
        if done_messages:
            self.delete(done_messages)
        if self.fifo and keep:
            self.release_behind_first(messages, records, keep)
        if self.max_receive_count:
            dead = sum(1 for m in messages if m["MessageId"] in keep
                       and int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)) >= self.max_receive_count)
            if dead:
                self.stats.add(dead_lettered=dead)
        self.stats.add(succeeded=len(done_messages), failed_items=len(failed), blocked_in_group=len(blocked))

    def release_behind_first(self, messages: list[dict[str, Any]], records: list[dict[str, Any]],
                             keep: set[str]) -> None:
        """Per message group, only the first message kept stays in flight; the later ones are made
        visible again at once, and wait behind it (SQS delivers nothing of a group while one of its
        messages is in flight).

        Left in flight together they would come back together, and moto 5.2.5 then delivers
        them out of order: its receive skips the first (a later one of the group still counts
        as pending) and hands out the second.
        """
        first_of_group: set[str] = set()
        release = []
        for m, r in zip(messages, records, strict=True):
            if m["MessageId"] not in keep:
                continue
            group = r["attributes"].get("MessageGroupId", "")
            if group in first_of_group:
                release.append(m)
            first_of_group.add(group)
        for i in range(0, len(release), 10):
            self.clients.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, m in enumerate(release[i:i + 10])])

