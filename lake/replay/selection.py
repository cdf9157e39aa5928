"""What to replay: tables, an event-time range, item keys, event names, Lambda filter patterns.

Pure: no boto3. Times are the lake's one convention, integer microseconds since the
epoch (UTC); ``since`` is inclusive and ``until`` exclusive.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from lake.errors import ConfigError, MalformedRecordError
from lake.records import EVENT_NAMES, KEY_ASSIGN, KEY_SEPARATOR, datetime_to_us, key_parts, key_string, us_to_datetime

_EPOCH = re.compile(r"^-?\d+(\.\d+)?$")

# Listing a whole table beats listing this many day prefixes one by one.
MAX_DAY_PREFIXES = 400


def parse_time(text: str | int | float) -> int:
    """An instant as epoch microseconds: ISO-8601 (``2024-05-01``, ``2024-05-01T10:00:00Z``,
    with an offset; naive means UTC) or an epoch number.

    Epoch numbers are seconds; a number too large to be seconds in this era is read as
    milliseconds (> 1e11) or microseconds (> 1e14), the other units AWS uses for change times.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value: float = text
    else:
        s = str(text).strip()
        if not _EPOCH.match(s):
            try:
                dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise ConfigError(f"time {text!r} is neither ISO-8601 nor an epoch number") from None
            return datetime_to_us(dt)
        value = float(s) if "." in s else int(s)
    if abs(value) > 1e14:
        return int(value)
    if abs(value) > 1e11:
        return round(value * 1_000)
    return round(value * 1_000_000)


def normalise_key(text: str) -> str:
    """``sk=1|pk=A`` → ``pk=A|sk=1``: the canonical form of :func:`lake.records.key_string`.

    A line that is JSON is read as typed ``Keys`` (``{"pk": {"S": "A"}}``).
    In the text form, ``|`` and ``\\`` inside values are escaped with a backslash, as
    :func:`lake.records.key_string` renders them (or use the JSON form).
    """
    s = text.strip()
    if s.startswith("{"):
        try:
            keys = orjson.loads(s)
            return key_string(keys)
        except (orjson.JSONDecodeError, MalformedRecordError, TypeError, ValueError) as e:
            raise ConfigError(f"key {text!r}: not typed DynamoDB Keys JSON ({e})") from None
    usage = f"key {text!r}: expected name=value[|name=value], e.g. 'pk=A|sk=1'"
    parts: dict[str, str] = {}
    try:
        for raw_name, value in key_parts(s):
            name = raw_name.strip()
            if not name:
                raise ConfigError(usage)
            if name in parts:
                raise ConfigError(f"key {text!r}: attribute {name!r} given twice")
            parts[name] = value
    except ValueError:
        raise ConfigError(usage) from None
    return KEY_SEPARATOR.join(f"{n}{KEY_ASSIGN}{parts[n]}" for n in sorted(parts))


def read_keys_file(path: str | Path) -> tuple[str, ...]:
    """Keys, one per line (text ``pk=A|sk=1`` or typed JSON Keys); blank lines and ``#`` comments skipped."""
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"keys file {p}: {e.strerror or e}") from None
    return tuple(normalise_key(line) for line in lines if line.strip() and not line.lstrip().startswith("#"))


