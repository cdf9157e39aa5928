"""The Lambda handlers of upload_rows (article 000), each a few lines over pure functions.

``log_rows`` (SNS → Lambda): the S3 record arrives wrapped in the SNS message, its key
``quote_plus``-encoded (``my batch/a+b.csv`` arrives as ``my+batch/a%2Bb.csv``). The file's
rows are appended to the batch's item with ``list_append`` in one conditional write that also
remembers the upload (key and ETag), so a redelivered notification is not logged twice.

``release`` (DynamoDB stream, NEW_AND_OLD_IMAGES, filtered in app.py): queues the batch's
rows when its list goes from fewer than :data:`THRESHOLD` rows to at least that many. The
filter already keeps only that transition (on ``row_count``); the handler checks it again
on the list lengths of both images, so a filter mistake cannot release a batch twice.

``work`` (SQS FIFO): processes each row in order; rows marked ``flaky`` fail at their first
attempt (the FIFO group then waits for their retry). What it processed is recorded per batch
in order, idempotently (a redelivered row is skipped, not recorded twice).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from lake.aws.clients import HandlerRuntime
from lake.errors import TransientError

THRESHOLD = 10
"""A batch is released (its rows queued) once, when its list of rows first holds this many."""

_runtime = HandlerRuntime()
configure = _runtime.configure


# -- pure core -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    """One uploaded object, as an S3 notification names it (the key decoded)."""

    bucket: str
    key: str
    etag: str

    @property
    def batch(self) -> str:
        """The batch a file belongs to: the folder under ``incoming/`` (or the file's stem)."""
        parts = self.key.split("/")
        if len(parts) >= 3:
            return parts[1]
        return parts[-1].rsplit(".", 1)[0]

    @property
    def upload_id(self) -> str:
        return f"{self.key}@{self.etag}"


def uploads_from_sns(event: Mapping[str, Any]) -> list[Upload]:
    """The S3 objects an SNS → Lambda event announces (S3 record inside each SNS message).

    S3's test event (``s3:TestEvent``, sent when a notification is configured) has no
    ``Records`` and is skipped.
    """
    out: list[Upload] = []
    for record in event.get("Records") or []:
        message = json.loads(record["Sns"]["Message"])
        for s3_record in message.get("Records") or []:
            if not str(s3_record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            s3 = s3_record["s3"]
            obj = s3["object"]
            out.append(Upload(s3["bucket"]["name"], unquote_plus(obj["key"]),
                              str(obj.get("eTag") or obj.get("sequencer") or "")))
    return out


def parse_rows(upload: Upload, text: str) -> list[dict[str, str]]:
    """The CSV's data rows, each tagged with its file and line (the header is line 1).

    A spreadsheet's UTF-8 byte order mark would otherwise become part of the first column's name.
    """
    rows = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))), start=2):
        rows.append({"file": upload.key, "line": str(line), **{k: v or "" for k, v in row.items() if k}})
    return rows


def _av_map(row: Mapping[str, str]) -> dict[str, Any]:
    return {"M": {k: {"S": v} for k, v in row.items()}}


