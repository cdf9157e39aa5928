"""EventBridge schedule rules: ``rate(n unit)`` and AWS's six-field ``cron(...)``, on an injectable clock.

The embedded AWS stores a schedule rule but never fires it; the runtime does. Each rule
keeps the time of its next occurrence; :meth:`Schedule.fire_due` fires every occurrence
up to "now" (the app's clock), each as EventBridge's ``Scheduled Event`` timed at its
occurrence, so a test that moves a :class:`ManualClock` by an hour sees exactly the
occurrences of that hour.

Cron: ``cron(minutes hours day-of-month month day-of-week year)``, UTC, with ``*``, ``?``,
lists, ranges, ``/`` steps, month and day names, ``L`` (last day of the month; ``5L`` the
month's last Thursday), ``W`` (``15W`` the weekday nearest the 15th, ``LW`` the last
weekday) and ``#`` (``2#1`` the month's first Monday). Day-of-week counts 1 = SUN … 7 = SAT,
as AWS. One of day-of-month and day-of-week must be ``?``.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lake.errors import ConfigError
from lake.invocation import ACCOUNT_ID
from lake.local.triggers.base import TriggerStats

log = logging.getLogger("lake.local.triggers")

MAX_CATCH_UP = 10_000  # occurrences fired at once after a long jump of the clock: beyond, skipped

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_MONTHS = {m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
                                       "DEC"], start=1)}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}


@dataclass(frozen=True)
class Rate:
    seconds: int

    def next_after(self, t: float, origin: float) -> float:
        """The first occurrence strictly after ``t``, counting periods from ``origin``."""
        n = int((t - origin) // self.seconds) + 1
        return origin + n * self.seconds


def aws_dow(d: date) -> int:
    """AWS's day of week: 1 = Sunday … 7 = Saturday."""
    return (d.weekday() + 1) % 7 + 1


