"""The fan-out record and its claim check, declared once: written here, read here.

What the fan-out puts on the lake's Kinesis stream, per DynamoDB stream record (orjson, no
whitespace)::

    {"lake":{"v":1,"table":"<t>"},"record":{<the stream record, untouched>}}

A record whose payload exceeds Kinesis' 1 MiB goes to S3 under a content-addressed key
(:func:`claim_key`, holding the bytes above) and Kinesis carries its claim check::

    {"lake":{"v":1,"table":"<t>","claim":{"bucket":..,"key":..,"bytes":..,"sha256":..}},
     "eventID":..,"SequenceNumber":..,"eventSourceARN":..,"Keys":{..}}

The table is explicit in the envelope and not added to the record: ``tableName`` at the top of
a record marks the native Kinesis-for-DynamoDB format (milliseconds), and would change how
``lake.records.event_time_us`` reads the time.

Writers: :func:`envelope`, :func:`claim_key`, :func:`claim_pointer` (``lake.fanout``).
Readers (``lake.curate``): :func:`split_envelope` recognises an envelope exactly as written by
its bytes and slices the record out unparsed; :func:`read` reads any parsed document that
has a ``lake`` envelope (another writer's field order, a claim check). The module lives with
its writer, the fan-out stage, as the raw line lives with the archive: readers import the
format from the stage that produces it, the way the data flows. Pure: no boto3.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from lake.errors import MalformedRecordError

VERSION = 1
ENVELOPE_KEY, RECORD_KEY, CLAIM_KEY = "lake", "record", "claim"
CLAIM_FIELDS = ("bucket", "key", "bytes", "sha256")  # inside "claim", in this order
# Beside a claim check's envelope: enough to identify the change without fetching the claim.
CLAIM_IDS = ("eventID", "SequenceNumber", "eventSourceARN", "Keys")
ENVELOPE_HEAD = b'{"' + ENVELOPE_KEY.encode() + b'"'  # every envelope and claim check starts so


def _lake(table: str) -> dict[str, Any]:
    return {"v": VERSION, "table": table}


# -- writers --------------------------------------------------------------------------

def envelope(record: Mapping[str, Any], table: str) -> bytes:
    """The Kinesis payload of a stream record: the record untouched, inside the envelope."""
    return orjson.dumps({ENVELOPE_KEY: _lake(table), RECORD_KEY: record})


def claim_key(prefix: str, table: str, data: bytes) -> str:
    """Content-addressed S3 key of a claim check: a redelivered record overwrites itself."""
    return f"{prefix}{table}/{hashlib.sha256(data).hexdigest()}.json"


class Claimed(Protocol):
    """What a claim check is written from (a ``lake.fanout.plan.Entry``)."""

    @property
    def table(self) -> str: ...

    @property
    def data(self) -> bytes: ...  # the envelope put in S3

    @property
    def event_id(self) -> str: ...

    @property
    def sequence_number(self) -> str: ...


def claim_pointer(entry: Claimed, bucket: str, key: str, record: Mapping[str, Any]) -> bytes:
    """What travels in Kinesis instead of a record over 1 MB: where to fetch it, and its ids."""
    ddb = record.get("dynamodb") or {}
    claim = (bucket, key, len(entry.data), hashlib.sha256(entry.data).hexdigest())
    ids = (entry.event_id, entry.sequence_number, record.get("eventSourceARN"), ddb.get("Keys"))
    return orjson.dumps({ENVELOPE_KEY: {**_lake(entry.table), CLAIM_KEY: dict(zip(CLAIM_FIELDS, claim, strict=True))},
                         **dict(zip(CLAIM_IDS, ids, strict=True))})


# -- readers --------------------------------------------------------------------------

# The bytes before and after the table in an envelope exactly as envelope() writes it, taken
# from the writer itself. A table name outside DynamoDB's [A-Za-z0-9_.-] (which JSON would
# escape) is left to read().
_BEFORE, _AFTER = envelope({}, "\x00")[:-len(b"{}}")].split(orjson.dumps("\x00"))
_PREFIX = re.compile(re.escape(_BEFORE) + rb'"([A-Za-z0-9_.\-]+)"' + re.escape(_AFTER))


def split_envelope(data: bytes) -> tuple[str, bytes] | None:
    """``(table, the record's JSON bytes)`` of a payload exactly as :func:`envelope` writes it,
    the record sliced, not parsed; None for anything else (a claim check, a native record)."""
    m = _PREFIX.match(data)
    if m is None or not data.endswith(b"}"):
        return None
    return m.group(1).decode(), data[m.end():-1]


def has_envelope(data: bytes) -> bool:
    """Whether a payload starts as an envelope or claim check does (the cheap test before parsing)."""
    return data.startswith(ENVELOPE_HEAD)


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim check read back: the fan-out record of ``table`` is the S3 object ``bucket/key``."""

    table: str
    bucket: str
    key: str
    sha256: str


def read(doc: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | Claim | None:
    """A parsed payload with a ``lake`` envelope → ``(table, stream record)`` or its :class:`Claim`;
    None when it has no envelope (a native or bare stream record: not ours to read).

    Raises :class:`MalformedRecordError` for an envelope without a table, a claim without a
    field, or an envelope without a record. (The version is not checked: there is one.)"""
    lake = doc.get(ENVELOPE_KEY)
    if not isinstance(lake, Mapping):
        return None
    table = lake.get("table")
    if not isinstance(table, str) or not table:
        raise MalformedRecordError("fan-out envelope without a table")
    claim = lake.get(CLAIM_KEY)
    if isinstance(claim, Mapping):
        try:
            return Claim(table, str(claim["bucket"]), str(claim["key"]), str(claim["sha256"]))
        except KeyError as e:
            raise MalformedRecordError(f"claim check without {e}") from None
    record = doc.get(RECORD_KEY)
    if not isinstance(record, Mapping):
        raise MalformedRecordError("fan-out envelope without a record")
    return table, record
