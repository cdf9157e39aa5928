"""Test-side helpers over the raw zone: read objects' lines back, and a reference encoder.

``encode_record`` + ``build_objects`` are the straightforward per-record version of
``lake.archive.encode.plan_batch`` (tests check the two give the same objects); the readers
decode what the archiver writes. None of this ships: the product reads lines with
``lake.archive.line``.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from lake.archive import line as raw_line
from lake.archive.encode import GZIP_LEVEL, RawObject, envelope, gzip_lines
from lake.archive.keys import RawObjectKey
from lake.archive.line import MalformedLineError
from lake.errors import MalformedRecordError
from lake.records import sequence_sort_key


def decode_line(line: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split one raw line into ``(envelope, record)``, both parsed (the whole line through orjson)."""
    line = line.rstrip(b"\r\n")
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise MalformedLineError(f"raw line is not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("lake"), dict) \
            or not isinstance(doc.get("record"), dict):
        raise MalformedLineError('raw line is not {"lake":{...},"record":{...}}')
    return doc["lake"], doc["record"]


def record_bytes(line: bytes) -> bytes:
    """The record's JSON text of a line, sliced (``lake.archive.line.split``)."""
    return raw_line.split(line)[1]


def iter_object_lines(body: bytes) -> Iterator[bytes]:
    """The lines of a raw object's body, gzip or plain (gzip recognised by its magic bytes)."""
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as e:
            raise MalformedLineError(f"raw object is not valid gzip: {e}") from None
    for text in body.split(b"\n"):
        if text.strip():
            yield text


@dataclass(frozen=True)
class EncodedLine:
    """One archivable record: where it goes and its line (without the trailing newline)."""

    index: int
    seq: str
    table: str
    dt: date
    hour: int
    shard: str
    line: bytes


def encode_record(record: Any, index: int = 0) -> EncodedLine:
    """One record → its raw line and partition. Raises :class:`MalformedRecordError`."""
    lake, day, hour, shard = envelope(record)
    try:
        text = raw_line.write(lake, record)
    except orjson.JSONEncodeError as e:
        raise MalformedRecordError(f"record cannot be serialised verbatim: {e}") from None
    return EncodedLine(index, lake["seq"], lake["table"], day, hour, shard, text)


def build_objects(lines: Sequence[EncodedLine], prefix: str = "", level: int = GZIP_LEVEL) -> list[RawObject]:
    """Group encoded lines into one object per (table, dt, hour, shard), lines in batch order,
    objects sorted by their lowest sequence number."""
    groups: dict[tuple[str, date, int, str], list[EncodedLine]] = {}
    for ln in lines:
        groups.setdefault((ln.table, ln.dt, ln.hour, ln.shard), []).append(ln)
    out = []
    for (table, day, hour, shard), group in groups.items():
        seqs = [ln.seq for ln in group]
        body, digest, size = gzip_lines([ln.line for ln in group], level)
        key = RawObjectKey(table, day, hour, shard, min(seqs, key=sequence_sort_key),
                           max(seqs, key=sequence_sort_key), prefix)
        out.append(RawObject(key, body, digest, size, tuple(seqs)))
    out.sort(key=lambda o: sequence_sort_key(o.key.first_seq))
    return out
