"""Decode Kinesis records (our fan-out envelope or native Kinesis Data Streams for DynamoDB)
into changes. Pure: no boto3; a claim check is returned as a pointer for the adapter to fetch.
The fan-out's envelope and claim check are read by :mod:`lake.fanout.wire`.
"""

from __future__ import annotations

import base64
import binascii
import gc
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import orjson

from lake.errors import MalformedRecordError
from lake.fanout import wire
from lake.records import (
    EVENT_NAMES,
    JSON_NUMBER,
    canonical_keys,
    event_time_us,
    is_ttl_delete,
    key_string,
    table_name,
)

SEQ_WIDTH = 64  # sequence_number is zero-padded to this many digits (docs/CONTRACTS.md)
US_PER_DAY = 86_400_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_JSON_NUMBER = re.compile(JSON_NUMBER)


@dataclass(frozen=True, slots=True)
class Coordinates:
    """Where a Kinesis record sits: its shard and sequence number (the batch item id)."""

    shard_id: str
    sequence_number: str  # as Kinesis gives it (the itemIdentifier for batchItemFailures)


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """A fan-out claim check: the stream record lives in S3."""

    coords: Coordinates
    table: str
    bucket: str
    key: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Change:
    """One DynamoDB change, decoded, with its Kinesis coordinates."""

    coords: Coordinates
    table: str
    event_id: str
    event_name: str
    event_time_us: int
    source_sequence_number: str | None
    keys: Mapping[str, Any]
    key: str  # lake.records.key_string(keys)
    old_image: Mapping[str, Any] | None
    new_image: Mapping[str, Any] | None
    user_identity: str | None
    is_ttl_delete: bool
    size_bytes: int | None
    old_json: str | None = None  # plain_json(old_image), rendered (and so checked) by decode
    new_json: str | None = None

    @property
    def dt(self) -> str:
        return day_of(self.event_time_us)

    @property
    def padded_sequence(self) -> str:
        return self.coords.sequence_number.zfill(SEQ_WIDTH)

    @property
    def image(self) -> Mapping[str, Any]:
        """The item as this change leaves it (REMOVE: as it was deleted; KEYS_ONLY: the keys)."""
        return self.new_image or self.old_image or self.keys


@lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat()


