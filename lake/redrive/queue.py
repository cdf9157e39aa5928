"""The dead-letter queue, through an injected SQS client: receive, delete, release. Errors translated."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lake.aws.errors import AWS_ERRORS, translate
from lake.errors import NotFoundError


@dataclass(frozen=True)
class Message:
    id: str
    receipt: str
    body: str


class DeadLetterQueue:
    """One queue (a name, URL or ARN) of dead-lettered batches."""

    def __init__(self, sqs: Any, queue: str) -> None:
        self.sqs, self.queue = sqs, queue
        self.url = self._url(queue)

    def _url(self, queue: str) -> str:
        try:
            if queue.startswith("https://") or queue.startswith("http://"):
                return queue
            if queue.startswith("arn:"):
                parts = queue.split(":")
                return str(self.sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])
            return str(self.sqs.get_queue_url(QueueName=queue)["QueueUrl"])
        except AWS_ERRORS as e:
            err = translate(e, "SQS queue", queue)
            raise (NotFoundError("SQS queue", queue, "the dead-letter queue (--queue, or dlq in the settings)")
                   if isinstance(err, NotFoundError) else err) from e

    def receive(self, visibility_s: int, limit: int | None = None) -> Iterator[Message]:
        """Every message visible now, each once, held invisible for ``visibility_s`` while we work."""
        seen: set[str] = set()
        while limit is None or len(seen) < limit:
            want = 10 if limit is None else max(1, min(10, limit - len(seen)))
            try:
                resp = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=want,
                                                VisibilityTimeout=visibility_s, WaitTimeSeconds=0)
            except AWS_ERRORS as e:
                raise translate(e, "SQS queue", self.url) from e
            fresh = [m for m in resp.get("Messages", []) if m["MessageId"] not in seen]
            if not fresh:
                return
            for m in fresh:
                seen.add(m["MessageId"])
                yield Message(m["MessageId"], m["ReceiptHandle"], m["Body"])

    def delete(self, message: Message) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt)
        except AWS_ERRORS as e:
            raise translate(e, "SQS queue", self.url) from e

    def release(self, message: Message) -> None:
        """Make the message visible again now (it stays in the queue)."""
        try:
            self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=message.receipt, VisibilityTimeout=0)
        except AWS_ERRORS as e:
            raise translate(e, "SQS queue", self.url) from e
