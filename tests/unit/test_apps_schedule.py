"""Schedule expressions (lake/local/triggers/schedule.py): AWS's rate() and six-field cron(), UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lake.errors import ConfigError
from lake.local.triggers.schedule import Cron, Rate, Schedule, TriggerStats, parse_schedule, scheduled_event


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M %a")


def occurrences(expr: str, start: float, n: int) -> list[str]:
    when = parse_schedule(expr)
    out, t = [], start
    for _ in range(n):
        t = when.next_after(t, start)
        out.append(iso(t))
    return out


def test_rates_count_periods_from_their_origin() -> None:
    assert parse_schedule("rate(1 minute)") == Rate(60)
    assert parse_schedule("rate(2 hours)") == Rate(7200)
    assert occurrences("rate(5 minutes)", ts(2026, 1, 1, 0, 0, 30), 2) == [
        "2026-01-01 00:05 Thu", "2026-01-01 00:10 Thu"]
    for bad in ("rate(1 minutes)", "rate(2 minute)", "rate(0 days)", "rate(5 weeks)", "every 5 minutes"):
        with pytest.raises(ConfigError):
            parse_schedule(bad)


@pytest.mark.parametrize(("expr", "start", "expected"), [
    ("cron(0 12 * * ? *)", ts(2026, 3, 2, 12, 0), ["2026-03-03 12:00 Tue", "2026-03-04 12:00 Wed"]),
    ("cron(0/15 * * * ? *)", ts(2026, 3, 2, 12, 7), ["2026-03-02 12:15 Mon", "2026-03-02 12:30 Mon"]),
    ("cron(0 18 ? * MON-FRI *)", ts(2026, 3, 6, 19, 0), ["2026-03-09 18:00 Mon", "2026-03-10 18:00 Tue"]),
    ("cron(0 8 1 * ? *)", ts(2026, 1, 15), ["2026-02-01 08:00 Sun", "2026-03-01 08:00 Sun"]),
    ("cron(30 23 L * ? *)", ts(2026, 2, 1), ["2026-02-28 23:30 Sat", "2026-03-31 23:30 Tue"]),
    ("cron(0 9 15W * ? *)", ts(2026, 2, 1), ["2026-02-16 09:00 Mon", "2026-03-16 09:00 Mon"]),  # 15th a Sunday
    ("cron(0 9 LW * ? *)", ts(2026, 5, 1), ["2026-05-29 09:00 Fri", "2026-06-30 09:00 Tue"]),
    ("cron(0 10 ? * 2#1 *)", ts(2026, 3, 1), ["2026-03-02 10:00 Mon", "2026-04-06 10:00 Mon"]),  # 1st Monday
    ("cron(0 10 ? * 6L *)", ts(2026, 3, 1), ["2026-03-27 10:00 Fri", "2026-04-24 10:00 Fri"]),  # last Friday
    ("cron(0 0 1 JAN,JUL ? 2027)", ts(2026, 3, 1), ["2027-01-01 00:00 Fri", "2027-07-01 00:00 Thu"]),
    ("cron(15 10 ? * SUN *)", ts(2026, 3, 1, 10, 15), ["2026-03-08 10:15 Sun", "2026-03-15 10:15 Sun"]),
])
def test_cron_occurrences(expr: str, start: float, expected: list[str]) -> None:
    assert occurrences(expr, start, 2) == expected


@pytest.mark.parametrize("bad", ["cron(0 12 * * * *)", "cron(0 12 ? * ? *)", "cron(0 12 * *)", "cron(61 0 * * ? *)",
                                 "cron(0 0 1 FOO ? *)", "cron(0 0 1 1 ? 2020)"])
def test_bad_cron_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        Schedule("r", "arn", bad, ts(2026, 1, 1), lambda e, s: None, TriggerStats())


def test_a_schedule_fires_each_occurrence_up_to_now_with_its_own_time() -> None:
    got: list[dict[str, object]] = []
    stats = TriggerStats()
    s = Schedule("every-5", "arn:aws:events:us-east-1:123456789012:rule/every-5", "rate(5 minutes)",
                 ts(2026, 1, 1), lambda e, st: got.append(e), stats)
    assert s.fire_due(ts(2026, 1, 1, 0, 4)) == 0
    assert s.fire_due(ts(2026, 1, 1, 0, 16)) == 3
    assert s.fire_due(ts(2026, 1, 1, 0, 16)) == 0
    assert [e["time"] for e in got] == ["2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z"]
    assert stats.received == 3
    assert isinstance(Cron("0 12 * * ? *"), Cron)
    e = scheduled_event("arn:r", ts(2026, 1, 1), "eu-west-1")
    assert (e["detail-type"], e["source"], e["resources"], e["region"], e["detail"]) == (
        "Scheduled Event", "aws.events", ["arn:r"], "eu-west-1", {})