def day_of(us: int) -> str:
    """``YYYY-MM-DD`` (UTC) of an epoch-microsecond time."""
    return _day(us // US_PER_DAY)


def shard_id(kinesis_record: Mapping[str, Any]) -> str:
    """The shard of a Lambda Kinesis event record (its eventID is ``<shard>:<sequence number>``)."""
    return str(kinesis_record.get("eventID", "")).split(":", 1)[0] or "shardId-unknown"


def coordinates(kinesis_record: Mapping[str, Any]) -> Coordinates:
    """Shard and sequence number of a Lambda Kinesis event record."""
    kin = kinesis_record.get("kinesis") or {}
    seq = kin.get("sequenceNumber")
    shard = shard_id(kinesis_record)
    if not isinstance(seq, str):
        raise MalformedRecordError("Kinesis record has no kinesis.sequenceNumber")
    return Coordinates(shard, seq)


def payload(kinesis_record: Mapping[str, Any]) -> Any:
    """The JSON document a Kinesis record carries (raises MalformedRecordError)."""
    try:
        # base64.b64decode(validate=True) is this call, after a wrapper's checks that it repeats
        raw = binascii.a2b_base64(kinesis_record["kinesis"]["data"], strict_mode=True)
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedRecordError(f"kinesis.data is missing or not base64: {e}") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MalformedRecordError(f"kinesis.data is not JSON: {e}") from None


def unwrap(doc: Any, coords: Coordinates) -> tuple[str, Mapping[str, Any]] | ClaimRef:
    """Recognise the payload: fan-out envelope, claim pointer, native KDS-for-DynamoDB
    record, or a bare DynamoDB stream record. Returns (table, stream record) or a ClaimRef."""
    if not isinstance(doc, Mapping):
        raise MalformedRecordError(f"payload is a JSON {type(doc).__name__}, not a DynamoDB change")
    ours = wire.read(doc)
    if isinstance(ours, wire.Claim):
        return ClaimRef(coords, ours.table, ours.bucket, ours.key, ours.sha256)
    if ours is not None:
        return ours
    if "dynamodb" in doc and ("tableName" in doc or "eventSourceARN" in doc):
        return table_name(doc), doc
    raise MalformedRecordError("payload is not a DynamoDB change (no dynamodb, tableName or envelope)")


def decode(table: str, record: Mapping[str, Any], coords: Coordinates) -> Change:
    """A stream record of either shape → Change (raises MalformedRecordError)."""
    # dict checks, not Mapping: records come from orjson and abc checks cost on the hot path
    ddb = record.get("dynamodb")
    if type(ddb) is not dict:
        raise MalformedRecordError("record has no dynamodb object")
    name = record.get("eventName")
    if name not in EVENT_NAMES:
        raise MalformedRecordError(f"eventName {name!r} is not INSERT, MODIFY or REMOVE")
    keys = ddb.get("Keys")
    if type(keys) is not dict or not keys:
        raise MalformedRecordError("record has no dynamodb.Keys")
    event_id = record.get("eventID")
    if type(event_id) is not str or not event_id:
        raise MalformedRecordError("record has no eventID")
    old, new = ddb.get("OldImage"), ddb.get("NewImage")
    old = old if type(old) is dict else None
    new = new if type(new) is dict else None
    ident = record.get("userIdentity")
    principal = ident.get("principalId") if type(ident) is dict else None
    seq = ddb.get("SequenceNumber")
    size = ddb.get("SizeBytes")
    # the images' texts now, not when the batch's table is built: a value they cannot hold
    # quarantines its own record, not every record of its table in the batch
    new_json, old_json = plain_json(new), plain_json(old)
    check_cells(new or old or keys)
    return Change(
        coords, table, event_id, name, event_time_us(record),
        seq if type(seq) is str else None,
        keys, key_string(keys), old, new,
        principal if type(principal) is str else None,
        principal is not None and name == "REMOVE" and is_ttl_delete(record),
        size if type(size) is int else None,
        old_json, new_json,
    )


def _strings(v: Any) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


def _base64(v: str) -> bool:
    try:
        base64.b64decode(v)  # as lake.curate.columns decodes B values for the history
    except ValueError:  # binascii.Error: a length or padding no decoder accepts
        return False
    return True


def check_cells(image: Mapping[str, Any]) -> None:
    """MalformedRecordError unless every top-level value of the item's image can go into a
    typed history column (lake.curate.columns): one known tag, a value of its JSON kind, B
    and BS values base64. Nested values are kept as text and need no check."""
    for name, value in image.items():
        try:
            ((tag, v),) = value.items()
        except (AttributeError, ValueError):
            raise MalformedRecordError(f"attribute {name!r} is not one typed value") from None
        if tag == "S" or tag == "N":
            ok = v is None or type(v) is str
        elif tag == "B":
            ok = v is None or (type(v) is str and _base64(v))
        elif tag == "BOOL":
            ok = v is None or type(v) is bool
        elif tag == "SS" or tag == "NS":
            ok = _strings(v)
        elif tag == "BS":
            ok = _strings(v) and all(_base64(x) for x in v)
        elif tag in ("M", "L", "NULL"):
            ok = True
        else:
            raise MalformedRecordError(f"attribute {name!r}: unknown DynamoDB type tag {tag!r}")
        if not ok:
            raise MalformedRecordError(f"attribute {name!r}: {tag} value {str(v)[:60]!r} is not one")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is converted.

    Decoding allocates millions of small acyclic dicts and lists that live until the
    batch is written; each full collection would walk all of them again, which cost
    more than the conversion itself (measured: ~2x). Reference counting still frees
    everything; collection resumes right after.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# -- plain JSON of images ------------------------------------------------------

def _number(text: str) -> orjson.Fragment:
    if not _JSON_NUMBER.fullmatch(text):
        raise MalformedRecordError(f"N value {text!r} is not a number literal")
    return orjson.Fragment(text)


def plain(value: Mapping[str, Any]) -> Any:
    """One typed DynamoDB value → a plain JSON-able value (N kept as its exact literal)."""
    ((tag, v),) = value.items()
    if tag == "S" or tag == "B" or tag == "BOOL":
        return v
    if tag == "N":
        return _number(v)
    if tag == "M":
        return {k: plain(x) for k, x in v.items()}
    if tag == "L":
        return [plain(x) for x in v]
    if tag == "NULL":
        return None
    if tag == "NS":
        return [_number(x) for x in v]
    if tag == "SS" or tag == "BS":
        return list(v)
    raise MalformedRecordError(f"unknown DynamoDB type tag {tag!r}")


def plain_json(image: Mapping[str, Any] | None) -> str | None:
    """An image as plain JSON text: DynamoDB JSON unmarshalled, N exact, B/BS base64."""
    if image is None:
        return None
    try:
        return orjson.dumps({k: plain(v) for k, v in image.items()}).decode()
    except (ValueError, AttributeError, TypeError) as e:
        raise MalformedRecordError(f"malformed image: {e}") from None


def changed_attributes(change: Change) -> list[str]:
    """Top-level attributes whose value differs; all of them for INSERT/REMOVE."""
    old, new = change.old_image, change.new_image
    if change.event_name != "MODIFY" or old is None or new is None:
        return sorted((new or old or {}).keys())
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def keys_json(change: Change) -> str:
    return canonical_keys(change.keys)


