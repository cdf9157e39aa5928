"""The raw zone's object key: one type that renders and parses (no boto3 here).

``<prefix>raw/table=<table>/dt=YYYY-MM-DD/hour=HH/<shard-token>/<first-seq>-<last-seq>.json.gz``
(docs/CONTRACTS.md). Sequence numbers are zero-padded to 40 digits in the name so
that keys sort in sequence order; :class:`RawObjectKey` holds them unpadded (no
leading zeros), so ``parse(render(k)) == k``. The objects' lines: :mod:`lake.archive.line`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

RAW_ZONE = "raw"
SUFFIX = ".json.gz"
SEQ_DIGITS = 40  # DynamoDB Streams sequence numbers are 21 to 40 digits long

# DynamoDB table names: 3-255 of [a-zA-Z0-9_.-]; we accept 1+ so hand-made test tables work.
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
_SHARD = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_KEY = re.compile(
    r"^(?:(?P<prefix>.+)/)?" + RAW_ZONE
    + r"/table=(?P<table>[^/]+)/dt=(?P<dt>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})"
    r"/(?P<shard>[^/]+)/(?P<first>\d{40})-(?P<last>\d{40})" + re.escape(SUFFIX) + r"$"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ForeignKeyError(ValueError):
    """An S3 key (or key part) that is not a raw-zone object of this lake."""


def _strip_seq(seq: str, what: str) -> str:
    if not isinstance(seq, str) or not seq.isascii() or not seq.isdigit():
        raise ForeignKeyError(f"{what} {seq!r} is not a decimal sequence number")
    stripped = seq.lstrip("0") or "0"
    if len(stripped) > SEQ_DIGITS:
        raise ForeignKeyError(f"{what} {seq!r} has more than {SEQ_DIGITS} digits")
    return stripped


def _norm_prefix(prefix: str) -> str:
    return prefix.strip("/")


def shard_token(stream_label: str) -> str:
    """A stream label (``2024-01-01T00:00:00.000``) made path-safe (``2024-01-01T00-00-00.000``).

    Lambda's DynamoDB events carry no shard id; the stream label names the stream,
    and a new stream on the same table (disable/enable) gets a new label, so two
    streams' sequence ranges never share a folder.
    """
    token = _UNSAFE.sub("-", stream_label)
    if not _SHARD.match(token):
        raise ForeignKeyError(f"stream label {stream_label!r} gives no usable shard token")
    return token


@dataclass(frozen=True)
class RawObjectKey:
    """One raw-zone object: a partition (table, day, hour), a shard and a sequence range.

    ``prefix`` is the lake's root prefix (``Settings.prefix``), without slashes at
    either end; ``first_seq``/``last_seq`` are normalised to have no leading zeros.
    """

    table: str
    dt: date
    hour: int
    shard: str
    first_seq: str
    last_seq: str
    prefix: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.table, str) or not _TABLE.match(self.table):
            raise ForeignKeyError(f"table name {self.table!r} is not a DynamoDB table name")
        if not isinstance(self.shard, str) or not _SHARD.match(self.shard):
            raise ForeignKeyError(f"shard token {self.shard!r} is not path-safe")
        if isinstance(self.hour, bool) or not isinstance(self.hour, int) or not 0 <= self.hour <= 23:
            raise ForeignKeyError(f"hour {self.hour!r} is not 0..23")
        if not isinstance(self.dt, date):
            raise ForeignKeyError(f"dt {self.dt!r} is not a date")
        # frozen: normalise through object.__setattr__ so equal keys compare equal
        object.__setattr__(self, "first_seq", _strip_seq(self.first_seq, "first_seq"))
        object.__setattr__(self, "last_seq", _strip_seq(self.last_seq, "last_seq"))
        object.__setattr__(self, "prefix", _norm_prefix(self.prefix))

    def render(self) -> str:
        """The S3 key."""
        return (
            f"{partition_prefix(self.prefix, self.table, self.dt, self.hour)}{self.shard}/"
            f"{self.first_seq.zfill(SEQ_DIGITS)}-{self.last_seq.zfill(SEQ_DIGITS)}{SUFFIX}"
        )

    def __str__(self) -> str:
        return self.render()

    @property
    def partition(self) -> str:
        """The hive partition prefix this object lives under (ends with ``/``)."""
        return partition_prefix(self.prefix, self.table, self.dt, self.hour)

    @classmethod
    def parse(cls, key: str) -> RawObjectKey:
        """Parse an S3 key; :class:`ForeignKeyError` (a ``ValueError``) if it is not a raw object."""
        m = _KEY.match(key) if isinstance(key, str) else None
        if not m:
            raise ForeignKeyError(f"{key!r} is not a raw-zone object key")
        try:
            day = date.fromisoformat(m["dt"])
        except ValueError:
            raise ForeignKeyError(f"{key!r}: dt={m['dt']} is not a date") from None
        return cls(m["table"], day, int(m["hour"]), m["shard"], m["first"], m["last"], m["prefix"] or "")


def partition_prefix(prefix: str, table: str, dt: date | None = None, hour: int | None = None) -> str:
    """The listing prefix of a table, a day or an hour of the raw zone (ends with ``/``).

    ``partition_prefix("", "orders")`` → ``raw/table=orders/``; an ``hour`` needs a ``dt``.
    """
    root = _norm_prefix(prefix)
    out = f"{root}/{RAW_ZONE}/" if root else f"{RAW_ZONE}/"
    out += f"table={table}/"
    if dt is not None:
        out += f"dt={dt.isoformat()}/"
        if hour is not None:
            if not 0 <= hour <= 23:
                raise ForeignKeyError(f"hour {hour!r} is not 0..23")
            out += f"hour={hour:02d}/"
    elif hour is not None:
        raise ValueError("partition_prefix: an hour needs a dt")
    return out


def zone_prefix(prefix: str) -> str:
    """``<prefix>/raw/``: the listing prefix of the whole raw zone."""
    root = _norm_prefix(prefix)
    return f"{root}/{RAW_ZONE}/" if root else f"{RAW_ZONE}/"
