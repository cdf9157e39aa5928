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
import functools
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

import orjson

from lake.errors import MalformedRecordError

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
EVENT_NAMES: tuple[EventName, ...] = ("INSERT", "MODIFY", "REMOVE")
StreamViewType = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]
TYPE_TAGS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})

# The identity DynamoDB's Time to Live sweeper deletes with (a REMOVE's ``userIdentity``).
TTL_IDENTITY_TYPE = "Service"
TTL_PRINCIPAL = "dynamodb.amazonaws.com"

# A DynamoDB table or stream ARN. The pattern text is also run by Arrow's RE2 on whole columns
# (lake.curate.columnar): there ``\w`` and ``\d`` are ASCII, so RE2 matches a subset of what
# Python matches, with the same groups, and the rest takes the per-record path.
STREAM_ARN = (r"^arn:aws[\w-]*:dynamodb:(?P<region>[\w-]*):(?P<account>\d*):table/(?P<table>[^/]+)"
              r"(?:/stream/(?P<label>[^/]+))?$")
_STREAM_ARN = re.compile(STREAM_ARN)

# -- number and binary literals ---------------------------------------------------
# Pattern texts, not compiled patterns: Python's re (full matches) and Arrow's RE2 (``^...$``
# around them) both run them. ``\d`` is Unicode in Python's str patterns and ASCII in RE2.

# An N value as the archive accepts it: digits with an optional sign, fraction and exponent
# (``1.``, ``.5`` and leading zeros included: the archive keeps records, it does not normalise).
N_LITERAL = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
# A JSON number literal: an N value the curated zone can write into JSON text unchanged.
JSON_NUMBER = r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?"
# A B value's shape: base64 text (its length is not checked here).
BASE64 = r"[A-Za-z0-9+/]*={0,2}"
_n_literal = re.compile(N_LITERAL).fullmatch
_base64 = re.compile(BASE64).fullmatch


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


# 9999-12-31T23:59:59.999999Z: the last instant Athena's timestamp, Arrow's and a YYYY date hold
MAX_TIME_US = 253_402_300_799_999_999


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
        us = int(raw)
    elif precision == "MILLISECOND" or "recordFormat" in record or "tableName" in record:
        us = round(raw * 1_000)
    else:
        us = round(raw * 1_000_000)
    if not 0 <= us <= MAX_TIME_US:
        raw_text = ddb["ApproximateCreationDateTime"]
        raise MalformedRecordError(f"ApproximateCreationDateTime {raw_text!r} is outside 1970-01-01..9999-12-31")
    return us


def us_to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def datetime_to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def is_ttl_identity(ident: Any) -> bool:
    """``userIdentity`` is DynamoDB's Time to Live sweeper (for a record known to be a REMOVE)."""
    # (the dict check first: it is what JSON gives, and it costs less than the abc check)
    return (type(ident) is dict or isinstance(ident, Mapping)) \
        and ident.get("type") == TTL_IDENTITY_TYPE and ident.get("principalId") == TTL_PRINCIPAL


def is_ttl_delete(record: Mapping[str, Any]) -> bool:
    """A REMOVE made by DynamoDB's Time to Live sweeper, not by a user."""
    return record.get("eventName") == "REMOVE" and is_ttl_identity(record.get("userIdentity"))


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


# -- item keys ----------------------------------------------------------------------
# ``pk=A|sk=1``: attributes sorted by name, ``name=value`` joined by ``|``. The escapes, in the
# order they apply (the backslash first, so no escape is escaped again): applied by
# escape_key_value/escape_key_name here and, on whole columns, by lake.curate.columnar.
KEY_SEPARATOR, KEY_ASSIGN, KEY_ESCAPE = "|", "=", "\\"
KEY_VALUE_ESCAPES: tuple[tuple[str, str], ...] = ((KEY_ESCAPE, KEY_ESCAPE * 2),
                                                  (KEY_SEPARATOR, KEY_ESCAPE + KEY_SEPARATOR))
KEY_NAME_ESCAPES: tuple[tuple[str, str], ...] = (*KEY_VALUE_ESCAPES, (KEY_ASSIGN, KEY_ESCAPE + KEY_ASSIGN))
_NAME_NEEDS_ESCAPE = re.compile("[" + re.escape("".join(c for c, _ in KEY_NAME_ESCAPES)) + "]").search