def log_request(table: str, upload: Upload, rows: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The ``UpdateItem`` appending ``rows`` to the batch's item, once per upload.

    ``row_count`` is kept beside the list because the stream filter can read a number but
    not a list's length; both change in the same write, so they never disagree.
    """
    return {
        "TableName": table,
        "Key": {"batch": {"S": upload.batch}},
        "UpdateExpression": ("SET #rows = list_append(if_not_exists(#rows, :none), :rows), "
                             "row_count = if_not_exists(row_count, :zero) + :n ADD uploads :upload"),
        "ConditionExpression": "attribute_not_exists(uploads) OR NOT contains(uploads, :id)",
        "ExpressionAttributeNames": {"#rows": "rows"},
        "ExpressionAttributeValues": {
            ":none": {"L": []}, ":rows": {"L": [_av_map(r) for r in rows]},
            ":zero": {"N": "0"}, ":n": {"N": str(len(rows))},
            ":upload": {"SS": [upload.upload_id]}, ":id": {"S": upload.upload_id},
        },
    }


def _rows_of(image: Mapping[str, Any] | None) -> list[dict[str, str]]:
    if not image or "rows" not in image:
        return []
    return [{k: v["S"] for k, v in entry["M"].items()} for entry in image["rows"]["L"]]


def crossed(old_image: Mapping[str, Any] | None, new_image: Mapping[str, Any] | None) -> bool:
    """Whether a write took the batch's list from under :data:`THRESHOLD` rows to at least that many."""
    return len(_rows_of(old_image)) < THRESHOLD <= len(_rows_of(new_image))


_FIFO_ID = re.compile(r"[^A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]")


def group_id(batch: str) -> str:
    """A MessageGroupId for ``batch`` (at most 128 of the characters SQS allows)."""
    safe = _FIFO_ID.sub("_", batch)
    return safe if 0 < len(safe) <= 128 else hashlib.sha256(batch.encode()).hexdigest()


def release_messages(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The FIFO messages (``SendMessageBatch`` entries) a stream record releases, or none.

    The deduplication id is the stream record's event id and the row's index: a retried
    invocation of the same record sends the same ids and SQS drops the copies; a second,
    different record releasing the batch (which must never happen) would not be hidden.
    """
    ddb = record.get("dynamodb") or {}
    if not crossed(ddb.get("OldImage"), ddb.get("NewImage")):
        return []
    batch = ddb["NewImage"]["batch"]["S"]
    release = str(record["eventID"])
    return [{
        "Id": str(i),
        "MessageBody": json.dumps({"batch": batch, "index": i, "release": release, "row": row}, sort_keys=True),
        "MessageGroupId": group_id(batch),
        "MessageDeduplicationId": hashlib.sha256(f"{release}#{i}".encode()).hexdigest(),
    } for i, row in enumerate(_rows_of(ddb["NewImage"]))]


def chunks(entries: Sequence[dict[str, Any]], size: int = 10) -> Iterable[Sequence[dict[str, Any]]]:
    """``SendMessageBatch`` takes at most 10 entries; in order, so a group's order is kept."""
    for start in range(0, len(entries), size):
        yield entries[start:start + size]


def processed_request(table: str, job: Mapping[str, Any]) -> dict[str, Any]:
    """The ``UpdateItem`` recording that ``job`` (a queued row) was processed, after the ones before it.

    The condition keeps the record idempotent and ordered: a row is recorded only after a
    row with a lower index, so a redelivered row (already recorded) is refused, and a row
    delivered out of order would be missing from ``done`` instead of hidden.
    """
    row = job["row"]
    return {
        "TableName": table,
        "Key": {"batch": {"S": job["batch"]}},
        "UpdateExpression": "SET done = list_append(if_not_exists(done, :none), :done), last_index = :i "
                            "ADD releases :release",
        "ConditionExpression": "attribute_not_exists(last_index) OR last_index < :i",
        "ExpressionAttributeValues": {
            ":none": {"L": []}, ":done": {"L": [{"S": f"{row['file']}:{row['line']}"}]},
            ":i": {"N": str(job["index"])}, ":release": {"SS": [job["release"]]},
        },
    }


def first_failure_request(table: str, job: Mapping[str, Any]) -> dict[str, Any]:
    """The ``UpdateItem`` noting a flaky row's first attempt; refused from the second attempt on."""
    return {
        "TableName": table,
        "Key": {"batch": {"S": job["batch"]}},
        "UpdateExpression": "ADD failed :i",
        "ConditionExpression": "attribute_not_exists(failed) OR NOT contains(failed, :n)",
        "ExpressionAttributeValues": {":i": {"NS": [str(job["index"])]}, ":n": {"N": str(job["index"])}},
    }


def is_flaky(job: Mapping[str, Any]) -> bool:
    return str(job["row"].get("status", "")).strip().lower() == "flaky"


# -- handlers --------------------------------------------------------------------------------------
def log_rows(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """SNS → Lambda: log each announced CSV's rows in its batch's item (once per upload)."""
    _, clients = _runtime.get()
    s3, ddb = clients.s3, clients.dynamodb
    table = os.environ["BATCHES_TABLE"]
    logged, repeated = 0, 0
    for upload in uploads_from_sns(event):
        body = s3.get_object(Bucket=upload.bucket, Key=upload.key)["Body"].read().decode("utf-8")
        try:
            ddb.update_item(**log_request(table, upload, parse_rows(upload, body)))
            logged += 1
        except ddb.exceptions.ConditionalCheckFailedException:
            repeated += 1  # this upload's rows are already in the list: SNS delivered it again
    return {"logged": logged, "repeated": repeated}


def release(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """DynamoDB stream → SQS FIFO: queue a batch's rows at the write that brings it to THRESHOLD rows."""
    _, clients = _runtime.get()
    sqs = clients.sqs
    queue_url = os.environ["JOBS_QUEUE_URL"]
    released: list[str] = []
    for record in event.get("Records") or []:
        entries = release_messages(record)
        for chunk in chunks(entries):
            failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=list(chunk)).get("Failed") or []
            if failed:  # the whole batch is retried; the deduplication ids drop what was sent
                raise TransientError(f"SQS refused {len(failed)} messages: {failed[0]}")
        if entries:
            released.append(json.loads(entries[0]["MessageBody"])["batch"])
    return {"released": released}


def work(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS FIFO → the processed table, in order; a failure fails the rest of the batch too.

    Lambda's rule for FIFO queues: after a failed message, report it and every later one
    as failures, so no message of its group is processed before it is.
    """
    _, clients = _runtime.get()
    ddb = clients.dynamodb
    table = os.environ["PROCESSED_TABLE"]
    failures: list[dict[str, str]] = []
    for record in event.get("Records") or []:
        if failures:
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        job = json.loads(record["body"])
        if is_flaky(job):
            try:
                ddb.update_item(**first_failure_request(table, job))
                failures.append({"itemIdentifier": record["messageId"]})  # first attempt: fail it
                continue
            except ddb.exceptions.ConditionalCheckFailedException:
                pass  # failed once already: this attempt goes through
        try:
            ddb.update_item(**processed_request(table, job))
        except ddb.exceptions.ConditionalCheckFailedException:
            pass  # already recorded: a redelivery after a lost delete
    return {"batchItemFailures": failures}
