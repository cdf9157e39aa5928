"""`current_state` on the embedded AWS (issue 12): `<table>_current` equals the live DynamoDB
table item by item after the demo workload and again after more changes (incremental),
`--as-of` equals the table's state at that time (kept by the test), ties and late changes
resolve by event time then sequence number, a deleted item never comes back."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson
import pytest

from lake.aws.catalog import IcebergTables
from lake.aws.clients import Clients
from lake.curate import curate
from lake.curate.evolve import ATTRIBUTE_PROPERTY, DYNAMODB_TYPE_PROPERTY
from lake.curate.names import current_table
from lake.glue.current import CurrentOptions, as_of_table, current_state
from lake.local.demo import write_workload
from lake.local.embedded import sweep_ttl
from lake.local.up import EmbeddedLake
from lake.local.workload import generate
from lake.settings import Settings
from tests.integration.test_curate_iceberg import kinesis, lake  # noqa: F401  (fixture)
from tests.integration.test_fanout_kinesis import stream_record


def _value(tag: str, v: Any) -> Any:
    """A typed value compared exactly: numbers as Decimal, M/L as their typed JSON."""
    if tag == "N":
        return Decimal(v)
    if tag in ("SS", "NS", "BS"):
        return sorted(Decimal(x) if tag == "NS" else x for x in v)
    return v


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A live item as compared; a NULL attribute is absent (the typed history columns, hence
    the current table's, hold DynamoDB's NULL as SQL NULL: docs/CONTRACTS.md)."""
    return {name: _value(*next(iter(tv.items()))) for name, tv in item.items() if "NULL" not in tv}


def _from_row(row: dict[str, Any], properties: dict[str, str]) -> dict[str, Any]:
    """A `_current` row as the item it stands for, read through the table's column properties
    (sibling columns `<column>__<family>` of one attribute hold its value when set)."""
    out: dict[str, Any] = {}
    for column, value in row.items():
        attribute = properties.get(ATTRIBUTE_PROPERTY + column)
        if attribute is None or value is None:
            continue
        tag = properties.get(DYNAMODB_TYPE_PROPERTY + column, "S")
        if tag in ("M", "L"):
            out[attribute] = orjson.loads(value)
        elif tag == "N":
            out[attribute] = Decimal(str(value))
        elif tag in ("SS", "NS", "BS"):
            out[attribute] = sorted(Decimal(str(x)) if tag == "NS" else x for x in value)
        else:
            out[attribute] = value
    return out


def live_items(clients: Clients, table: str) -> dict[str, dict[str, Any]]:
    from lake.records import key_string

    items: dict[str, dict[str, Any]] = {}
    for page in clients.dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            keys = {k: item[k] for k in ("pk", "sk") if k in item}
            items[key_string(keys)] = _from_item(item)
    return items


def current_items(settings: Settings, clients: Clients, name: str) -> dict[str, dict[str, Any]]:
    tables = IcebergTables(settings, clients)
    table = tables.load(name)
    rows = tables.scan(name, table=table).to_pylist()
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), "one row per item"
    return {r["key"]: _from_row(r, dict(table.properties)) for r in rows}


def diff(got: dict[str, dict[str, Any]], want: dict[str, dict[str, Any]]) -> list[str]:
    """What differs, item by item and attribute by attribute (the assertion's message)."""
    out = [f"missing {k}" for k in want.keys() - got.keys()] + [f"extra {k}" for k in got.keys() - want.keys()]
    for k in sorted(want.keys() & got.keys()):
        for a in sorted(want[k].keys() | got[k].keys()):
            if want[k].get(a) != got[k].get(a):
                out.append(f"{k}.{a}: {got[k].get(a)!r} != live {want[k].get(a)!r}")
    return out


def _run(lake_: EmbeddedLake, changes: int, seed: int) -> None:
    assert lake_.clients is not None
    now = time.time()
    wl = generate(lake_.settings.tables, changes, seed=seed, now=now)
    write_workload(lake_.clients, wl)
    sweep_ttl(lake_.settings.region, now=now)
    assert lake_.wait_idle(120)


