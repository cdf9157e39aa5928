"""Pure helpers over DynamoDB change records. No boto3 here.

Two shapes arrive:

* **DynamoDB Streams via Lambda**: ``dynamodb.ApproximateCreationDateTime`` in
  epoch *seconds*, ``eventSourceARN`` = the stream ARN (the table name is in it),
  ``dynamodb.SequenceNumber`` a decimal string.
* **Kinesis Data Streams for DynamoDB** (inside the Kinesis ``data``):
  ``tableName``, ``recordFormat``, ``ApproximateCreationDateTime`` in
  milliseconds, or microseconds when
  ``ApproximateCreationDateTimePrecision == "MICROSECOND"``; no SequenceNumber.

The one time convention of the lake: **UTC, integer microseconds since the
epoch** (Arrow ``timestamp("us", "UTC")``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

import orjson

from lake.errors import MalformedRecordError

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
EVENT_NAMES: tuple[EventName, ...] = ("INSERT", "MODIFY", "REMOVE")
StreamViewType = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]
TYPE_TAGS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})

TTL_PRINCIPAL = "dynamodb.amazonaws.com"

_STREAM_ARN = re.compile(
    r"^arn:aws[\w-]*:dynamodb:(?P<region>[\w-]*):(?P<account>\d*):table/(?P<table>[^/]+)"
    r"(?:/stream/(?P<label>[^/]+))?$"
)


class UserIdentity(TypedDict):
    type: str
    principalId: str


class StreamPayload(TypedDict, total=False):
    ApproximateCreationDateTime: float | int
    ApproximateCreationDateTimePrecision: str
    Keys: dict[str, Any]
    NewImage: dict[str, Any]
    OldImage: dict[str, Any]
    SequenceNumber: str
    SizeBytes: int
    StreamViewType: str


class DynamoDBStreamRecord(TypedDict, total=False):
    """One element of ``event["Records"]`` exactly as Lambda delivers it."""

    eventID: str
    eventName: str
    eventVersion: str
    eventSource: str
    awsRegion: str
    dynamodb: StreamPayload
    eventSourceARN: str
    userIdentity: UserIdentity
    # present on Kinesis-Data-Streams-for-DynamoDB records
    tableName: str
    recordFormat: str


def table_from_arn(arn: str) -> str:
    """``arn:aws:dynamodb:r:a:table/orders/stream/2024-…`` → ``orders``."""
    m = _STREAM_ARN.match(arn or "")
    if not m:
        raise MalformedRecordError(f"eventSourceARN {arn!r} is not a DynamoDB table or stream ARN")
    return m.group("table")


def stream_label_from_arn(arn: str) -> str:
    m = _STREAM_ARN.match(arn or "")
    if not m or not m.group("label"):
        raise MalformedRecordError(f"eventSourceARN {arn!r} is not a DynamoDB stream ARN")
    return m.group("label")


def table_name(record: Mapping[str, Any]) -> str:
    """Source table of a record of either shape."""
    name = record.get("tableName")
    if isinstance(name, str) and name:
        return name
    arn = record.get("eventSourceARN")
    if not isinstance(arn, str):
        raise MalformedRecordError("record has neither tableName nor eventSourceARN")
    return table_from_arn(arn)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise MalformedRecordError(f"{what} is a boolean, not a number")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        # AWS's event-filtering docs show it as a string; accept digits, refuse prose.
        try:
            return float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            pass
    raise MalformedRecordError(f"{what} {value!r} is not an epoch number")


def event_time_us(record: Mapping[str, Any]) -> int:
    """The change's own time in integer microseconds since the epoch (UTC).

    Seconds for DynamoDB Streams; milliseconds (or microseconds, per
    ``ApproximateCreationDateTimePrecision``) for Kinesis Data Streams for
    DynamoDB, recognised by ``recordFormat``/``tableName`` or by the precision field.
    """
    ddb = record.get("dynamodb")
    if not isinstance(ddb, Mapping) or "ApproximateCreationDateTime" not in ddb:
        raise MalformedRecordError("record has no dynamodb.ApproximateCreationDateTime")
    raw = _number(ddb["ApproximateCreationDateTime"], "ApproximateCreationDateTime")
    precision = ddb.get("ApproximateCreationDateTimePrecision")
    if precision == "MICROSECOND":
        return int(raw)
    if precision == "MILLISECOND" or "recordFormat" in record or "tableName" in record:
        return round(raw * 1_000)
    return round(raw * 1_000_000)


def us_to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def datetime_to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def is_ttl_delete(record: Mapping[str, Any]) -> bool:
    """A REMOVE made by DynamoDB's Time to Live sweeper, not by a user."""
    ident = record.get("userIdentity")
    return (
        record.get("eventName") == "REMOVE"
        and isinstance(ident, Mapping)
        and ident.get("type") == "Service"
        and ident.get("principalId") == TTL_PRINCIPAL
    )


