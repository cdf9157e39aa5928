"""Where a dead-lettered batch's records come from: the message, the raw zone, or the stream.

* ``message``: the records the message carries (the local runtime's), or its ``recordFile``.
* ``raw``: the archived records of the batch's sequence range, read with :mod:`lake.replay`
  (DynamoDB stream stages only; the raw zone keeps every record as Lambda delivered it).
* ``stream``: the records read again from the stream (``GetShardIterator`` at the first
  sequence number, ``GetRecords`` up to the last), while the stream still holds them (24 hours
  for DynamoDB Streams, the retention period for Kinesis), shaped as Lambda delivers them.

``auto`` takes the first of these that holds every record of the batch, in that order, except
for a ``PoisonRecord`` (a record the local runtime could not serialise as it read it): its
message holds exactly the bytes that failed, so the stream's copy comes first (the same record
for a poison written by the source; the intact one after a corruption in transit, as
``lake up --faults poison`` injects). AWS calls go through the injected clients; their errors
are translated by :mod:`lake.aws.errors`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from lake.archive.keys import shard_token
from lake.aws.errors import AWS_ERRORS, translate
from lake.errors import LakeError, MalformedRecordError, NotFoundError, TerminalError
from lake.records import attribute_json, b64_text, stream_label_from_arn, table_from_arn
from lake.redrive.message import DeadLetter, sequence_of

Source = Literal["auto", "message", "raw", "stream"]
SOURCES: tuple[Source, ...] = ("auto", "message", "raw", "stream")
_MAX_EMPTY_READS = 5  # an open shard's iterator may answer empty before the records it holds


class Unavailable(LakeError):
    """The source does not hold (all) the batch's records."""


def records_of(dead: DeadLetter, source: Source, clients: Any, bucket: str, prefix: str,
               region: str) -> tuple[str, list[Mapping[str, Any]]]:
    """``(source used, records)`` of ``dead``, in sequence order; :class:`Unavailable` if none has them."""
    if source != "auto":
        order: tuple[Source, ...] = (source,)
    elif dead.condition == "PoisonRecord":
        order = ("stream", "raw", "message")
    else:
        order = ("message", "raw", "stream")
    reasons = []
    for name in order:
        try:
            if name == "message":
                return name, from_message(dead)
            if name == "raw":
                return name, from_raw_zone(dead, clients.store(bucket), prefix)
            return name, from_stream(dead, clients, region)
        except Unavailable as e:
            reasons.append(f"{name}: {e}")
    raise Unavailable("; ".join(reasons))


def _complete(dead: DeadLetter, records: list[Mapping[str, Any]], where: str) -> list[Mapping[str, Any]]:
    if not records or (dead.batch_size and len(records) < dead.batch_size):
        raise Unavailable(f"{where} holds {len(records)} of the batch's {dead.batch_size} record(s)")
    return records


def from_message(dead: DeadLetter) -> list[Mapping[str, Any]]:
    if dead.records:
        return list(dead.records)
    if dead.record_file:
        try:
            text = Path(dead.record_file).read_bytes()
        except OSError as e:
            raise Unavailable(f"its record file {dead.record_file}: {e.strerror or e}") from None
        return [orjson.loads(text)]
    raise Unavailable("the message carries coordinates only")


def from_raw_zone(dead: DeadLetter, store: Any, prefix: str) -> list[Mapping[str, Any]]:
    """The archived records of the batch (deduplicated, in order), through lake.replay's reader."""
    from lake.replay.selection import Selection
    from lake.replay.source import iter_changes, select_objects

    if dead.kind != "dynamodb":
        raise Unavailable("the raw zone holds DynamoDB stream records, not Kinesis ones")
    try:
        table, token = table_from_arn(dead.stream_arn), shard_token(stream_label_from_arn(dead.stream_arn))
    except (MalformedRecordError, ValueError) as e:
        raise Unavailable(f"stream ARN {dead.stream_arn!r}: {e}") from None
    first, last = int(dead.start_sequence), int(dead.end_sequence)
    selection = Selection(tables=(table,))
    objects = [o for o in select_objects(store, prefix, selection)
               if o.shard == token and int(o.first_seq) <= last and int(o.last_seq) >= first]
    records = [orjson.loads(c.record) for c in iter_changes(store, objects, selection) if first <= c.seq <= last]
    return _complete(dead, records, "the raw zone")


