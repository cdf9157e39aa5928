"""The on-failure destination of a mapping: where the coordinates of records it gave up on go.

An SQS queue gets one message per failed batch, shaped like AWS's; without a queue the
records are discarded, counted and logged loudly. A queue that cannot be reached holds
the shard: moving on would pass the records in the checkpoint and lose them.
"""

from __future__ import annotations

import logging
import threading
import uuid

import orjson

from lake.aws.clients import Clients, translate
from lake.aws.errors import AWS_ERRORS
from lake.clock import Clock
from lake.errors import NotFoundError
from lake.invocation import Outcome
from lake.local.runtime.events import Condition, SourceKind, StreamRecord, failure_message
from lake.local.runtime.mapping import MappingStats

log = logging.getLogger("lake.local.runtime")


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
    """Sends failed batches of one mapping to its queue (``url``), or discards them if it has none."""

    def __init__(self, clients: Clients, url: str | None, kind: SourceKind, stream_arn: str, function_name: str,
                 function_arn: str, stats: MappingStats, clock: Clock, stopping: threading.Event) -> None:
        self.clients, self.url = clients, url
        self.kind, self.stream_arn = kind, stream_arn
        self.function_name, self.function_arn = function_name, function_arn
        self.stats, self.clock, self.stopping = stats, clock, stopping

    def send(self, shard_id: str, records: list[StreamRecord], condition: Condition, invocations: int,
             request_id: str, last: Outcome | None) -> bool:
        """Report ``records`` as failed with ``condition``; False if the runtime stopped while
        the queue was unreachable (nothing was sent then: the records are still pending)."""
        first, final = records[0].seq, records[-1].seq
        if not self.url:
            self.stats.add(records_discarded=len(records))
            log.error("%s: %d record(s) of shard %s (%s..%s) DISCARDED after %s, and the mapping has no "
                      "on-failure destination: %s", self.function_name, len(records), shard_id, first, final,
                      condition, last.error if last else "")
            return True
        msg = failure_message(
            kind=self.kind, records=records, shard_id=shard_id, stream_arn=self.stream_arn,
            function_arn=self.function_arn, request_id=request_id or str(uuid.uuid4()),
            condition=condition, invoke_count=invocations,
            function_error=last.function_error if last else None, now=self.clock.now(),
        )
        body = orjson.dumps(msg).decode()
        attempt = 0
        while True:
            try:
                self.clients.sqs.send_message(QueueUrl=self.url, MessageBody=body)
                break
            except AWS_ERRORS as e:
                # The shard waits: moving on would lose the records, since the checkpoint would pass them.
                attempt += 1
                log.error("%s: could not send the failure of shard %s (%s..%s) to %s (attempt %d), "
                          "the shard waits: %s", self.function_name, shard_id, first, final,
                          self.url, attempt, e)
                if self.clock.wait(self.stopping, min(0.2 * 2 ** min(attempt, 5), 5.0)):
                    return False
        self.stats.add(records_to_destination=len(records), destination_messages=1)
        log.warning("%s: %d record(s) of shard %s (%s..%s) sent to the on-failure destination (%s)",
                    self.function_name, len(records), shard_id, first, final, condition)
        return True