def sequence_number(record: Mapping[str, Any]) -> str:
    ddb = record.get("dynamodb")
    seq = ddb.get("SequenceNumber") if isinstance(ddb, Mapping) else None
    if not isinstance(seq, str) or not seq.isdigit():
        raise MalformedRecordError(f"dynamodb.SequenceNumber {seq!r} is missing or not a decimal string")
    return seq


def sequence_sort_key(seq: str) -> tuple[int, str]:
    """Sequence numbers are decimal strings of varying length: compare as numbers."""
    return (len(seq.lstrip("0")), seq.lstrip("0"))


def _scalar_text(value: Mapping[str, Any]) -> str:
    (tag, inner), = value.items()
    if tag in ("S", "N"):
        return str(inner)
    if tag == "B":
        return inner if isinstance(inner, str) else base64.b64encode(inner).decode()
    raise MalformedRecordError(f"key attribute of type {tag} (keys are S, N or B)")


def canonical_keys(keys: Mapping[str, Any]) -> str:
    """Keys as canonical typed JSON (sorted attribute names, no spaces)."""
    return orjson.dumps(keys, option=orjson.OPT_SORT_KEYS).decode()


def escape_key_value(text: str) -> str:
    """Escape ``\\`` and ``|`` in a key value, so two different keys never render alike."""
    if "\\" in text or "|" in text:
        return text.replace("\\", "\\\\").replace("|", "\\|")
    return text


def escape_key_name(text: str) -> str:
    """Escape ``\\``, ``|`` and ``=`` in a key attribute name."""
    return escape_key_value(text).replace("=", "\\=") if "=" in text else escape_key_value(text)


def key_string(keys: Mapping[str, Any]) -> str:
    """A readable, canonical item key: ``pk=ORDER#1|sk=2024-01-01`` (names sorted).

    ``|`` and ``\\`` in values (and ``=`` in names) are escaped with a backslash, so
    ``pk="a|sk=c", sk="d"`` and ``pk="a", sk="c|sk=d"`` stay two keys."""
    if not keys:
        raise MalformedRecordError("record has no dynamodb.Keys")
    try:
        return "|".join(f"{escape_key_name(name)}={escape_key_value(_scalar_text(keys[name]))}"
                        for name in sorted(keys))
    except (ValueError, AttributeError) as e:
        raise MalformedRecordError(f"malformed Keys {keys!r}: {e}") from None


def partition_key(table: str, keys: Mapping[str, Any]) -> str:
    """A Kinesis partition key per item so all changes of one item share a shard.

    Kinesis allows 256 characters; longer keys are shortened with a digest so
    the mapping stays deterministic.
    """
    text = f"{table}|{key_string(keys)}"
    if len(text) <= 256:
        return text
    import hashlib

    return text[:191] + "#" + hashlib.sha256(text.encode()).hexdigest()
