"""The Lambda handlers of price_watch (article 004), each a few lines over pure functions.

``fetch`` (EventBridge schedule): reads the price feed as of the firing's time (the event's
``time``, which comes from the scheduler's clock) and, per region, writes the price only
if it is lower than the one stored — one conditional ``UpdateItem``, so there is no
read-then-write race and a firing repeated for the same week writes nothing. The first
price seen for a region is its baseline (an INSERT, not a drop).

``publish`` (DynamoDB stream, MODIFY records only): every MODIFY of the table is a drop by
construction; the handler still compares the two images before publishing the notification
to SNS (a manual edit of the table raising a price must not announce a drop).

The feed is the bundled ``gas_prices_weekly.csv`` (weekly regional averages, in the shape of
New York's open data the article queries), standing in for the HTTP API: no network.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from lake.aws.clients import HandlerRuntime

FEED = Path(__file__).resolve().parent / "gas_prices_weekly.csv"
SUFFIX = "_average_gal"

_runtime = HandlerRuntime()
configure = _runtime.configure


# -- pure core -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tick:
    """One week of the feed: the date it was published and each region's price per gallon."""

    week: date
    prices: tuple[tuple[str, Decimal], ...]


def parse_feed(text: str) -> list[Tick]:
    """The feed's weeks, oldest first (columns ``<region>_average_gal``, prices in dollars)."""
    ticks = []
    for row in csv.DictReader(text.splitlines()):
        prices = tuple((k[: -len(SUFFIX)], Decimal(v)) for k, v in row.items()
                       if k and k.endswith(SUFFIX) and v not in (None, ""))
        ticks.append(Tick(date.fromisoformat(row["date"]), prices))
    return sorted(ticks, key=lambda t: t.week)


@lru_cache(maxsize=4)
def load_feed(path: Path = FEED) -> tuple[Tick, ...]:
    return tuple(parse_feed(path.read_text()))


def tick_at(ticks: Sequence[Tick], when: datetime) -> Tick | None:
    """The latest week published by ``when`` (what the API would answer then), or None before the feed."""
    day = when.astimezone(UTC).date()
    latest = None
    for tick in ticks:
        if tick.week > day:
            break
        latest = tick
    return latest


def event_time(event: Mapping[str, Any]) -> datetime:
    """A scheduled event's ``time`` (``2022-06-15T00:00:00Z``)."""
    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))


def price_request(table: str, tick: Tick, region: str, price: Decimal, fetched_at: str) -> dict[str, Any]:
    """The ``UpdateItem`` writing ``price`` for ``region`` only if it is the first or a lower one.

    ``previous_price`` keeps the price it replaces (the baseline's is its own price), so a
    notification can say from what the price fell.
    """
    return {
        "TableName": table,
        "Key": {"region": {"S": region}},
        "UpdateExpression": "SET previous_price = if_not_exists(price, :p), price = :p, week = :w, fetched_at = :t",
        "ConditionExpression": "attribute_not_exists(price) OR price > :p",
        "ExpressionAttributeValues": {":p": {"N": str(price)}, ":w": {"S": tick.week.isoformat()},
                                      ":t": {"S": fetched_at}},
    }


def drop_notification(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The SNS ``Publish`` arguments (without the topic) for a stream record that is a drop, else None."""
    if record.get("eventName") != "MODIFY":
        return None
    ddb = record.get("dynamodb") or {}
    old, new = ddb.get("OldImage") or {}, ddb.get("NewImage") or {}
    if "price" not in old or "price" not in new:
        return None
    before, after = Decimal(old["price"]["N"]), Decimal(new["price"]["N"])
    if not after < before:
        return None
    region, week = new["region"]["S"], new.get("week", {}).get("S", "")
    label = region.replace("_", " ").title()
    return {
        "Subject": f"Gasoline price drop in {label}: ${after} (was ${before})"[:100],
        "Message": json.dumps({"region": region, "price": str(after), "previous_price": str(before),
                               "week": week, "text": f"Gasoline price {after} in {label} has fallen "
                                                     f"from {before} (week of {week})"}),
        "MessageAttributes": {"region": {"DataType": "String", "StringValue": region}},
    }


# -- handlers --------------------------------------------------------------------------------------
def fetch(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """EventBridge schedule → the prices table: write each region's price if it dropped."""
    _, clients = _runtime.get()
    ddb = clients.dynamodb
    table = os.environ["PRICES_TABLE"]
    when = event_time(event)
    tick = tick_at(load_feed(), when)
    if tick is None:
        return {"week": None, "written": []}
    written = []
    for region, price in tick.prices:
        try:
            ddb.update_item(**price_request(table, tick, region, price, when.isoformat()))
            written.append(region)
        except ddb.exceptions.ConditionalCheckFailedException:
            pass  # not lower than the stored price: nothing to write
    return {"week": tick.week.isoformat(), "written": written}


def publish(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """DynamoDB stream → SNS: announce each drop."""
    _, clients = _runtime.get()
    sns = clients.sns
    topic = os.environ["ALERTS_TOPIC_ARN"]
    published = 0
    for record in event.get("Records") or []:
        note = drop_notification(record)
        if note is not None:
            sns.publish(TopicArn=topic, **note)
            published += 1
    return {"published": published}
