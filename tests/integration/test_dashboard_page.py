"""The local dashboard's numbers on a real local lake, against the workload's ground truth, and the
page they make: self-contained (no request can leave it), every visual present."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lake.curate.summary import curated_summary
from lake.dashboard.collect import DashboardData
from lake.dashboard.html import render
from lake.dashboard.page import build, write_page
from lake.dashboard.visuals import VISUALS
from lake.local.embedded import EmbeddedAWS
from tests.dashboard_lake import Lake, running_lake


@pytest.fixture(scope="module")
def lake(embedded_aws: EmbeddedAWS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    with running_lake(embedded_aws, tmp_path_factory.mktemp("dashboard-lake")) as lk:
        yield lk


@pytest.fixture(scope="module")
def data(lake: Lake) -> DashboardData:
    return build(lake.settings, lake.lake.clients)


def test_every_visual_has_rows_and_no_errors(data: DashboardData) -> None:
    assert data.errors == {}
    assert {v.id for v in VISUALS} == set(data.rows)
    assert all(data.rows[v.id] for v in VISUALS), {v.id: len(data.rows[v.id]) for v in VISUALS}


def test_numbers_equal_the_workloads_ground_truth(lake: Lake, data: DashboardData) -> None:
    wl = lake.workload
    by_event: Counter[str] = Counter()
    for r in data.rows["change_volume"]:
        by_event[r["event_name"]] += r["changes"]
    assert by_event == {"INSERT": wl.inserts, "MODIFY": wl.updates, "REMOVE": wl.deletes + lake.ttl_expired}
    assert lake.ttl_expired == len(wl.ttl_due) > 0 and wl.deletes > 0

    deletions = {(r["table_name"], r["deletion_kind"]): r["deletions"] for r in data.rows["deletions"]}
    assert deletions == {("orders", "ttl"): lake.ttl_expired, ("orders", "user"): wl.deletes}

    counts = Counter({(r["table_name"], r["value"]): r["items"] for r in data.rows["current_state_counts"]})
    assert counts == lake.expected_status_counts()

    (lag,) = data.rows["pipeline_lag"]
    assert lag["changes"] == wl.expected_records
    assert data.health.newest_change_time == lag["newest_change_time"]
    assert data.health.lag_seconds is not None and 0 <= data.health.lag_seconds < 600
    assert data.health.dead_letter_depth == 0 and data.health.quarantined == 0

    files = data.rows["files_per_partition"]
    assert sum(r["files"] for r in files) == curated_summary(lake.settings, lake.lake.clients).files["changes"]
    assert sum(r["records"] for r in files) == wl.expected_records

    assert len(data.rows["recent_audit_trail"]) == 50
    times = [r["event_time"] for r in data.rows["recent_audit_trail"]]
    assert times == sorted(times, reverse=True)


def test_the_chosen_attribute_changes_the_counts(lake: Lake) -> None:
    by_actor = build(lake.settings.replace(dashboard_attribute="updated_by"), lake.lake.clients)
    rows = by_actor.rows["current_state_counts"]
    assert by_actor.attribute == "updated_by"
    assert sum(r["items"] for r in rows) == sum(lake.expected_status_counts().values())
    assert {r["value"] for r in rows} <= {"alice", "bob", "carol", "order-service", "billing-service"}


def test_the_page_is_self_contained(data: DashboardData, tmp_path: Path) -> None:
    path = write_page(data, tmp_path / "out")
    text = path.read_text()
    assert path.name == "index.html" and text == render(data)
    # nothing is fetched: no src/href to anything, no stylesheet link; plotly.js is inlined
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=""", text)
    assert "Plotly.newPlot" in text and len(text) > 3_000_000
    for v in VISUALS:
        if v.kind != "kpi":
            assert f'id="v-{v.id}"' in text
    assert "fetch('version'" not in text  # a page opened from a file never polls
    assert "fetch('version'" in render(data, version="3")  # a served one does
