"""Pure shaping of stream records into the events Lambda delivers. No boto3 here.

boto3 parses GetRecords responses: ``B``/``BS`` become bytes and timestamps become
datetimes. Lambda delivers JSON: binary base64-encoded (at any depth inside ``M``/``L``),
``ApproximateCreationDateTime`` as whole epoch seconds (rounded down), Kinesis
``approximateArrivalTimestamp`` as float seconds, ``userIdentity`` with lower-case names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from lake.invocation import ACCOUNT_ID
from lake.records import attribute_json, b64_text

INVOKE_IDENTITY_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/lake-local"

SourceKind = Literal["dynamodb", "kinesis"]
# PoisonRecord is the local runtime's own: a record it cannot deliver at all (AWS never reads one).
Condition = Literal["RetryAttemptsExhausted", "RecordAgeExceeded", "PoisonRecord"]


@dataclass
class StreamRecord:
    """One record of a shard as the runtime carries it: the Lambda-shaped event plus coordinates."""

    seq: str
    arrival: float  # precise epoch seconds, for MaximumRecordAge and the destination message
    event: dict[str, Any]
    matched: bool = True
    failures: int = field(default=0, compare=False)
    body: bytes = b""  # the event as JSON, serialised once when read (see serialise)
    poison: str | None = None  # why the event cannot be delivered, if it cannot

    @property
    def seq_int(self) -> int:
        return int(self.seq)


def serialise(record: StreamRecord) -> StreamRecord:
    """Serialise the record's event once; a record that cannot be (a map nested past
    orjson's depth limit, which the embedded DynamoDB accepts) is marked poison instead."""
    try:
        record.body = orjson.dumps(record.event)
    except (TypeError, ValueError) as e:  # orjson.JSONEncodeError is a TypeError
        record.poison = f"the runtime cannot serialise this record to JSON: {e}"
    return record


def event_of(records: Sequence[StreamRecord]) -> dict[str, Any]:
    """The event of one invocation: a fresh copy per call, so a handler that changes it
    cannot change what a retry gets."""
    return {"Records": orjson.loads(b"[" + b",".join(r.body for r in records) + b"]")}


def dumps_anything(value: Any) -> bytes:
    """JSON of ``value`` even when orjson refuses it for its depth (the stdlib encoder goes deeper)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, default=repr).encode()


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


def _image(image: Mapping[str, Any]) -> dict[str, Any]:
    return {name: attribute_json(v) for name, v in image.items()}


def dynamodb_event_record(raw: Mapping[str, Any], stream_arn: str, region: str) -> StreamRecord:
    """A GetRecords record (boto3-parsed) → the record Lambda puts in ``event["Records"]``."""
    src = raw.get("dynamodb", {})
    created = _epoch(src.get("ApproximateCreationDateTime", 0))
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": math.floor(created)}
    for key in ("Keys", "NewImage", "OldImage"):
        if key in src:
            ddb[key] = _image(src[key])
    for key in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in src:
            ddb[key] = src[key]
    return _dynamodb_record(raw, ddb, created, stream_arn, region)


def dynamodb_wire_record(wire: Mapping[str, Any], stream_arn: str, region: str) -> StreamRecord:
    """A GetRecords record as its JSON (binary values base64, times epoch seconds) → Lambda's record.
    The same event as :func:`dynamodb_event_record` makes from boto3's parse of it."""
    src = wire.get("dynamodb", {})
    created = float(src.get("ApproximateCreationDateTime", 0))
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": math.floor(created)}
    for key in ("Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in src:
            ddb[key] = src[key]
    return _dynamodb_record(wire, ddb, created, stream_arn, region)


def _dynamodb_record(raw: Mapping[str, Any], ddb: dict[str, Any], created: float, stream_arn: str,
                     region: str) -> StreamRecord:
    event: dict[str, Any] = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion") or region,
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }
    ident = raw.get("userIdentity")
    if isinstance(ident, Mapping):
        event["userIdentity"] = {
            "type": ident.get("Type", ident.get("type")),
            "principalId": ident.get("PrincipalId", ident.get("principalId")),
        }
    return StreamRecord(seq=str(ddb["SequenceNumber"]), arrival=created, event=event)


def kinesis_wire_record(wire: Mapping[str, Any], shard_id: str, stream_arn: str, region: str) -> StreamRecord:
    """A Kinesis GetRecords record as its JSON (data base64) → Lambda's record (see :func:`kinesis_event_record`)."""
    arrival = float(wire["ApproximateArrivalTimestamp"])
    return _kinesis_record(wire["PartitionKey"], str(wire["SequenceNumber"]), wire["Data"], arrival, shard_id,
                           stream_arn, region)


def kinesis_event_record(raw: Mapping[str, Any], shard_id: str, stream_arn: str, region: str) -> StreamRecord:
    """A Kinesis GetRecords record (boto3-parsed) → Lambda's Kinesis event record."""
    return _kinesis_record(raw["PartitionKey"], str(raw["SequenceNumber"]), b64_text(raw["Data"]),
                           _epoch(raw["ApproximateArrivalTimestamp"]), shard_id, stream_arn, region)


def _kinesis_record(partition_key: str, seq: str, data: str, arrival: float, shard_id: str, stream_arn: str,
                    region: str) -> StreamRecord:
    event = {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": seq,
            "data": data,
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{seq}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": INVOKE_IDENTITY_ARN,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }
    return StreamRecord(seq=seq, arrival=arrival, event=event)


def iso_millis(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}Z"


def failure_message(
    *,
    kind: SourceKind,
    records: Sequence[StreamRecord],
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    request_id: str,
    condition: Condition,
    invoke_count: int,
    status_code: int = 200,
    function_error: str | None = None,
    now: float,
    reason: str = "",
    with_records: bool = True,
) -> dict[str, Any]:
    """The on-failure destination record, shaped like AWS's for stream sources.

    Locally it also carries ``reason`` (why the runtime gave up) and ``records``, the
    full records (AWS's holds only coordinates, which a local stream may not keep):
    a dead-lettered record can be re-driven from the message itself."""
    response: dict[str, Any] = {"statusCode": status_code, "executedVersion": "$LATEST"}
    if function_error:
        response["functionError"] = function_error
    info = {
        "shardId": shard_id,
        "startSequenceNumber": records[0].seq,
        "endSequenceNumber": records[-1].seq,
        "approximateArrivalOfFirstRecord": iso_millis(records[0].arrival),
        "approximateArrivalOfLastRecord": iso_millis(records[-1].arrival),
        "batchSize": len(records),
        "streamArn": stream_arn,
    }
    message: dict[str, Any] = {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": iso_millis(now),
        ("DDBStreamBatchInfo" if kind == "dynamodb" else "KinesisBatchInfo"): info,
        "reason": reason,
    }
    if with_records:
        message["records"] = [r.event for r in records]
    return message
