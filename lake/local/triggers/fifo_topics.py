"""Content-based deduplication of SNS FIFO topics, which moto 5.2.5 does not do.

On AWS a FIFO topic with ContentBasedDeduplication takes the SHA-256 of the message as its
deduplication id when the publisher gives none, and its FIFO queue subscribers receive that
id. moto accepts such a publish but passes no id on, so a subscribed FIFO queue without
content-based deduplication of its own refuses the message (and one with it deduplicates
on the SNS envelope, not the message). The patch gives moto's ``SNSBackend.publish`` (and
``publish_batch``, which calls it) the id AWS would compute. moto serves the embedded AWS
from this process, so patching its class here is enough; it is idempotent.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any


def patch_fifo_topic_deduplication() -> None:
    from moto.sns.exceptions import SNSNotFoundError
    from moto.sns.models import SNSBackend

    original = SNSBackend.publish
    if getattr(original, "_lake_fifo_dedup", False):
        return

    @functools.wraps(original)
    def publish(self: Any, message: str, arn: str | None, *args: Any, **kwargs: Any) -> str:
        if arn and not kwargs.get("deduplication_id") and not kwargs.get("phone_number"):
            try:
                topic = self.get_topic(arn)
            except SNSNotFoundError:
                topic = None
            if topic is not None and topic.fifo_topic and topic.content_based_deduplication:
                kwargs["deduplication_id"] = hashlib.sha256(message.encode()).hexdigest()
        return original(self, message, arn, *args, **kwargs)

    publish._lake_fifo_dedup = True  # type: ignore[attr-defined]
    SNSBackend.publish = publish  # type: ignore[method-assign]