def test_current_equals_the_live_table_after_the_workload_and_after_more_changes(settings: Settings) -> None:
    with EmbeddedLake(settings.replace(source_tables=("orders:pk:sk",)), port=0, ttl_interval_s=None,
                      poll_interval_s=0.02) as embedded:
        s, clients = embedded.settings, embedded.clients
        assert clients is not None
        _run(embedded, 400, seed=3)
        first = current_state(s, CurrentOptions(), clients)
        live = live_items(clients, "orders")
        assert len(live) > 20
        assert diff(current_items(s, clients, "orders_current"), live) == []
        assert "full" in " ".join(first.tables[0].notes)
        time.sleep(1.1)  # event times have a resolution of a second: the as-of instant is between
        instant_us = int(time.time() * 1e6)
        kept = live
        time.sleep(1.1)

        _run(embedded, 300, seed=4)
        assert live_items(clients, "orders") != kept
        second = current_state(s, CurrentOptions(), clients)
        notes = " ".join(second.tables[0].notes)
        assert "incremental" in notes and second.tables[0].rows_in < IcebergTables(s, clients).scan(
            "orders_history").num_rows
        assert diff(current_items(s, clients, "orders_current"), live_items(clients, "orders")) == []

        again = current_state(s, CurrentOptions(), clients)
        assert not again.changed and "up to date" in " ".join(again.tables[0].notes)

        as_of = current_state(s, CurrentOptions(as_of_us=instant_us), clients)
        name = as_of_table("orders", instant_us)
        assert as_of.tables[0].table == name
        assert diff(current_items(s, clients, name), kept) == []


def test_late_and_tied_changes_resolve_by_time_then_sequence_and_deletes_stick(lake: Settings,  # noqa: F811
                                                                                clients: Clients) -> None:
    t = 1_700_000_000
    batch1 = [stream_record(1, "A", new={"v": {"S": "a1"}}, t=t), stream_record(2, "A", new={"v": {"S": "a2"}}, t=t),
              stream_record(3, "B", new={"v": {"S": "b1"}}, t=t),
              stream_record(4, "B", event="REMOVE", old={"pk": {"S": "B"}}, t=t + 5)]
    assert curate(lake, kinesis(batch1), clients).failures == []
    current_state(lake, CurrentOptions(), clients)
    got = current_items(lake, clients, current_table("orders"))
    assert got.keys() == {"pk=A|sk=0"} and got["pk=A|sk=0"]["v"] == "a2"  # same second: the later sequence

    # a late change of B older than its delete (as a backfill or a slow shard brings) must not revive it,
    # and a TTL delete of A removes it
    late = [stream_record(5, "B", new={"v": {"S": "b-late"}}, t=t + 1),
            stream_record(6, "C", new={"v": {"S": "c1"}}, t=t + 2)]
    assert curate(lake, kinesis(late, first=10), clients).failures == []
    ttl = stream_record(7, "A", event="REMOVE", old={"pk": {"S": "A"}}, t=t + 9)
    ttl["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert curate(lake, kinesis([ttl], first=20), clients).failures == []
    report = current_state(lake, CurrentOptions(), clients)
    assert "incremental" in " ".join(report.tables[0].notes)
    got = current_items(lake, clients, current_table("orders"))
    assert got.keys() == {"pk=C|sk=0"}

    full = current_state(lake, CurrentOptions(full=True, tables=("orders",)), clients)
    assert "full" in " ".join(full.tables[0].notes)
    assert current_items(lake, clients, current_table("orders")) == got


def test_dry_run_writes_nothing_and_bad_options_are_refused(lake: Settings, clients: Clients) -> None:  # noqa: F811
    assert curate(lake, kinesis([stream_record(1, "A")]), clients).failures == []
    report = current_state(lake, CurrentOptions(dry_run=True), clients)
    assert report.tables[0].rows_out == 1
    assert IcebergTables(lake, clients).find(current_table("orders")) is None
    with pytest.raises(Exception, match="--as-of"):
        CurrentOptions(into="x")