def from_stream(dead: DeadLetter, clients: Any, region: str) -> list[Mapping[str, Any]]:
    """The batch's records read again from its stream, shaped as Lambda delivers them."""
    client = clients.dynamodbstreams if dead.kind == "dynamodb" else clients.kinesis
    # Kinesis by name: moto's iterators of a stream given by ARN alone do not find it again
    arn_arg = ({"StreamArn": dead.stream_arn} if dead.kind == "dynamodb"
               else {"StreamName": dead.stream_arn.rsplit(":stream/", 1)[-1]})
    last = int(dead.end_sequence)
    try:
        it = client.get_shard_iterator(**arn_arg, ShardId=dead.shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                       **{"SequenceNumber" if dead.kind == "dynamodb" else
                                          "StartingSequenceNumber": dead.start_sequence})["ShardIterator"]
        out: list[Mapping[str, Any]] = []
        empty = 0
        while it and empty < _MAX_EMPTY_READS:
            resp = client.get_records(ShardIterator=it, Limit=1000)
            raws = resp.get("Records") or []
            empty = 0 if raws else empty + 1
            for raw in raws:
                rec = (dynamodb_record(raw, dead.stream_arn, region) if dead.kind == "dynamodb"
                       else kinesis_record(raw, dead.shard_id, dead.stream_arn, region))
                if int(sequence_of(rec)) > last:
                    return _complete(dead, out, "the stream")
                out.append(rec)
            if out and int(sequence_of(out[-1])) == last:
                break
            it = resp.get("NextShardIterator")
    except AWS_ERRORS as e:
        err = translate(e, "stream", dead.stream_arn)
        if isinstance(err, (NotFoundError, TerminalError)):  # gone, or trimmed past the batch
            raise Unavailable(str(err)) from e
        raise err from e
    return _complete(dead, out, "the stream")


# -- Lambda's record shapes (what the SDK parses back into bytes and datetimes, encoded again) --

def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def dynamodb_record(raw: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A DynamoDB Streams ``GetRecords`` record (SDK-parsed) as Lambda puts it in ``event["Records"]``."""
    src = raw.get("dynamodb", {})
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": math.floor(_epoch(src.get("ApproximateCreationDateTime", 0)))}
    for key in ("Keys", "NewImage", "OldImage"):
        if key in src:
            ddb[key] = {name: attribute_json(v) for name, v in src[key].items()}
    for key in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in src:
            ddb[key] = src[key]
    record: dict[str, Any] = {"eventID": raw["eventID"], "eventName": raw["eventName"], "eventVersion": "1.1",
                              "eventSource": "aws:dynamodb", "awsRegion": raw.get("awsRegion") or region,
                              "dynamodb": ddb, "eventSourceARN": stream_arn}
    ident = raw.get("userIdentity")
    if isinstance(ident, Mapping):
        record["userIdentity"] = {"type": ident.get("Type", ident.get("type")),
                                  "principalId": ident.get("PrincipalId", ident.get("principalId"))}
    return record


def kinesis_record(raw: Mapping[str, Any], shard_id: str, stream_arn: str, region: str) -> dict[str, Any]:
    """A Kinesis ``GetRecords`` record (SDK-parsed) as Lambda puts it in ``event["Records"]``."""
    seq = str(raw["SequenceNumber"])
    return {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": raw["PartitionKey"], "sequenceNumber": seq,
                    "data": b64_text(raw["Data"]),
                    "approximateArrivalTimestamp": _epoch(raw["ApproximateArrivalTimestamp"])},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{shard_id}:{seq}",
        "eventName": "aws:kinesis:record", "awsRegion": region, "eventSourceARN": stream_arn,
    }