@dataclass(frozen=True)
class Selection:
    """Which archived changes to replay. Empty fields select everything.

    ``tables`` empty means every table found in the raw zone. ``filters`` are Lambda
    event-filtering patterns (dicts or JSON text), OR-ed like a ``FilterCriteria``.
    """

    tables: tuple[str, ...] = ()
    since_us: int | None = None
    until_us: int | None = None
    keys: frozenset[str] = frozenset()
    event_names: frozenset[str] = frozenset()
    filters: tuple[str, ...] = ()
    _compiled: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", tuple(self.tables))
        object.__setattr__(self, "keys", frozenset(normalise_key(k) for k in self.keys))
        names = frozenset(n.upper() for n in self.event_names)
        bad = names - set(EVENT_NAMES)
        if bad:
            raise ConfigError(f"unknown event name(s) {sorted(bad)}; expected {', '.join(EVENT_NAMES)}")
        object.__setattr__(self, "event_names", names)
        object.__setattr__(self, "filters", tuple(
            f if isinstance(f, str) else orjson.dumps(f, option=orjson.OPT_SORT_KEYS).decode()
            for f in self.filters
        ))
        if self.since_us is not None and self.until_us is not None and self.since_us >= self.until_us:
            raise ConfigError("the time range is empty: --since must be before --until")
        if self.filters:
            from lake.filters import FilterError, compile_filters

            try:
                object.__setattr__(self, "_compiled", compile_filters(self.filters))
            except FilterError as e:
                raise ConfigError(f"filter: {e}") from None

    @classmethod
    def build(
        cls,
        tables: Iterable[str] = (),
        since: str | int | float | None = None,
        until: str | int | float | None = None,
        keys: Iterable[str] = (),
        keys_file: str | Path | None = None,
        event_names: Iterable[str] = (),
        filters: Iterable[str | Mapping[str, Any]] = (),
    ) -> Selection:
        """A selection from user-facing values (CLI flags): times parsed, keys normalised."""
        all_keys = list(keys)
        if keys_file is not None:
            all_keys.extend(read_keys_file(keys_file))
        return cls(
            tables=tuple(tables),
            since_us=None if since is None else parse_time(since),
            until_us=None if until is None else parse_time(until),
            keys=frozenset(all_keys),
            event_names=frozenset(event_names),
            filters=tuple(f if isinstance(f, str) else orjson.dumps(f).decode() for f in filters),
        )

    # -- matching ------------------------------------------------------------------
    def envelope_matches(self, key: str, event: str, t: int) -> bool:
        """The checks that need only the raw line's envelope (no record parse)."""
        if self.since_us is not None and t < self.since_us:
            return False
        if self.until_us is not None and t >= self.until_us:
            return False
        if self.keys and key not in self.keys:
            return False
        return not (self.event_names and event not in self.event_names)

    @property
    def needs_record(self) -> bool:
        return self._compiled is not None

    def record_matches(self, record: Mapping[str, Any]) -> bool:
        """The filter patterns, which need the parsed record."""
        return self._compiled is None or bool(self._compiled(record))

    # -- partitions ----------------------------------------------------------------
    def hour_in_range(self, day: date, hour: int) -> bool:
        """Could partition ``dt=day/hour=hour`` hold a change inside the time range?"""
        start = datetime_to_us(datetime(day.year, day.month, day.day, hour, tzinfo=UTC))
        end = start + 3_600_000_000
        if self.since_us is not None and end <= self.since_us:
            return False
        return not (self.until_us is not None and start >= self.until_us)

    def days(self) -> list[date] | None:
        """The ``dt`` partitions to list, or None for "list the whole table" (no bounded range)."""
        if self.since_us is None or self.until_us is None:
            return None
        first = us_to_datetime(self.since_us).date()
        last = us_to_datetime(self.until_us - 1).date()
        n = (last - first).days + 1
        if n > MAX_DAY_PREFIXES:
            return None
        return [first + timedelta(days=i) for i in range(n)]

    def describe(self) -> dict[str, Any]:
        """A canonical, JSON-able form (for the checkpoint name and the report)."""
        return {
            "tables": sorted(self.tables),
            "since_us": self.since_us,
            "until_us": self.until_us,
            "keys": sorted(self.keys),
            "event_names": sorted(self.event_names),
            "filters": sorted(self.filters),
        }

    def digest(self, *extra: str) -> str:
        """A short stable hash of the selection (and e.g. the target), to name a checkpoint."""
        text = orjson.dumps([self.describe(), *extra], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(text).hexdigest()[:16]

