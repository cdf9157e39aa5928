"""Put a batch's raw objects in S3 and quarantine what cannot be archived.

Failure semantics (Lambda ``ReportBatchItemFailures``):

* a malformed record is quarantined (``lake.deadletter``) with its reason and
  coordinates; the rest of the batch goes on;
* an S3 error is transient: the records it concerns are reported as batch item
  failures, so the event source mapping retries them.

Lambda retries a partially failed batch from the *lowest* failed sequence number,
redelivering everything after it too. So units of work (objects, quarantine writes)
run in sequence order, and at the first failure the unit and every later one are
reported and not attempted: nothing at or after the retry point was written, and
the redelivered records land in objects that did not exist yet instead of
duplicating lines in objects that do. A record without a SequenceNumber cannot be
reported; if its quarantine write fails the whole invocation raises (Lambda retries
the batch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from lake.archive.encode import GZIP_LEVEL, BatchPlan, RawObject, Rejected, plan_batch
from lake.archive.keys import RawObjectKey
from lake.aws.clients import Clients
from lake.deadletter import Quarantined, quarantine
from lake.errors import LakeError, TransientError
from lake.records import sequence_sort_key
from lake.settings import Settings

log = logging.getLogger(__name__)

STAGE = "archive"


@dataclass(frozen=True)
class ArchiveResult:
    """What one batch did: objects written, records quarantined, sequence numbers to retry."""

    written: tuple[RawObjectKey, ...] = ()
    records_archived: int = 0
    quarantined: tuple[str, ...] = ()  # quarantine object keys
    failed: tuple[str, ...] = ()  # SequenceNumbers reported as batch item failures

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response."""
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in self.failed]}


def _quarantinable(item: Rejected) -> Quarantined:
    record = item.record
    try:
        orjson.dumps(record)
    except (orjson.JSONEncodeError, TypeError):
        # e.g. an integer beyond 64 bits: keep its text rather than lose the record
        record = repr(record)
    return Quarantined(STAGE, item.reason, item.coordinates, record)


def put_raw_object(settings: Settings, clients: Clients, obj: RawObject) -> None:
    """One raw object; S3 errors come back as :class:`TransientError` (they are all retryable here)."""
    try:
        # No Content-Encoding: gzip, or HTTP clients would inflate the body behind our back.
        clients.store(settings.bucket).put(obj.key.render(), obj.body, content_type="application/gzip",
                                           metadata=obj.metadata())
    except LakeError as e:  # the door raises these for S3 errors only; a bug propagates as itself
        raise TransientError(f"put raw object: {e}") from e


def write_plan(settings: Settings, clients: Clients, plan: BatchPlan) -> ArchiveResult:
    """Execute a :class:`BatchPlan` in sequence order, stopping at the first S3 failure."""
    quarantined: list[str] = []
    no_seq = [r for r in plan.rejected if r.seq is None]
    if no_seq:
        try:
            quarantined += quarantine(settings, clients, [_quarantinable(r) for r in no_seq])
        except LakeError as e:
            raise TransientError(f"cannot quarantine {len(no_seq)} record(s) without SequenceNumber: {e}") from e

    # (lowest sequence number, kind, unit): objects and quarantine writes, in stream order
    units: list[tuple[tuple[int, str], int, RawObject | Rejected]] = [
        (sequence_sort_key(o.key.first_seq), 0, o) for o in plan.objects
    ] + [(sequence_sort_key(r.seq), 1, r) for r in plan.rejected if r.seq is not None]
    units.sort(key=lambda u: (u[0], u[1]))

    written: list[RawObjectKey] = []
    archived = 0
    failed: list[str] = []
    for _, _, unit in units:
        if failed:  # past the retry point: report, do not write
            failed.extend(unit.sequence_numbers if isinstance(unit, RawObject) else [str(unit.seq)])
            continue
        try:
            if isinstance(unit, RawObject):
                put_raw_object(settings, clients, unit)
                written.append(unit.key)
                archived += unit.record_count
            else:
                quarantined += quarantine(settings, clients, [_quarantinable(unit)])
        except LakeError as e:
            log.warning("archive: %s; reporting from here on as batch item failures", e)
            failed.extend(unit.sequence_numbers if isinstance(unit, RawObject) else [str(unit.seq)])
    # Lambda wants each failed record once; keep the first occurrence of duplicates.
    return ArchiveResult(tuple(written), archived, tuple(quarantined), tuple(dict.fromkeys(failed)))


def _event_records(event: Any) -> tuple[Sequence[Any], list[Rejected]]:
    """The records of a Lambda event, or a rejection of the event as a whole."""
    if isinstance(event, (bytes, bytearray, memoryview, str)):
        try:
            event = orjson.loads(event)
        except orjson.JSONDecodeError as e:
            text = bytes(event).decode("utf-8", "replace") if not isinstance(event, str) else event
            return [], [Rejected(-1, f"event is not valid JSON: {e}", text, None, {"index": -1})]
    if not isinstance(event, dict):
        return [], [Rejected(-1, f"event is a {type(event).__name__}, not a JSON object", event, None,
                             {"index": -1})]
    records = event.get("Records")
    if records is None and not event:
        return [], []
    if not isinstance(records, list):
        return [], [Rejected(-1, "event has no Records array", event, None, {"index": -1})]
    return records, []


def archive_event(event: Any, settings: Settings, clients: Clients, level: int = GZIP_LEVEL) -> ArchiveResult:
    """Archive one Lambda DynamoDB-stream event (a dict; bytes or text are parsed first)."""
    records, rejected = _event_records(event)
    plan = plan_batch(records, settings.prefix, level)
    if rejected:
        plan = BatchPlan(plan.objects, tuple(rejected) + plan.rejected)
    result = write_plan(settings, clients, plan)
    log.info("archive: %d record(s) in %d object(s), %d quarantined, %d to retry",
             result.records_archived, len(result.written), len(result.quarantined), len(result.failed))
    return result


def archive_records(records: Sequence[Any], settings: Settings, clients: Clients | None = None) -> ArchiveResult:
    """Archive a list of stream records (the event's ``Records``)."""
    return write_plan(settings, clients or Clients(settings), plan_batch(records, settings.prefix))
