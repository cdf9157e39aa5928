"""The two stream sources behind one small interface: list shards, get an iterator, read.

GetRecords answers are taken as the JSON they arrive in: the records are what Lambda delivers
already (binary values base64 text, times epoch numbers), so they are not parsed into Python
types by botocore (decoding every binary value) only to be encoded back (:func:`_raw_records`).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from botocore.exceptions import ClientError

from lake.aws.clients import Clients, error_code, translate
from lake.errors import NotFoundError, TransientError
from lake.local.runtime.events import (
    SourceKind,
    StreamRecord,
    dynamodb_event_record,
    dynamodb_wire_record,
    kinesis_event_record,
    kinesis_wire_record,
)


class IteratorExpired(TransientError):
    """The shard iterator is too old (or was trimmed away): get a new one from the checkpoint."""


class PositionTrimmed(IteratorExpired):
    """The position asked for is older than the stream's retention: its records are gone."""


@dataclass(frozen=True)
class ShardInfo:
    shard_id: str
    parents: tuple[str, ...]
    closed: bool


@dataclass(frozen=True)
class ReadResult:
    records: list[StreamRecord]
    next_iterator: str | None


class StreamSource:
    kind: SourceKind
    max_limit: int

    def __init__(self, clients: Clients, arn: str) -> None:
        self.clients, self.arn = clients, arn
        self.region = clients.settings.region

    def shards(self) -> list[ShardInfo]:
        raise NotImplementedError

    def identity(self) -> str:
        """What tells this instance of the stream from another one under the same ARN (its creation time)."""
        raise NotImplementedError

    def iterator(self, shard_id: str, kind: str, seq: str | None = None,
                 timestamp: datetime | None = None) -> str:
        raise NotImplementedError

    def read(self, shard_id: str, iterator: str, limit: int) -> ReadResult:
        raise NotImplementedError


def _instant(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value.timestamp():.6f}"
    return str(value)


