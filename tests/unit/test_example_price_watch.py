"""price_watch (article 004): the feed, the fetcher's decision, the publisher's filter, no AWS."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest

from examples.price_watch.app import APP, PUBLISH_FILTER, SCHEDULE
from examples.price_watch.handlers import (
    Tick,
    drop_notification,
    event_time,
    load_feed,
    parse_feed,
    price_request,
    tick_at,
)
from examples.price_watch.scenario import expected_drops, feed_weeks, lowest_prices
from lake.apps import RuleEvents, StreamEvents
from lake.filters import compile_filters

FEED_TEXT = """date,new_york_state_average_gal,albany_average_gal
2022-06-20,5.02,5.05
2022-06-13,5.03,
2022-06-27,5.02,5.10
"""


def record(event: str, old: str | None, new: str) -> dict[str, Any]:
    ddb: dict[str, Any] = {"Keys": {"region": {"S": "albany"}},
                           "NewImage": {"region": {"S": "albany"}, "price": {"N": new}, "week": {"S": "2022-06-20"}},
                           "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if old is not None:
        ddb["OldImage"] = {"region": {"S": "albany"}, "price": {"N": old}, "week": {"S": "2022-06-13"}}
    return {"eventID": "1", "eventName": event, "eventSource": "aws:dynamodb", "dynamodb": ddb}


def test_the_feed_is_read_oldest_first_with_its_regions() -> None:
    ticks = parse_feed(FEED_TEXT)
    assert [t.week for t in ticks] == [date(2022, 6, 13), date(2022, 6, 20), date(2022, 6, 27)]
    assert ticks[0].prices == (("new_york_state", Decimal("5.03")),)  # a blank price is no price
    assert dict(ticks[1].prices) == {"new_york_state": Decimal("5.02"), "albany": Decimal("5.05")}


def test_the_bundled_feed_is_weekly_and_complete() -> None:
    ticks = load_feed()
    assert len(ticks) >= 26
    assert all((b.week - a.week).days == 7 for a, b in pairwise(ticks))
    assert all(len(t.prices) == 8 and all(Decimal("2") < p < Decimal("6") for _, p in t.prices) for t in ticks)


@pytest.mark.parametrize(("when", "week"), [
    ("2022-06-12T23:59:00Z", None),
    ("2022-06-13T00:00:00Z", date(2022, 6, 13)),
    ("2022-06-15T00:00:00Z", date(2022, 6, 13)),
    ("2022-06-20T00:00:00Z", date(2022, 6, 20)),
    ("2030-01-01T00:00:00Z", date(2022, 6, 27)),
])
def test_a_firing_reads_the_latest_week_published_by_its_time(when: str, week: date | None) -> None:
    tick = tick_at(parse_feed(FEED_TEXT), event_time({"time": when}))
    assert (tick.week if tick else None) == week


def test_the_price_is_written_only_when_lower() -> None:
    tick = Tick(date(2022, 6, 20), (("albany", Decimal("5.05")),))
    req = price_request("t", tick, "albany", Decimal("5.05"), datetime(2022, 6, 22, tzinfo=UTC).isoformat())
    assert req["Key"] == {"region": {"S": "albany"}}
    assert req["ConditionExpression"] == "attribute_not_exists(price) OR price > :p"
    assert req["ExpressionAttributeValues"][":p"] == {"N": "5.05"}
    assert "previous_price = if_not_exists(price, :p)" in req["UpdateExpression"]


@pytest.mark.parametrize(("event", "old", "new", "passes", "announced"), [
    ("INSERT", None, "5.05", False, False),  # a region's first price: its baseline
    ("MODIFY", "5.05", "4.98", True, True),
    ("MODIFY", "4.98", "5.10", True, False),  # a raise written by hand: through the filter, not announced
    ("MODIFY", "4.98", "4.980", True, False),  # the same price
])
def test_only_drops_are_announced(event: str, old: str | None, new: str, passes: bool, announced: bool) -> None:
    rec = record(event, old, new)
    assert compile_filters([PUBLISH_FILTER])(rec) is passes
    note = drop_notification(rec)
    assert (note is not None) is announced
    if note is not None:
        body = json.loads(note["Message"])
        assert body == {"region": "albany", "price": "4.98", "previous_price": "5.05", "week": "2022-06-20",
                        "text": body["text"]}
        assert note["Subject"].startswith("Gasoline price drop in Albany")
        assert note["MessageAttributes"]["region"]["StringValue"] == "albany"


def test_expected_drops_are_new_lows_only() -> None:
    weeks = [{"date": "w1", "a_average_gal": "3.00"}, {"date": "w2", "a_average_gal": "3.20"},
             {"date": "w3", "a_average_gal": "3.10"}, {"date": "w4", "a_average_gal": "3.10"},
             {"date": "w5", "a_average_gal": "2.90"}, {"date": "w6", "a_average_gal": "2.95"}]
    assert expected_drops(weeks) == [("w5", "a", Decimal("2.90"), Decimal("3.00"))]
    assert lowest_prices(weeks) == {"a": Decimal("2.90")}


def test_the_bundled_feed_has_drops_rises_and_flat_weeks() -> None:
    weeks = feed_weeks()
    drops = expected_drops(weeks)
    changes = [(a[c], b[c]) for a, b in pairwise(weeks) for c in a if c != "date"]
    assert len(drops) > 20
    assert any(Decimal(y) > Decimal(x) for x, y in changes) and any(x == y for x, y in changes)
    assert len(drops) < sum(Decimal(y) < Decimal(x) for x, y in changes)  # some falls are not new lows


def test_the_declaration_is_complete() -> None:
    APP.validate()
    assert APP.root.endswith("price_watch")
    by_name = {f.name: f for f in APP.functions}
    rule = by_name["fetch"].triggers[0]
    assert isinstance(rule, RuleEvents) and rule.schedule == SCHEDULE == "cron(0 0 ? * WED *)"
    stream = by_name["publish"].triggers[0]
    assert isinstance(stream, StreamEvents) and stream.filter_patterns == (PUBLISH_FILTER,)
    for f in APP.functions:
        assert f.permissions and all(p.actions and "*" not in "".join(p.actions) for p in f.permissions)
