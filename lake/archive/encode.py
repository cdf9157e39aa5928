"""Turn a batch of DynamoDB stream records into raw-zone objects. Pure: no boto3.

Each record becomes one line ``{"lake":{...envelope...},"record":{...}}`` (declared in
:mod:`lake.archive.line`); the record is serialised with orjson exactly as it was received
(``N`` values are strings already, so 38-digit numbers never meet a float). Lines are grouped by
partition (table, day, hour of ApproximateCreationDateTime) and shard token, in
batch order, and each group becomes one gzip object named by its sequence range.

The archive is the verbatim source of truth, not a validator of attribute values: a
record is archived when it can be *placed* (table and shard from eventSourceARN,
SequenceNumber, ApproximateCreationDateTime, eventName, eventID, and Keys rendered into
the envelope's key) and serialised. Its images need only be JSON objects; an unknown
type tag inside one is archived as delivered (the curated consumer interprets values and
quarantines such records). A record that cannot be placed is *rejected* with a reason
(the writer puts it in quarantine); the rest of the batch goes on.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson

from lake.archive import line
from lake.archive.keys import SEQ_DIGITS, ForeignKeyError, RawObjectKey, shard_token
from lake.errors import MalformedRecordError
from lake.records import (
    BASE64,
    EVENT_NAMES,
    N_LITERAL,
    TYPE_TAGS,
    event_time_us,
    is_ttl_identity,
    key_string,
    sequence_number,
    sequence_sort_key,
    stream_label_from_arn,
    strict_key_string,
    table_from_arn,
)

# Level 1 deflate: on stream records about 2x faster than level 6 (235 vs 110 MB/s) for
# objects about a quarter larger (12.7% vs 10.1% of the JSON), benchmarks/bench_archiver.py;
# every change passes through here once, and the raw zone is read rarely (replay, audits).
GZIP_LEVEL = 1
STREAM_VIEW_TYPES = frozenset({"KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"})
SHA256_OF = "uncompressed"  # object metadata sha256 covers the JSON lines, not the gzip bytes

_number, _base64 = re.compile(N_LITERAL).fullmatch, re.compile(BASE64).fullmatch
# 9999-12-31T23:59:59Z: beyond it there is no YYYY-MM-DD partition to write to.
_MAX_US = 253_402_300_799_999_999
_EVENT_NAMES = frozenset(EVENT_NAMES)


@dataclass(frozen=True)
class Rejected:
    """A record that can never be archived, with the reason and what we know of where it came from."""

    index: int
    reason: str
    record: Any
    seq: str | None = None
    coordinates: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RawObject:
    """One object to put: its key, gzip body and the sequence numbers it carries (batch order)."""

    key: RawObjectKey
    body: bytes
    sha256: str
    uncompressed_bytes: int
    sequence_numbers: tuple[str, ...]

    @property
    def record_count(self) -> int:
        return len(self.sequence_numbers)

    def metadata(self) -> dict[str, str]:
        """S3 user metadata (the contract's four fields, plus which bytes the sha256 covers)."""
        return {
            "record-count": str(self.record_count),
            "first-sequence": self.key.first_seq,
            "last-sequence": self.key.last_seq,
            "sha256": self.sha256,
            "sha256-of": SHA256_OF,
        }


@dataclass(frozen=True)
class BatchPlan:
    objects: tuple[RawObject, ...]
    rejected: tuple[Rejected, ...]


# -- attribute-value checks ---------------------------------------------------------
# Not on the archiver's path for images (it archives them verbatim); used to give the
# precise reason a Keys map cannot be rendered, and available to consumers of the raw zone.

def _bad(where: str, what: str) -> MalformedRecordError:
    return MalformedRecordError(f"{where}: {what}")


def _explain(item: Any, where: str) -> MalformedRecordError:
    """The first problem of an invalid item, with its path (the slow walk, run only on failure)."""
    if type(item) is not dict:
        return _bad(where, f"expected an object of attributes, got {type(item).__name__}")
    stack: list[tuple[Any, str]] = [(v, f"{where}.{k}") for k, v in reversed(item.items())]
    while stack:
        av, path = stack.pop()
        if type(av) is not dict or len(av) != 1:
            return _bad(path, f"not a DynamoDB attribute value ({str(av)[:80]!r})")
        ((tag, val),) = av.items()
        if tag not in TYPE_TAGS:
            return _bad(path, f"unknown DynamoDB type tag {str(tag)[:40]!r}")
        if tag == "M" and type(val) is dict:
            stack.extend((v, f"{path}.{k}") for k, v in reversed(val.items()))
        elif tag == "L" and type(val) is list:
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(val))))
        elif not _valid_values([av]):
            return _bad(path, f"{tag} value {str(val)[:60]!r} does not fit its type")
    return _bad(where, "invalid item")  # unreachable when _valid_values said no


