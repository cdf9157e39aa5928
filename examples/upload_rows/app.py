"""The declaration of upload_rows (article 000), wired locally by ``lake example upload_rows``.

A CSV uploaded under ``incoming/<batch>/`` is announced by S3 to an SNS topic (so more
consumers can subscribe later, as the article argues); ``log_rows`` unwraps the S3 record
from the SNS message and appends the file's rows to the batch's item in ``upload_rows_batches``.
``release`` reads that table's stream (NEW_AND_OLD_IMAGES) behind a filter that lets through
only the write taking ``row_count`` from below 10 to 10 or more, checks the transition again
on the images, and queues the batch's rows on a FIFO queue (one message group per batch).
``work`` drains the queue in order and records what it processed in ``upload_rows_processed``.
Both tables have streams: the lake archives them.
"""

from __future__ import annotations

import json
from pathlib import Path

from examples.upload_rows.handlers import THRESHOLD
from lake.apps import (
    App,
    Bucket,
    Function,
    Notification,
    Permission,
    Queue,
    QueueEvents,
    StreamEvents,
    Table,
    Topic,
    TopicEvents,
)

BUCKET = "upload-rows-incoming"
TOPIC = "upload-rows-uploaded"
BATCHES = "upload_rows_batches"
PROCESSED = "upload_rows_processed"
JOBS = "upload-rows-jobs.fifo"
JOBS_DLQ = "upload-rows-jobs-dlq.fifo"
INCOMING = "incoming/"  # the key prefix of the files announced

_BELOW = [str(n) for n in range(THRESHOLD)]  # row_count values under the threshold, as DynamoDB's N strings
# Lambda's filters compare numbers only when the event holds a JSON number; a stream image holds
# {"N": "12"}, a string, so "reached the threshold" is written as "not one of 0..9" (counts are
# never negative). Two patterns, OR-ed: the first write of a batch that already holds 10+ rows
# (INSERT), or a write taking the count from 0..9 to 10+ (MODIFY). Later appends (old image 10+)
# never match, so the transition fires once; the handler checks the list lengths again.
RELEASE_FILTERS = (
    json.dumps({"eventName": ["INSERT"],
                "dynamodb": {"NewImage": {"row_count": {"N": [{"anything-but": _BELOW}]}}}}),
    json.dumps({"eventName": ["MODIFY"],
                "dynamodb": {"NewImage": {"row_count": {"N": [{"anything-but": _BELOW}]}},
                             "OldImage": {"row_count": {"N": _BELOW}}}}),
)

WORK_TIMEOUT_S = 6  # a batch of 10 rows takes well under a second; a failed row waits this long for its retry

_STREAM_READ = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                "dynamodb:ListStreams")
_QUEUE_READ = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")

APP = App(
    name="upload_rows",
    description="Article 000: S3 -> SNS -> Lambda logging rows -> DynamoDB stream criterion -> SQS FIFO -> worker",
    tables=(
        Table(BATCHES, hash_key="batch"),
        Table(PROCESSED, hash_key="batch"),
    ),
    buckets=(
        Bucket(BUCKET, notifications=(
            Notification(TOPIC, kind="topic", events=("s3:ObjectCreated:*",), prefix=INCOMING, suffix=".csv"),
        )),
    ),
    topics=(Topic(TOPIC),),
    queues=(
        # A FIFO queue's dead-letter queue is FIFO too. A failed message comes back after the
        # visibility timeout, before any later message of its group (the group stays locked).
        # Lambda wants the visibility timeout at least the worker's timeout (WORK_TIMEOUT_S).
        Queue(JOBS, fifo=True, visibility_timeout_s=WORK_TIMEOUT_S, dead_letter=JOBS_DLQ, max_receive_count=3),
        Queue(JOBS_DLQ, fifo=True),
    ),
    functions=(
        Function(
            name="log_rows",
            handler="examples.upload_rows.handlers:log_rows",
            description="Unwraps the S3 record from the SNS message, appends the file's rows to its batch",
            triggers=(TopicEvents(TOPIC),),
            environment=(("BATCHES_TABLE", f"${{table:{BATCHES}}}"),),
            permissions=(
                # objects under incoming/ only ("bucket/prefix": what the notification announces)
                Permission("bucket-objects", f"{BUCKET}/{INCOMING}", ("s3:GetObject",)),
                Permission("table", BATCHES, ("dynamodb:UpdateItem",)),
            ),
        ),
        Function(
            name="release",
            handler="examples.upload_rows.handlers:release",
            description=f"Queues a batch's rows on the FIFO queue once, when it first holds {THRESHOLD} rows",
            triggers=(StreamEvents(BATCHES, batch_size=10, filter_patterns=RELEASE_FILTERS),),
            environment=(("JOBS_QUEUE_URL", f"${{queue:{JOBS}}}"),),
            permissions=(
                Permission("table-stream", BATCHES, _STREAM_READ),
                Permission("queue", JOBS, ("sqs:SendMessage",)),
            ),
        ),
        Function(
            name="work",
            handler="examples.upload_rows.handlers:work",
            description="Drains the FIFO queue in order per batch and records what it processed",
            triggers=(QueueEvents(JOBS, batch_size=10, report_batch_item_failures=True),),
            timeout_s=WORK_TIMEOUT_S,
            environment=(("PROCESSED_TABLE", f"${{table:{PROCESSED}}}"),),
            permissions=(
                Permission("queue", JOBS, _QUEUE_READ),
                Permission("table", PROCESSED, ("dynamodb:UpdateItem",)),
            ),
        ),
    ),
    root=str(Path(__file__).resolve().parent),
)
