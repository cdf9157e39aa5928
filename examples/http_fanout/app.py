"""The HTTP fan-out example's resources, declared once (wired by ``lake example``, deployed by SAM).

``shipments`` is the producer's table; the lake archives it and fans its changes out to its
Kinesis stream, which ``deliver-changes`` reads (a Kinesis trigger, per-key order through
``batchItemFailures``) to POST each change to ``DELIVERY_URL``. Changes the endpoint refuses
for good (a 4xx) go to the ``rejected-changes`` queue.

``DELIVERY_URL`` is configuration, not a resource: the value here is a placeholder for a
deployment to override; ``lake example http_fanout`` points it at its loopback receiver.
"""

from __future__ import annotations

from pathlib import Path

from lake.apps import App, Function, KinesisEvents, Permission, Queue, Table

DEFAULT_URL = "http://127.0.0.1:8080/changes"

APP = App(
    name="http-fanout",
    description="The lake plus a generic fan-out consumer on its Kinesis stream that POSTs every change "
                "to an HTTP endpoint: retries, per-key order, idempotency keys.",
    tables=(Table("shipments", hash_key="shipment_id"),),
    queues=(Queue("rejected-changes", visibility_timeout_s=60),),
    functions=(
        Function(
            name="deliver-changes",
            handler="examples.http_fanout.handlers:deliver_changes",
            description="The lake's Kinesis stream → POST per change (article 001's consumer B).",
            triggers=(KinesisEvents(batch_size=100, report_batch_item_failures=True),),
            environment=(
                ("DELIVERY_URL", DEFAULT_URL),
                ("DELIVERY_TABLES", "${table:shipments}"),
                ("DELIVERY_MAX_ATTEMPTS", "6"),
                ("REJECTED_QUEUE_URL", "${queue:rejected-changes}"),
            ),
            permissions=(
                Permission("lake-stream", "lake", ("kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
                                                   "kinesis:GetRecords", "kinesis:GetShardIterator",
                                                   "kinesis:ListShards", "kinesis:ListStreams")),
                Permission("queue", "rejected-changes", ("sqs:SendMessage",)),
            ),
            timeout_s=120,
        ),
    ),
    root=str(Path(__file__).parent),
)
