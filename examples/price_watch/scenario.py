"""The scenario of ``lake example price_watch``: the weekly schedule run through the whole feed.

Time is the app's clock, moved a week at a time (``clock.advance``): each week the
Wednesday occurrence of the schedule fires the fetcher, which reads the feed as of that
Wednesday. The scenario needs a clock it can move, starting on the Monday the feed begins
(:data:`START`): the end-to-end test passes a ``ManualClock``; on the system clock the
schedule would fire once a week, for real.

What should be announced follows from the feed file alone (:func:`expected_drops`, plain
``csv``, not the handlers' parser): per region, the first price is the baseline and a
notification is due for each price lower than every price before it — a rise, an
unchanged week, or a fall that stays above the lowest price so far announces nothing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from examples.price_watch.app import INBOX, PRICES

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


def run(app: LocalApp, say: Callable[[str], None]) -> dict[str, Any]:
    """Fire the schedule once a week through the feed (and one week past it), then read the inbox."""
    clock = app.clock
    advance = getattr(clock, "advance", None)
    if advance is None:
        return {"ok": False, "error": "price_watch needs a clock it can move (a ManualClock starting at "
                                      f"{datetime.fromtimestamp(START, UTC).isoformat()})"}
    weeks = feed_weeks()
    if clock.now() > START:
        say(f"the clock is past the feed's start ({datetime.fromtimestamp(clock.now(), UTC).isoformat()}); "
            "the fetcher will read the feed's last week only")
    fired, idle = 0, True
    for _ in range(len(weeks) + 1):  # one week past the feed: the last price again, nothing written
        advance(WEEK_S)
        fired += app.fire_schedules()
        idle = app.wait_idle() and idle
    say(f"schedule fired {fired} times; feed of {len(weeks)} weeks, {weeks[0]['date']} .. {weeks[-1]['date']}")

    received = read_inbox(app)
    got = sorted((n["week"], n["region"], Decimal(n["price"]), Decimal(n["previous_price"])) for n in received)
    want = expected_drops(weeks)
    for week, region, price, before in got:
        say(f"  {week} {region}: {before} -> {price}")
    table = app.resolve(f"${{table:{PRICES}}}")
    items = app.clients.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    lowest = {i["region"]["S"]: Decimal(i["price"]["N"]) for i in items}
    checks = {
        "idle": idle,
        "fired_once_a_week": fired == len(weeks) + 1,
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

