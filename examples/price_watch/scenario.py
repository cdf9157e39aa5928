"""The scenario of ``lake example price_watch``: the weekly schedule run through the whole feed.

Time is the app's clock, moved a week at a time (``clock.advance``): each week the
Wednesday occurrence of the schedule fires the fetcher, which reads the feed as of that
Wednesday. The scenario needs a clock it can move, starting on the Monday the feed begins
(:data:`START`): the end-to-end test passes a ``ManualClock``; on the system clock (``lake
example``) the scenario wires the app again on a :class:`SteppedClock` of its own.

What should be announced follows from the feed file alone (:func:`expected_drops`, plain
``csv``, not the handlers' parser): per region, the first price is the baseline and a
notification is due for each price lower than every price before it — a rise, an
unchanged week, or a fall that stays above the lowest price so far announces nothing.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from examples.price_watch.app import INBOX, PRICES
from lake.clock import SystemClock

if TYPE_CHECKING:
    from lake.local.apps import LocalApp

FEED = Path(__file__).resolve().parent / "gas_prices_weekly.csv"
WEEK_S = 7 * 86400
START = datetime(2022, 6, 13, 12, 0, tzinfo=UTC).timestamp()
"""Noon on the Monday of the feed's first week: the next Wednesday's firing reads that week."""


def feed_weeks(path: Path = FEED) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["date"])


Drop = tuple[str, str, Decimal, Decimal]


def expected_drops(weeks: list[dict[str, str]]) -> list[Drop]:
    """``(week, region, price, previous lowest)`` for every new low after a region's first price."""
    lowest: dict[str, Decimal] = {}
    out = []
    for row in weeks:
        for column, value in row.items():
            if not column.endswith("_average_gal") or not value:
                continue
            region, price = column.removesuffix("_average_gal"), Decimal(value)
            if region in lowest and price < lowest[region]:
                out.append((row["date"], region, price, lowest[region]))
            if region not in lowest or price < lowest[region]:
                lowest[region] = price
    return sorted(out)


def lowest_prices(weeks: list[dict[str, str]]) -> dict[str, Decimal]:
    """Each region's lowest price over the feed: what the table holds at the end."""
    out: dict[str, Decimal] = {}
    for row in weeks:
        for column, value in row.items():
            if column.endswith("_average_gal") and value:
                region = column.removesuffix("_average_gal")
                out[region] = min(out.get(region, Decimal(value)), Decimal(value))
    return out


def read_inbox(app: LocalApp) -> list[dict[str, Any]]:
    """Every notification the subscribed queue holds (SNS envelopes, the drop in ``Message``)."""
    sqs = app.clients.sqs
    url = app.resolve(f"${{queue:{INBOX}}}")
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300,
                                       WaitTimeSeconds=0).get("Messages") or []
        if not messages:
            return out
        for m in messages:
            envelope = json.loads(m["Body"])
            out.append({"subject": envelope.get("Subject", ""), **json.loads(envelope["Message"])})
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(messages)])


class SteppedClock(SystemClock):
    """Wall time that moves only by :meth:`advance`; monotonic time and waits are the machine's.

    For ``lake example price_watch`` on the system clock: the schedule needs weeks to pass in
    seconds, while the triggers' polling and timeouts keep real time.
    """

    def __init__(self, start: float) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def run(app: LocalApp, say: Callable[[str], None]) -> dict[str, Any]:
    """Fire the schedule once a week through the feed (and one week past it), then read the inbox.

    On a clock that cannot be moved (the system clock of ``lake example``), the app is wired
    again on a :class:`SteppedClock` starting at :data:`START` for the scenario, then back.
    """
    if callable(getattr(app.clock, "advance", None)):
        return _run(app, say)
    from lake.local.apps import LocalApp

    say(f"running the weekly schedule on a clock starting {datetime.fromtimestamp(START, UTC):%Y-%m-%d %H:%M} UTC")
    app.stop()
    try:
        with LocalApp(app.app, app.lake, clock=SteppedClock(START), poll_interval_s=app.poll_interval_s) as own:
            return _run(own, say)
    finally:
        app.start()


def _run(app: LocalApp, say: Callable[[str], None]) -> dict[str, Any]:
    clock = app.clock
    advance = clock.advance  # type: ignore[attr-defined]
    weeks = feed_weeks()
    if clock.now() > START:
        say(f"the clock is past the feed's start ({datetime.fromtimestamp(clock.now(), UTC).isoformat()}); "
            "the fetcher will read the feed's last week only")
    # The clock moves while the app is idle, in one jump over the feed's weeks (and one week
    # past it: the last price again, nothing written). fire_schedules then catches up on the
    # occurrences in order, each invoking the fetcher before the next (one asynchronous
    # invocation of Lambda each), so the weeks are written in order and the table's stream
    # keeps that order for the publisher. Moving a test's clock while handlers run would time
    # them out: their Lambda timeout is measured on the app's clock.
    advance(WEEK_S * (len(weeks) + 1))
    fired = app.fire_schedules()
    idle = app.wait_idle()
    say(f"schedule fired {fired} times; feed of {len(weeks)} weeks, {weeks[0]['date']} .. {weeks[-1]['date']}")

    received = read_inbox(app)
    got = sorted((n["week"], n["region"], Decimal(n["price"]), Decimal(n["previous_price"])) for n in received)
    want = expected_drops(weeks)
    for region in sorted({r for _, r, _, _ in got}):
        mine = [(w, p) for w, r, p, _ in got if r == region]
        say(f"  {region}: {len(mine)} drops notified, the last {mine[-1][1]} (week of {mine[-1][0]})")
    table = app.resolve(f"${{table:{PRICES}}}")
    items = app.clients.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    lowest = {i["region"]["S"]: Decimal(i["price"]["N"]) for i in items}
    checks = {
        "idle": idle,
        "fired_every_week": fired == len(weeks) + 1,
        "notified_exactly_the_drops": got == want,
        "lowest_prices_stored": lowest == lowest_prices(weeks),
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "weeks": len(weeks),
        "fired": fired,
        "notifications": len(got),
        "expected_notifications": len(want),
        "drops_by_region": {r: sum(1 for _, reg, _, _ in got if reg == r) for r in sorted(lowest)},
        "tables": [PRICES],
    }

