"""The raw zone's line, declared once: the writer and both readers derive from :data:`FIELDS`.

One gzip JSON line per stream record (docs/CONTRACTS.md)::

    {"lake":{"table":..,"key":..,"seq":..,"t":..,"event":..,"id":..,"ttl":..},"record":{...}}

``lake`` is the envelope, always first, its fields in the order :data:`FIELDS` declares them
(an optional field only when it applies, after the others); ``record`` is the stream record
exactly as Lambda delivered it. JSON strings hold no unescaped quote, so the text
``,"record":`` first occurs exactly where the record starts, and a reader may slice the
record's bytes instead of parsing them.

* The writer: :func:`envelope` builds the envelope (its keys in the declared order whatever
  order the values come in) and :func:`write` the line (:mod:`lake.archive.encode` uses both).
* The fast reader: :func:`fast_reader` builds, from the declaration, one regex that reads the
  chosen fields of every line of an object in one pass (:mod:`lake.replay.source`).
* The slow reader: :func:`split` parses one line's envelope with orjson, whatever its field
  order, and slices the record (any line the contract allows).

Pure: no boto3.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from lake.errors import MalformedRecordError
from lake.records import EVENT_NAMES

Kind = Literal["string", "digits", "integer", "boolean"]


@dataclass(frozen=True)
class Field:
    """One envelope field: its name, the JSON kind of its value, and whether it may be left out.

    ``digits`` is a JSON string of ASCII decimal digits (a sequence number beyond 64 bits);
    ``values`` restricts a string to a few known ones."""

    name: str
    kind: Kind
    optional: bool = False
    values: tuple[str, ...] = ()


FIELDS: tuple[Field, ...] = (
    Field("table", "string"),  # source table (from the stream ARN), or _unknown
    Field("key", "string"),  # lake.records.key_string of the record's Keys
    Field("seq", "digits"),  # DynamoDB stream SequenceNumber
    Field("t", "integer"),  # event time, epoch microseconds (UTC)
    Field("event", "string", values=EVENT_NAMES),
    Field("id", "string"),  # eventID
    Field("ttl", "boolean"),  # a REMOVE by the Time to Live sweeper
    Field("tsrc", "string", optional=True, values=("arrival",)),  # placed by arrival time, not event time
)
NAMES = tuple(f.name for f in FIELDS)
REQUIRED = tuple(f.name for f in FIELDS if not f.optional)
if NAMES[:len(REQUIRED)] != REQUIRED:  # envelope() appends optional fields after the others
    raise AssertionError("optional envelope fields must come after the required ones")

ENVELOPE_KEY, RECORD_KEY = "lake", "record"
HEAD = b'{"' + ENVELOPE_KEY.encode() + b'":'  # every line starts so
RECORD_SEP = b',"' + RECORD_KEY.encode() + b'":'  # the envelope ends (and the record starts) here

Envelope = dict[str, Any]
# Copying a dict already holding every required key in the declared order, then setting the
# values, costs what a dict display does (measured), and the order cannot drift from FIELDS.
_BLANK: Envelope = dict.fromkeys(REQUIRED)


class MalformedLineError(MalformedRecordError, ValueError):
    """A raw-zone line that is not ``{"lake":{...},"record":{...}}``."""


# -- the writer -----------------------------------------------------------------------

def envelope(table: str, key: str, seq: str, t: int, event: str, id: str, ttl: bool,
             tsrc: str | None = None) -> Envelope:
    """A record's envelope, its fields in the declared order (one parameter per field of
    :data:`FIELDS`; an optional field given as None is left out)."""
    env = _BLANK.copy()
    env["table"] = table
    env["key"] = key
    env["seq"] = seq
    env["t"] = t
    env["event"] = event
    env["id"] = id
    env["ttl"] = ttl
    if tsrc is not None:
        env["tsrc"] = tsrc
    return env


def write(env: Envelope, record: Any) -> bytes:
    """One raw line (no newline): the envelope, then the record serialised verbatim.

    Raises ``orjson.JSONEncodeError`` for a record JSON cannot hold (an integer beyond 64 bits)."""
    # one orjson call: the same bytes as joining the serialised halves, without copying the record again
    return orjson.dumps({ENVELOPE_KEY: env, RECORD_KEY: record})


# -- the readers ----------------------------------------------------------------------

# A JSON string's body as an unrolled loop (runs of plain bytes, then one escape): the regex
# engine spends its time in tight character-class loops, not a branch per byte. A control
# character is not JSON inside a string: such a line is left to the slow reader, which refuses it.
_STRING = rb'[^"\\\x00-\x1f]*+(?:\\.[^"\\\x00-\x1f]*+)*+'
_VALUE: dict[Kind, bytes] = {
    "string": rb'"(' + _STRING + rb')"',
    "digits": rb'"(\d++)"',  # (a bytes pattern: \d is ASCII)
    "integer": rb"(-?\d++)",
    "boolean": rb"(true|false)",
}


def _value(f: Field, capture: bool) -> bytes:
    pattern = _VALUE[f.kind]
    if f.values:
        choice = b"|".join(re.escape(orjson.dumps(v)[1:-1]) for v in f.values)
        pattern = rb'"(' + choice + rb')"' if f.kind == "string" else pattern
    return pattern if capture else pattern.replace(b"(", b"(?:", 1)


@dataclass(frozen=True)
class FastReader:
    """Reads chosen envelope fields of every line of an object in one regex pass.

    Each field's value comes back as its JSON text (a string's without the quotes, escapes
    kept). The regex matches exactly the lines :func:`write` writes (an optional field or
    not, ``\\r\\n`` endings allowed); any other non-blank line makes :meth:`columns` say None,
    and the caller reads the object with :func:`split` instead."""

    fields: tuple[str, ...]  # captured, in the declared order
    pattern: re.Pattern[bytes]

    def columns(self, body: bytes) -> tuple[dict[str, tuple[bytes, ...]], tuple[bytes, ...]] | None:
        """``({field: its value per line}, the record's bytes per line)``, blank lines skipped;
        None when a line is not as :func:`write` writes it."""
        rows = self.pattern.findall(body)
        if not rows:
            return dict.fromkeys(self.fields, ()), ()
        *values, records, foreign = zip(*rows, strict=True)
        if any(foreign):
            return None
        return dict(zip(self.fields, values, strict=True)), records


def fast_reader(capture: Iterable[str]) -> FastReader:
    """A :class:`FastReader` of the fields named in ``capture`` (the others are matched, not kept)."""
    wanted = set(capture)
    unknown = wanted - set(NAMES)
    if unknown:
        raise ValueError(f"not envelope fields: {sorted(unknown)}")
    required: list[bytes] = []
    optional: list[bytes] = []
    for i, f in enumerate(FIELDS):
        member = (b"," if i else b"") + b'"' + f.name.encode() + b'":' + _value(f, f.name in wanted)
        if f.optional:
            optional.append(b"(?:" + member + b")?")
        else:
            required.append(member)
    # The envelope's end: at once (the usual line: tried first, so the optional fields cost
    # nothing there), or after whichever optional fields are present.
    end = rb"(?:\}|" + b"".join(optional) + rb"\})" if optional else rb"\}"
    # One alternative per line: an envelope as written, then the record up to the line's last
    # "}" (before an optional \r); or any other non-blank line (MULTILINE: "." stops at \n).
    pattern = re.compile(
        rb"^(?:" + re.escape(HEAD) + rb"\{" + b"".join(required) + end + re.escape(RECORD_SEP)
        + rb"(.*)\}\r?|(.+))$", re.MULTILINE)
    return FastReader(tuple(f.name for f in FIELDS if f.name in wanted), pattern)


def split(line: bytes) -> tuple[Envelope, bytes]:
    """``(envelope, record bytes)`` of one line: the envelope parsed, the record sliced (not parsed).

    Any line the contract allows (fields in another order, surrounding whitespace); raises
    :class:`MalformedLineError` for the others."""
    line = line.rstrip()
    at = line.find(RECORD_SEP)
    if at < 0 or not line.startswith(HEAD) or not line.endswith(b"}"):
        raise MalformedLineError('raw line is not {"lake":{...},"record":{...}}')
    text = line[len(HEAD):at]
    try:
        env = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise MalformedLineError(f"envelope {text[:200]!r}: {e}") from None
    if type(env) is not dict:
        raise MalformedLineError(f"envelope {text[:200]!r} is not an object")
    return env, line[at + len(RECORD_SEP):-1]
