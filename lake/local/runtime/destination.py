"""The on-failure destination of a mapping: where the records it gave up on go, with the reason.

An SQS queue gets messages shaped like AWS's for stream sources, plus the full records and
the reason (AWS's carry only coordinates; locally the records are what can be re-driven).
A batch too large for one message is split across several; a single record too large
for any message is written to a file under the runtime's state directory, which the
message names. Without a queue the records are discarded, counted and logged loudly. A
queue that cannot be reached holds the shard: moving on would pass the records in the
checkpoint and lose them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lake.aws.clients import Clients, translate
from lake.aws.errors import AWS_ERRORS
from lake.clock import Clock
from lake.errors import NotFoundError
from lake.invocation import Outcome
from lake.local.runtime.events import Condition, SourceKind, StreamRecord, dumps_anything, failure_message
from lake.local.runtime.mapping import MappingStats

log = logging.getLogger("lake.local.runtime")

# SQS refuses bodies over 256 KiB; leave room for the envelope's own growth.
MAX_MESSAGE_BYTES = 250_000


def queue_url(clients: Clients, dest: str) -> str:
    """The URL of the queue ``dest`` (an ARN or a URL) names; :class:`NotFoundError` if it is missing."""
    sqs = clients.sqs
    try:
        if dest.startswith("arn:"):
            parts = dest.split(":")
            return str(sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])
        sqs.get_queue_attributes(QueueUrl=dest, AttributeNames=["QueueArn"])
        return dest
    except AWS_ERRORS as e:
        err = translate(e, "SQS queue", dest)
        raise (NotFoundError("SQS queue", dest, "the on-failure destination") if isinstance(
            err, NotFoundError) else err) from e


class FailureDestination:
    """Sends failed records of one mapping to its queue (``url``), or discards them if it has none."""

    def __init__(self, clients: Clients, url: str | None, kind: SourceKind, stream_arn: str, function_name: str,
                 function_arn: str, stats: MappingStats, clock: Clock, stopping: threading.Event,
                 spill_dir: Path | None = None) -> None:
        self.clients, self.url = clients, url
        self.kind, self.stream_arn = kind, stream_arn
        self.function_name, self.function_arn = function_name, function_arn
        self.stats, self.clock, self.stopping = stats, clock, stopping
        self.spill_dir = spill_dir

    def send(self, shard_id: str, records: list[StreamRecord], condition: Condition, invocations: int,
             request_id: str, last: Outcome | None, reason: str = "") -> bool:
        """Report ``records`` as failed with ``condition`` and ``reason``; False if the runtime
        stopped while the queue was unreachable (then not all was sent: the records are still pending)."""
        first, final = records[0].seq, records[-1].seq
        reason = reason or (last.error if last and last.error else condition)
        if not self.url:
            self.stats.add(records_discarded=len(records))
            log.error("%s: %d record(s) of shard %s (%s..%s) DISCARDED after %s, and the mapping has no "
                      "on-failure destination: %s", self.function_name, len(records), shard_id, first, final,
                      condition, reason)
            return True
        request_id = request_id or str(uuid.uuid4())
        bodies = self._bodies(shard_id, records, condition, invocations, request_id, last, reason)
        for body in bodies:
            if not self._put(body, shard_id, first, final):
                return False
        self.stats.add(records_to_destination=len(records), destination_messages=len(bodies))
        log.warning("%s: %d record(s) of shard %s (%s..%s) sent to the on-failure destination (%s): %s",
                    self.function_name, len(records), shard_id, first, final, condition,
                    reason.splitlines()[0] if reason else "")
        return True

    def _message(self, shard_id: str, records: Sequence[StreamRecord], condition: Condition, invocations: int,
                 request_id: str, last: Outcome | None, reason: str, with_records: bool = True) -> dict[str, Any]:
        return failure_message(
            kind=self.kind, records=records, shard_id=shard_id, stream_arn=self.stream_arn,
            function_arn=self.function_arn, request_id=request_id, condition=condition,
            invoke_count=invocations, function_error=last.function_error if last else None,
            now=self.clock.now(), reason=reason, with_records=with_records,
        )

    def _bodies(self, shard_id: str, records: list[StreamRecord], condition: Condition, invocations: int,
                request_id: str, last: Outcome | None, reason: str) -> list[str]:
        """One message body for ``records`` if it fits, else halves of them, down to one record
        per message; a record too large for any message is spilled to a file the message names."""
        msg = self._message(shard_id, records, condition, invocations, request_id, last, reason)
        body = dumps_anything(msg)
        if len(body) <= MAX_MESSAGE_BYTES:
            return [body.decode()]
        if len(records) > 1:
            half = len(records) // 2
            return (self._bodies(shard_id, records[:half], condition, invocations, request_id, last, reason)
                    + self._bodies(shard_id, records[half:], condition, invocations, request_id, last, reason))
        msg = self._message(shard_id, records, condition, invocations, request_id, last, reason, with_records=False)
        msg["recordFile"] = str(self._spill(records[0], dumps_anything(records[0].event)))
        return [dumps_anything(msg).decode()]

    def _spill(self, record: StreamRecord, body: bytes) -> Path:
        if self.spill_dir is None:
            raise ValueError("a record too large for the queue and no directory to keep it in")
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(self.stream_arn.encode()).hexdigest()[:12]
        path = self.spill_dir / f"{digest}-{record.seq}.json"
        path.write_bytes(body)
        return path

    def _put(self, body: str, shard_id: str, first: str, final: str) -> bool:
        attempt = 0
        while True:
            try:
                self.clients.sqs.send_message(QueueUrl=self.url, MessageBody=body)
                return True
            except AWS_ERRORS as e:
                # The shard waits: moving on would lose the records, since the checkpoint would pass them.
                attempt += 1
                log.error("%s: could not send the failure of shard %s (%s..%s) to %s (attempt %d), "
                          "the shard waits: %s", self.function_name, shard_id, first, final,
                          self.url, attempt, e)
                if self.clock.wait(self.stopping, min(0.2 * 2 ** min(attempt, 5), 5.0)):
                    return False