def _valid_values(values: Iterable[Any]) -> bool:
    """True when every attribute value (recursively) has a known tag and the right shape.

    Iterative (no recursion limit), no strings built.
    """
    stack = list(values)
    pop, extend = stack.pop, stack.extend
    number, base64 = _number, _base64
    while stack:
        av = pop()
        if type(av) is not dict or len(av) != 1:
            return False
        for tag, val in av.items():
            kind = type(val)
            if kind is str:
                if tag == "S" or (tag == "N" and number(val)) or (tag == "B" and base64(val)):
                    continue
                return False
            if kind is dict:
                if tag != "M":
                    return False
                extend(val.values())
            elif kind is list:
                if tag == "L":
                    extend(val)
                elif tag == "SS":
                    if not all(type(x) is str for x in val):
                        return False
                elif tag == "NS":
                    if not all(type(x) is str and number(x) for x in val):
                        return False
                elif tag == "BS":
                    if not all(type(x) is str and base64(x) for x in val):
                        return False
                else:
                    return False
            elif kind is bool:
                if not (tag == "BOOL" or (tag == "NULL" and val)):
                    return False
            else:
                return False
    return True


def check_attribute_map(item: Any, where: str) -> dict[str, Any]:
    """Check a DynamoDB-JSON item (``{"name": {"S": "x"}, ...}``): known type tags, right shapes.

    Iterative, so a hostile nesting depth cannot exhaust Python's stack. Raises
    :class:`MalformedRecordError` naming the first bad attribute's path.
    """
    if type(item) is not dict or not _valid_values(item.values()):
        raise _explain(item, where)
    return item


@functools.lru_cache(maxsize=4096)
def _hour_of(hour_index: int) -> tuple[date, int]:
    # A batch's records share a handful of hours: compute each calendar hour once.
    when = datetime.fromtimestamp(hour_index * 3600, tz=UTC)
    return when.date(), when.hour


def _time_us(record: Mapping[str, Any]) -> int:
    try:
        return event_time_us(record)
    except (OverflowError, ValueError) as e:  # 1e999 → inf; nan
        raise MalformedRecordError(f"ApproximateCreationDateTime is not a usable time: {e}") from None


UNKNOWN_TABLE = "_unknown"


def _source(arn: Any) -> tuple[str, str]:
    """``(table, shard token)`` of a stream ARN; one ARN per event source mapping, so cached.

    A record whose eventSourceARN is missing or not a DynamoDB stream ARN (sample events
    carry placeholders such as ``eventsource_arn``) is still a change someone delivered:
    it is archived verbatim under ``table=_unknown``, its shard token derived from the ARN
    text, rather than dropped from the source of truth.
    """
    if type(arn) is not str:  # (not hashable, so not for the cache below)
        return UNKNOWN_TABLE, "no-arn"
    return _source_of(arn)


@functools.lru_cache(maxsize=256)
def _source_of(arn: str) -> tuple[str, str]:
    try:
        table = table_from_arn(arn)
    except MalformedRecordError:
        return UNKNOWN_TABLE, "arn-" + hashlib.sha256(arn.encode()).hexdigest()[:16]
    try:
        label = stream_label_from_arn(arn)
    except MalformedRecordError:  # a table ARN without its stream part
        return table, "no-stream"
    try:
        shard = shard_token(label)
        RawObjectKey(table, date(2000, 1, 1), 0, shard, "0", "0")  # validates table and shard
    except ForeignKeyError as e:
        raise MalformedRecordError(f"eventSourceARN {arn!r}: {e}") from None
    return table, shard


