"""price_watch (article 004) end to end on the embedded stack, on a clock the test moves.

A ManualClock starts on the Monday the bundled feed begins; the test moves it a week at a
time through the feed (the scenario does), each move firing the weekly schedule once. The
notifications read from the subscribed queue must be exactly the feed's new lows, computed
here from the data file on its own (plain csv), and the prices table's changes must be in
the lake: one INSERT per region (its baseline) and one MODIFY per drop.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import Any

import pytest

from examples.price_watch.app import APP, PRICES
from examples.price_watch.scenario import FEED, START, run
from lake.cli import main
from lake.local.apps import LocalApp
from lake.local.embedded import EmbeddedAWS
from lake.local.up import EmbeddedLake
from lake.query.local import LocalEngine
from tests.clock import ManualClock


def drops_in_feed() -> tuple[list[tuple[str, str, Decimal]], set[str]]:
    """From the data file alone: (week, region, price) of each price below all earlier ones of
    its region, and the regions."""
    lowest: dict[str, Decimal] = {}
    drops = []
    with FEED.open(newline="") as f:
        for row in sorted(csv.DictReader(f), key=lambda r: r["date"]):
            for column, value in row.items():
                if column == "date":
                    continue
                region, price = column.removesuffix("_average_gal"), Decimal(value)
                if region in lowest and price < lowest[region]:
                    drops.append((row["date"], region, price))
                lowest[region] = min(lowest.get(region, price), price)
    return sorted(drops), set(lowest)


def test_notifications_exactly_for_the_drops_and_the_prices_in_the_lake(app_lake: EmbeddedLake) -> None:
    lake = app_lake
    clock = ManualClock(start=START)
    said: list[str] = []
    drops, regions = drops_in_feed()
    with LocalApp(APP, lake, clock=clock) as app:
        outcome: dict[str, Any] = run(app, said.append)
        assert app.wait_idle(60)

        assert outcome["checks"] == {k: True for k in outcome["checks"]}, (outcome, said)
        assert outcome["ok"]
        assert outcome["notifications"] == len(drops) == outcome["expected_notifications"]
        weeks = outcome["weeks"]
        assert outcome["fired"] == weeks + 1
        # one firing a week, each read the week published the Monday before it
        fetches = [inv["result"] for inv in app.invocations("fetch")]
        assert [r["week"] for r in fetches][:3] == ["2022-06-13", "2022-06-20", "2022-06-27"]
        assert fetches[-1]["written"] == [] and fetches[-1]["week"] == fetches[-2]["week"]
        # the publisher saw only MODIFY records (the filter), and announced every one it saw
        seen = [r for e in app.events("publish") for r in e["Records"]]
        assert {r["eventName"] for r in seen} == {"MODIFY"} and len(seen) == len(drops)

    engine = LocalEngine(lake.settings, lake.clients)
    rows = engine.query(f"SELECT event_name, count(*) AS n FROM changes WHERE table_name = '{PRICES}' "
                        "GROUP BY 1").to_pylist()
    assert {r["event_name"]: r["n"] for r in rows} == {"INSERT": len(regions), "MODIFY": len(drops)}


def test_lake_example_price_watch_runs_on_the_system_clock(embedded_aws: EmbeddedAWS,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The documented command: on the system clock the scenario wires the app again on a stepped
    clock of its own (the path the ManualClock test above does not take)."""
    embedded_aws.reset()  # moto's backends are shared by every embedded AWS of the process
    drops, regions = drops_in_feed()
    assert main(["example", "price_watch"]) == 0
    out = capsys.readouterr().out
    assert "on a clock starting 2022-06-13 12:00 UTC" in out
    assert f'"notifications": {len(drops)}' in out
    assert f"lake: {len(drops) + len(regions)} change(s) of table {PRICES}" in out
    assert out.rstrip().endswith("ok")