def escape_key_value(text: str) -> str:
    """Escape ``\\`` and ``|`` in a key value, so two different keys never render alike."""
    for special, escaped in KEY_VALUE_ESCAPES:
        if special in text:
            text = text.replace(special, escaped)
    return text


def escape_key_name(text: str) -> str:
    """Escape ``\\``, ``|`` and ``=`` in a key attribute name."""
    for special, escaped in KEY_NAME_ESCAPES:
        if special in text:
            text = text.replace(special, escaped)
    return text


def strict_key_string(keys: Any) -> str | None:
    """:func:`key_string` of Keys in DynamoDB's own shape (every value a well-formed ``S``, ``N``
    or ``B`` string: a number literal, base64), else None.

    The archive's check of the Keys it files a record under, and key_string's fast path."""
    if type(keys) is not dict or not keys:
        return None
    parts = []
    for name in sorted(keys) if len(keys) > 1 else keys:
        av = keys[name]
        if type(av) is not dict or len(av) != 1 or type(name) is not str:
            return None
        ((tag, val),) = av.items()
        if type(val) is not str:
            return None
        if tag == "S":
            if KEY_SEPARATOR in val or KEY_ESCAPE in val:
                val = escape_key_value(val)
        elif not ((tag == "N" and _n_literal(val)) or (tag == "B" and _base64(val))):
            return None  # (a number literal or base64 never holds a character to escape)
        parts.append(_key_prefix(name) + val)
    return parts[0] if len(parts) == 1 else KEY_SEPARATOR.join(parts)


@functools.lru_cache(maxsize=4096)
def _key_prefix(name: str) -> str:
    # ``name=``, escaped: a table's key names are few and every record repeats them
    return (escape_key_name(name) if _NAME_NEEDS_ESCAPE(name) else name) + KEY_ASSIGN


def key_string(keys: Mapping[str, Any]) -> str:
    """A readable, canonical item key: ``pk=ORDER#1|sk=2024-01-01`` (names sorted).

    ``|`` and ``\\`` in values (and ``=`` in names) are escaped with a backslash, so
    ``pk="a|sk=c", sk="d"`` and ``pk="a", sk="c|sk=d"`` stay two keys. Values need not be
    well formed (an N that is no number is rendered as given): see :func:`strict_key_string`."""
    text = strict_key_string(keys)
    if text is not None:
        return text
    if not keys:
        raise MalformedRecordError("record has no dynamodb.Keys")
    try:
        return KEY_SEPARATOR.join(
            f"{escape_key_name(name)}{KEY_ASSIGN}{escape_key_value(_scalar_text(keys[name]))}" for name in sorted(keys))
    except (ValueError, AttributeError) as e:
        raise MalformedRecordError(f"malformed Keys {keys!r}: {e}") from None


def key_parts(text: str) -> Iterator[tuple[str, str]]:
    """The ``(name, value)`` pairs of a rendered key (``pk=A|sk=1``) in the text's order, escapes
    kept; ValueError on reaching a part that is not ``name=value``."""
    for part in _split_unescaped(text, KEY_SEPARATOR):
        pieces = _split_unescaped(part, KEY_ASSIGN, 1)
        if len(pieces) != 2:
            raise ValueError(f"{part!r} is not name=value")
        yield pieces[0], pieces[1]


def _split_unescaped(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on ``sep`` where it is not escaped by a backslash (escapes are kept in the parts)."""
    out: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == KEY_ESCAPE and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if c == sep and (maxsplit < 0 or len(out) < maxsplit):
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


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


def b64_text(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return value  # already text (the JSON a stream reader got): as it is


def attribute_json(value: Any) -> Any:
    """An AttributeValue as Lambda delivers it (JSON): binaries base64-encoded, at any depth through
    M and L. An SDK-parsed value holds bytes; one read as raw JSON already holds their text."""
    if not isinstance(value, Mapping):
        return value
    out: dict[str, Any] = {}
    for tag, inner in value.items():
        if tag == "B":
            out[tag] = b64_text(inner)
        elif tag == "BS":
            out[tag] = [b64_text(b) for b in inner]
        elif tag == "M":
            out[tag] = {k: attribute_json(v) for k, v in inner.items()}
        elif tag == "L":
            out[tag] = [attribute_json(v) for v in inner]
        else:
            out[tag] = inner
    return out