def _values(spec: str, lo: int, hi: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """A field of plain values: ``*``, lists, ranges, steps, names."""
    out: set[int] = set()

    def num(text: str) -> int:
        text = text.upper()
        if names and text in names:
            return names[text]
        if not text.isdigit():
            raise ValueError(text)
        v = int(text)
        if not lo <= v <= hi:
            raise ValueError(text)
        return v

    for part in spec.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(part)
        if base in ("*", "?"):
            a, b = lo, hi
        elif "-" in base:
            a_text, b_text = base.split("-", 1)
            a, b = num(a_text), num(b_text)
        else:
            a = num(base)
            b = hi if step_text else a
        if a <= b:
            out.update(range(a, b + 1, step))
        else:  # a range that wraps (FRI-MON, NOV-FEB)
            out.update(v for i, v in enumerate([*range(a, hi + 1), *range(lo, b + 1)]) if i % step == 0)
    return frozenset(out)


class Cron:
    """AWS's six-field cron expression (UTC)."""

    def __init__(self, text: str) -> None:
        fields = text.split()
        if len(fields) != 6:
            raise ConfigError(f"cron({text}): AWS cron has six fields (minutes hours day-of-month month "
                              "day-of-week year)")
        minutes, hours, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ConfigError(f"cron({text}): one (and only one) of day-of-month and day-of-week must be '?'")
        try:
            self.minutes = _values(minutes, 0, 59)
            self.hours = _values(hours, 0, 23)
            self.months = _values(month, 1, 12, _MONTHS)
            self.years = _values(year, 1970, 2199)
            self.day_match = self._dom(dom) if dow == "?" else self._dow(dow)
        except ValueError as e:
            raise ConfigError(f"cron({text}): cannot read {e}") from None
        self.text = text

    @staticmethod
    def _dom(spec: str) -> Callable[[date], bool]:
        if spec == "L":
            return lambda d: d.day == calendar.monthrange(d.year, d.month)[1]
        if spec == "LW":
            def last_weekday(d: date) -> bool:
                last = date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])
                while last.weekday() >= 5:
                    last -= timedelta(days=1)
                return d == last
            return last_weekday
        m = re.fullmatch(r"(\d{1,2})W", spec)
        if m:
            n = int(m[1])

            def nearest_weekday(d: date) -> bool:
                days = calendar.monthrange(d.year, d.month)[1]
                target = date(d.year, d.month, min(n, days))
                if target.weekday() == 5:  # Saturday: the Friday before, unless that leaves the month
                    target = target - timedelta(days=1) if target.day > 1 else target + timedelta(days=2)
                elif target.weekday() == 6:  # Sunday: the Monday after, unless that leaves the month
                    target = target + timedelta(days=1) if target.day < days else target - timedelta(days=2)
                return d == target
            return nearest_weekday
        values = _values(spec, 1, 31)
        return lambda d: d.day in values

    @staticmethod
    def _dow(spec: str) -> Callable[[date], bool]:
        m = re.fullmatch(r"([1-7A-Za-z]{1,3})L", spec)
        if m or spec == "L":
            wanted = 7 if spec == "L" else next(iter(_values(m[1], 1, 7, _DAYS)))  # type: ignore[index]

            def last_of_month(d: date) -> bool:
                return aws_dow(d) == wanted and d.day + 7 > calendar.monthrange(d.year, d.month)[1]
            return last_of_month
        m = re.fullmatch(r"([1-7A-Za-z]{1,3})#([1-5])", spec)
        if m:
            day, nth = next(iter(_values(m[1], 1, 7, _DAYS))), int(m[2])
            return lambda d: aws_dow(d) == day and (d.day - 1) // 7 + 1 == nth
        values = _values(spec, 1, 7, _DAYS)
        return lambda d: aws_dow(d) in values

    def next_after(self, t: float, origin: float = 0.0) -> float:
        """The first occurrence strictly after ``t`` (epoch seconds); ConfigError if there is none."""
        start = datetime.fromtimestamp(t, UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        d = start.date()
        first = True
        for _ in range(366 * 230):
            if d.year > 2199:
                break
            if d.year in self.years and d.month in self.months and self.day_match(d):
                for h in sorted(self.hours):
                    if first and h < start.hour:
                        continue
                    for mi in sorted(self.minutes):
                        if first and h == start.hour and mi < start.minute:
                            continue
                        return datetime(d.year, d.month, d.day, h, mi, tzinfo=UTC).timestamp()
            d += timedelta(days=1)
            first = False
        raise ConfigError(f"cron({self.text}) has no occurrence after {start.isoformat()}")


def parse_schedule(expression: str) -> Rate | Cron:
    """``rate(5 minutes)`` or ``cron(0 12 * * ? *)``; ConfigError for anything else."""
    m = re.fullmatch(r"\s*rate\(\s*(\d+)\s+([a-z]+)\s*\)\s*", expression)
    if m:
        n, unit = int(m[1]), m[2]
        if unit not in _UNITS or n < 1 or (n == 1) != (not unit.endswith("s")):
            raise ConfigError(f"{expression}: rate(1 minute), rate(n minutes|hours|days) with n > 1")
        return Rate(n * _UNITS[unit])
    m = re.fullmatch(r"\s*cron\((.*)\)\s*", expression)
    if m:
        return Cron(m[1])
    raise ConfigError(f"{expression!r}: a schedule is rate(...) or cron(...)")


def scheduled_event(rule_arn: str, at: float, region: str) -> dict[str, Any]:
    """EventBridge's event for an occurrence of a schedule rule."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT_ID, "time": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "resources": [rule_arn], "detail": {}}


class Schedule:
    """One schedule rule: its next occurrence, fired to ``dispatch`` when the clock reaches it."""

    def __init__(self, name: str, arn: str, expression: str, origin: float,
                 dispatch: Callable[[dict[str, Any], TriggerStats], None], stats: TriggerStats,
                 region: str = "us-east-1") -> None:
        self.name, self.arn, self.expression = name, arn, expression
        self.when = parse_schedule(expression)
        self.origin = origin
        self.next_due = self.when.next_after(origin, origin)
        self.dispatch, self.stats, self.region = dispatch, stats, region
        self.fired: list[float] = []

    def fire_due(self, now: float) -> int:
        """Fire every occurrence due at ``now``; return how many."""
        count = 0
        while self.next_due <= now:
            at = self.next_due
            self.next_due = self.when.next_after(at, self.origin)
            if count >= MAX_CATCH_UP:
                continue
            event = scheduled_event(self.arn, at, self.region)
            self.stats.add(received=1)
            try:
                self.dispatch(event, self.stats)
            except Exception:  # a failed delivery is counted; the schedule goes on
                log.exception("schedule %s: the occurrence at %s failed", self.name, event["time"])
                self.stats.add(dropped=1)
            self.fired.append(at)
            count += 1
        if count >= MAX_CATCH_UP:
            log.warning("schedule %s: clock jumped; occurrences beyond %d skipped", self.name, MAX_CATCH_UP)
        return count

    def describe(self) -> str:
        return json.dumps({"rule": self.name, "schedule": self.expression, "next": self.next_due})