def _keys_error(keys: Any) -> MalformedRecordError:
    """Why Keys cannot be rendered (run only on failure): the most precise reason available."""
    if type(keys) is not dict:
        return MalformedRecordError("record has no dynamodb.Keys object")
    try:
        check_attribute_map(keys, "dynamodb.Keys")  # an unknown tag or a misshapen value, with its path
        key_string(keys)  # a well-formed value of a type no key can have (SS, M, ...)
    except MalformedRecordError as e:
        return e
    return MalformedRecordError(f"dynamodb.Keys {str(keys)[:120]!r} cannot be rendered as a key")


_NO_IMAGE: dict[str, Any] = {}
_MISSING = object()


def envelope(record: Any) -> tuple[dict[str, Any], date, int, str]:
    """Check that a stream record can be placed and build its envelope: ``(lake, dt, hour, shard)``.

    Structural checks only (the archive keeps records verbatim; it does not interpret
    attribute values): the record and ``dynamodb`` are objects, NewImage/OldImage if
    present are objects, Keys are S/N/B scalars, and the coordinates are usable.
    Raises :class:`MalformedRecordError` with the reason when the record cannot be archived.
    ``ApproximateCreationDateTime`` may be a number or a numeric string (as AWS's
    event-filtering docs show it): both are unambiguous epoch seconds, and the record is
    archived unaltered either way.
    """
    if type(record) is not dict and not isinstance(record, dict):
        raise MalformedRecordError(f"record is a {type(record).__name__}, not a JSON object")
    ddb = record.get("dynamodb")
    if type(ddb) is not dict and not isinstance(ddb, dict):
        raise MalformedRecordError("record has no dynamodb object")
    seq = ddb.get("SequenceNumber")
    if type(seq) is not str or not seq.isdigit() or not seq.isascii():
        seq = sequence_number(record)  # raises when missing or not decimal
        # str.isdigit() also accepts non-ASCII digits, which no key can hold
        raise MalformedRecordError(f"dynamodb.SequenceNumber {seq!r} is not ASCII decimal")
    if len(seq) > SEQ_DIGITS and len(seq.lstrip("0")) > SEQ_DIGITS:
        raise MalformedRecordError(f"dynamodb.SequenceNumber has more than {SEQ_DIGITS} digits")
    arn = record.get("eventSourceARN")
    table, shard = _source_of(arn) if type(arn) is str else _source(arn)  # (the usual case: one call)
    event = record.get("eventName")
    if type(event) is not str or event not in _EVENT_NAMES:
        raise MalformedRecordError(f"eventName {event!r} is not one of {', '.join(EVENT_NAMES)}")
    event_id = record.get("eventID")
    if type(event_id) is not str or not event_id:
        raise MalformedRecordError("record has no eventID")
    view = ddb.get("StreamViewType")
    if view is not None and (type(view) is not str or view not in STREAM_VIEW_TYPES):
        raise MalformedRecordError(f"dynamodb.StreamViewType {view!r} is unknown")
    if type(ddb.get("NewImage", _NO_IMAGE)) is not dict or type(ddb.get("OldImage", _NO_IMAGE)) is not dict:
        name = "NewImage" if type(ddb.get("NewImage", _NO_IMAGE)) is not dict else "OldImage"
        raise MalformedRecordError(f"dynamodb.{name} is a {type(ddb[name]).__name__}, not an object of attributes")
    key = strict_key_string(ddb.get("Keys"))
    if key is None:
        raise _keys_error(ddb.get("Keys"))
    t = ddb.get("ApproximateCreationDateTime", _MISSING)
    if t is _MISSING:
        # Lambda always sets it; a hand-made event may not. Place the record by its arrival
        # time instead and say so in the envelope (``tsrc``), rather than lose it.
        us = time.time_ns() // 1000
        day, hour = _hour_of(us // 3_600_000_000)
        ttl = event == "REMOVE" and is_ttl_identity(record.get("userIdentity"))
        return line.envelope(table, key, seq, us, event, event_id, ttl, tsrc="arrival"), day, hour, shard
    # The usual Lambda shape inline (integer epoch seconds, no precision field, not a
    # Kinesis record); anything else through the general helper.
    if type(t) is int and "ApproximateCreationDateTimePrecision" not in ddb \
            and "recordFormat" not in record and "tableName" not in record:
        us = t * 1_000_000
    else:
        us = _time_us(record)
    if not 0 <= us <= _MAX_US:
        raise MalformedRecordError(f"ApproximateCreationDateTime {us} us is outside 1970..9999")
    day, hour = _hour_of(us // 3_600_000_000)
    ttl = event == "REMOVE" and is_ttl_identity(record.get("userIdentity"))
    return line.envelope(table, key, seq, us, event, event_id, ttl), day, hour, shard


def coordinates(record: Any, index: int) -> dict[str, Any]:
    """What we can tell about where a record came from, for the quarantine."""
    out: dict[str, Any] = {"index": index}
    if isinstance(record, dict):
        for name in ("eventID", "eventName", "eventSourceARN"):
            if isinstance(record.get(name), str):
                out[name] = record[name]
        ddb = record.get("dynamodb")
        if isinstance(ddb, dict):
            for name in ("SequenceNumber", "ApproximateCreationDateTime"):
                if isinstance(ddb.get(name), (str, int, float)):
                    out[name] = ddb[name]
    return out


def _seq_or_none(record: Any) -> str | None:
    """The SequenceNumber, if it can be reported to Lambda as an item failure."""
    try:
        seq = sequence_number(record) if isinstance(record, dict) else None
    except MalformedRecordError:
        return None
    return seq if seq is not None and seq.isascii() else None


def gzip_lines(lines: Iterable[bytes], level: int = GZIP_LEVEL) -> tuple[bytes, str, int]:
    """Join lines with ``\\n`` (and a final one) into one gzip member.

    Returns ``(gzip, sha256 of the uncompressed text, uncompressed size)``. The gzip
    header carries no mtime or name (wbits=31 via zlib), so the same lines always
    give the same bytes: a redelivered batch rewrites an identical object.
    """
    text = b"\n".join(lines) + b"\n"
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    return comp.compress(text) + comp.flush(), hashlib.sha256(text).hexdigest(), len(text)


def _raw_object(part: tuple[str, date, int, str], lines: list[bytes], seqs: list[str], prefix: str,
                level: int) -> RawObject:
    table, day, hour, shard = part
    try:  # int(): the numbers are checked ASCII decimal, and a C int() beats a Python key
        first, last = min(seqs, key=int), max(seqs, key=int)
    except ValueError:  # thousands of leading zeros: beyond int()'s digit limit
        first, last = min(seqs, key=sequence_sort_key), max(seqs, key=sequence_sort_key)
    body, digest, size = gzip_lines(lines, level)
    return RawObject(RawObjectKey(table, day, hour, shard, first, last, prefix), body, digest, size, tuple(seqs))


def plan_batch(records: Sequence[Any], prefix: str = "", level: int = GZIP_LEVEL) -> BatchPlan:
    """Encode a whole batch: the objects to put and the records to quarantine.

    Lines are grouped into one object per (table, dt, hour, shard), in batch order; objects
    come back sorted by their lowest sequence number, the order the writer puts them in (see
    :mod:`lake.archive.writer` for why). This is the archiver's hot loop.
    """
    groups: dict[tuple[str, date, int, str], tuple[list[bytes], list[str]]] = {}
    rejected: list[Rejected] = []
    write = line.write
    # (Pausing the cyclic GC here was measured and bought nothing: the loop allocates few containers.)
    for i, record in enumerate(records):
        try:
            lake, day, hour, shard = envelope(record)
            text = write(lake, record)
        except orjson.JSONEncodeError as e:  # e.g. an integer beyond 64 bits in SizeBytes
            reason = f"record cannot be serialised verbatim: {e}"
            rejected.append(Rejected(i, reason, record, _seq_or_none(record), coordinates(record, i)))
            continue
        except MalformedRecordError as e:
            rejected.append(Rejected(i, str(e), record, _seq_or_none(record), coordinates(record, i)))
            continue
        part = (lake["table"], day, hour, shard)
        group = groups.get(part)
        if group is None:
            group = groups[part] = ([], [])
        group[0].append(text)
        group[1].append(lake["seq"])
    objects = [_raw_object(part, lines, seqs, prefix, level) for part, (lines, seqs) in groups.items()]
    objects.sort(key=lambda o: sequence_sort_key(o.key.first_seq))
    return BatchPlan(tuple(objects), tuple(rejected))