def _call(kind: str, name: str, fn: Any, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except ClientError as e:
        if error_code(e) == "TrimmedDataAccessException":
            raise PositionTrimmed(str(e)) from e
        if error_code(e) == "ExpiredIteratorException":
            raise IteratorExpired(str(e)) from e
        raise translate(e, kind, name) from e


_RAW = threading.local()  # set around the runtime's own GetRecords calls
_RAW_KEY = "LakeWireRecords"
_HOOKED: weakref.WeakSet[Any] = weakref.WeakSet()
_HOOK_LOCK = threading.Lock()


def _keep_wire_records(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore's ``before-parse``: the records leave the body as JSON values; the rest is parsed as usual."""
    if not getattr(_RAW, "on", False) or response_dict.get("status_code", 500) >= 300:
        return
    try:
        body = orjson.loads(response_dict["body"] or b"{}")
    except orjson.JSONDecodeError:  # nested past orjson's limit: botocore parses it as usual
        return
    customized_response_dict[_RAW_KEY] = body.pop("Records", [])
    response_dict["body"] = orjson.dumps(body)


def _raw_records(api: Any, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``api.get_records(**kwargs)`` with the records as their wire JSON: (the response, the records)."""
    with _HOOK_LOCK:
        if api not in _HOOKED:
            event = f"before-parse.{api.meta.service_model.service_id.hyphenize()}.GetRecords"
            api.meta.events.register(event, _keep_wire_records, unique_id="lake-wire-records")
            _HOOKED.add(api)
    _RAW.on = True
    try:
        resp = api.get_records(**kwargs)
    finally:
        _RAW.on = False
    return resp, resp.pop(_RAW_KEY, None) or resp.get("Records", [])


class DynamoDBStreamSource(StreamSource):
    kind: SourceKind = "dynamodb"
    max_limit = 1000

    def __init__(self, clients: Clients, arn: str) -> None:
        if "/stream/" not in arn:
            # A table ARN: follow it to the table's current stream.
            from lake.aws.provision import stream_arn
            from lake.records import table_from_arn

            arn = stream_arn(clients, table_from_arn(arn))
        super().__init__(clients, arn)
        self.api = clients.dynamodbstreams

    def shards(self) -> list[ShardInfo]:
        out: list[ShardInfo] = []
        kwargs: dict[str, Any] = {"StreamArn": self.arn}
        while True:
            desc = _call("DynamoDB stream", self.arn, self.api.describe_stream, **kwargs)["StreamDescription"]
            for s in desc.get("Shards", []):
                parent = s.get("ParentShardId")
                closed = "EndingSequenceNumber" in s.get("SequenceNumberRange", {})
                out.append(ShardInfo(s["ShardId"], (parent,) if parent else (), closed))
            last = desc.get("LastEvaluatedShardId")
            if not last:
                return out
            kwargs["ExclusiveStartShardId"] = last

    def identity(self) -> str:
        desc = _call("DynamoDB stream", self.arn, self.api.describe_stream, StreamArn=self.arn,
                     Limit=1)["StreamDescription"]
        return f"created {_instant(desc.get('CreationRequestDateTime'))}"

    def iterator(self, shard_id: str, kind: str, seq: str | None = None,
                 timestamp: datetime | None = None) -> str:
        if kind == "AT_TIMESTAMP":
            raise NotFoundError("starting position", "AT_TIMESTAMP", "DynamoDB Streams do not support it")
        kwargs: dict[str, Any] = {"StreamArn": self.arn, "ShardId": shard_id, "ShardIteratorType": kind}
        if seq is not None:
            kwargs["SequenceNumber"] = seq
        return str(_call("DynamoDB stream", self.arn, self.api.get_shard_iterator, **kwargs)["ShardIterator"])

    def read(self, shard_id: str, iterator: str, limit: int) -> ReadResult:
        resp, wire = _call("DynamoDB stream", self.arn, _raw_records, api=self.api, ShardIterator=iterator,
                           Limit=max(1, min(limit, self.max_limit)))
        if "Records" in resp:  # parsed after all (another handler on this client): boto3's shapes
            recs = [dynamodb_event_record(r, self.arn, self.region) for r in resp["Records"]]
        else:
            recs = [dynamodb_wire_record(r, self.arn, self.region) for r in wire]
        return ReadResult(recs, resp.get("NextShardIterator"))


class KinesisSource(StreamSource):
    kind: SourceKind = "kinesis"
    max_limit = 10000

    def __init__(self, clients: Clients, arn: str) -> None:
        super().__init__(clients, arn)
        self.api = clients.kinesis
        self.name = arn.rsplit("/", 1)[-1]

    def shards(self) -> list[ShardInfo]:
        out: list[ShardInfo] = []
        kwargs: dict[str, Any] = {"StreamARN": self.arn}
        while True:
            resp = _call("Kinesis stream", self.name, self.api.list_shards, **kwargs)
            for s in resp.get("Shards", []):
                parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
                closed = "EndingSequenceNumber" in s.get("SequenceNumberRange", {})
                out.append(ShardInfo(s["ShardId"], parents, closed))
            token = resp.get("NextToken")
            if not token:
                return out
            kwargs = {"NextToken": token}

    def identity(self) -> str:
        desc = _call("Kinesis stream", self.name, self.api.describe_stream_summary,
                     StreamARN=self.arn)["StreamDescriptionSummary"]
        return f"created {_instant(desc.get('StreamCreationTimestamp'))}"

    def iterator(self, shard_id: str, kind: str, seq: str | None = None,
                 timestamp: datetime | None = None) -> str:
        kwargs: dict[str, Any] = {"StreamARN": self.arn, "ShardId": shard_id, "ShardIteratorType": kind}
        if seq is not None:
            kwargs["StartingSequenceNumber"] = seq
        if timestamp is not None:
            kwargs["Timestamp"] = timestamp
        return str(_call("Kinesis stream", self.name, self.api.get_shard_iterator, **kwargs)["ShardIterator"])

    def read(self, shard_id: str, iterator: str, limit: int) -> ReadResult:
        # moto needs the ARN again when the iterator was asked for by ARN (AWS accepts it too).
        resp, wire = _call("Kinesis stream", self.name, _raw_records, api=self.api, ShardIterator=iterator,
                           StreamARN=self.arn, Limit=max(1, min(limit, self.max_limit)))
        if "Records" in resp:
            recs = [kinesis_event_record(r, shard_id, self.arn, self.region) for r in resp["Records"]]
        else:
            recs = [kinesis_wire_record(r, shard_id, self.arn, self.region) for r in wire]
        return ReadResult(recs, resp.get("NextShardIterator"))


def open_source(clients: Clients, arn: str) -> StreamSource:
    """The source for a DynamoDB stream (or table) ARN or a Kinesis stream ARN; checks it exists."""
    if ":dynamodb:" in arn:
        dsrc: StreamSource = DynamoDBStreamSource(clients, arn)
        dsrc.shards()
        return dsrc
    if ":kinesis:" in arn and ":stream/" in arn:
        ksrc = KinesisSource(clients, arn)
        ksrc.shards()
        return ksrc
    raise NotFoundError("event source", arn, "expected a DynamoDB stream ARN or a Kinesis stream ARN")

