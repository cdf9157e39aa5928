"""The dashboard in a real browser (Debian's headless Chromium, driven by Playwright).

`lake dashboard --out DIR` (the CLI, as a subprocess) on a real local lake; the page opened from its
file: every chart renders, no console error, no request at all besides the page itself, and the numbers
drawn equal the results of the same SQL files run here on the local engine. Then `lake up` serving the
page on loopback, refreshing as changes arrive. Screenshots go to the directory the tests print
(LAKE_TEST_ARTEFACTS, default <tmp>/lake-test-artefacts).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.dashboard.queries import query_params, query_text
from lake.dashboard.visuals import SERIES_SEPARATOR, VISUALS, Visual
from lake.errors import QueryError
from lake.local.demo import write_workload
from lake.local.workload import generate
from lake.query.local import LocalEngine
from lake.settings import Settings
from tests.browser import artefacts_dir, chromium_page
from tests.e2e.conftest import REPO, LakeUp, start_lake_up

pytestmark = pytest.mark.e2e

CHARTS = [v for v in VISUALS if v.kind not in ("table", "kpi")]


@dataclass
class UpLake:
    """`lake up` as a subprocess (as a user runs it), filled with a generated workload and drained."""

    up: LakeUp
    settings: Settings
    clients: Clients


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpLake]:
    up = start_lake_up(tmp_path_factory.mktemp("browser-lake"), "--ephemeral")
    try:
        settings = Settings(endpoint_url=up.endpoint, bucket="e2e-lake")
        clients = Clients(settings)
        wl = generate(settings.tables, 400, seed=9, now=time.time())
        write_workload(clients, wl)
        # lake up's TTL sweeper removes expired items while the workload is written (one swept before a later
        # update adds a REMOVE and turns the update into an INSERT): wait for every change, then for calm
        deadline = time.monotonic() + 180
        history: list[int] = []
        while time.monotonic() < deadline:
            engine = LocalEngine(settings, clients)
            try:
                history.append(engine.query("SELECT count(*) AS n FROM changes_unique").to_pylist()[0]["n"])
            except QueryError:
                history.append(0)  # nothing curated yet
            finally:
                engine.close()
            if history[-1] >= wl.expected_records and history[-3:] == [history[-1]] * 3:
                break
            time.sleep(1)
        assert history and history[-1] >= wl.expected_records, f"{history[-1:]} of {wl.expected_records} curated"
        yield UpLake(up, settings, clients)
    finally:
        up.stop()


def label(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def expected_points(v: Visual, rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """What the chart must draw, from the query's rows: per series, x label → summed y (top N for bars)."""
    assert v.x and v.y and v.color
    points: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        name = label(r[v.color])
        if v.kind == "line":
            name = f"{r['table_name']}{SERIES_SEPARATOR}{name}"
        points[name][label(r[v.x])] += r[v.y]
    if v.top:
        totals: dict[str, int] = defaultdict(int)
        for p in points.values():
            for x, y in p.items():
                totals[x] += y
        keep = sorted(totals, key=lambda x: (-totals[x], x))[: v.top]
        return {s: kept for s, p in points.items() if (kept := {x: y for x, y in p.items() if x in keep})}
    return {s: dict(p) for s, p in points.items() if p}


def drawn_points(page: Any, v: Visual) -> dict[str, dict[str, int]]:
    traces = page.evaluate(
        "id => document.getElementById(id).data.map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}))",
        f"v-{v.id}")
    out: dict[str, dict[str, int]] = {}
    for t in traces:
        # plotly keeps the x values it was given: labels, or 'YYYY-MM-DD HH:MM:SS' for times
        out[t["name"]] = {str(x): int(y) for x, y in zip(t["x"], t["y"], strict=True)}
    return out


def test_the_page_in_chromium(lake: UpLake, tmp_path: Path) -> None:
    out = tmp_path / "dash"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "lake.cli", "dashboard", "--out", str(out), "--endpoint-url",
         str(lake.settings.endpoint_url), "--bucket", lake.settings.bucket, "--state-dir", str(tmp_path / "st")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    page_path = Path(proc.stdout.strip().splitlines()[-1])
    assert page_path == (out / "index.html").resolve() and page_path.is_file()

    engine = LocalEngine(lake.settings, lake.clients)
    try:
        results = {v.id: engine.query(query_text(v, lake.settings), query_params(v, lake.settings) or None).to_pylist()
                   for v in VISUALS if not v.athena_only}
    finally:
        engine.close()

    with chromium_page() as (page, errors, failed):
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.as_uri())
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {len(CHARTS)}",
                               timeout=30_000)
        shot = artefacts_dir() / "dashboard-page.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"\nscreenshot: {shot}")

        for v in CHARTS:  # every point of every trace is drawn as an SVG mark
            mark = ".scatterlayer .trace path.point" if v.kind == "line" else ".barlayer .trace .point path"
            points = sum(len(p) for p in drawn_points(page, v).values())
            assert points > 0 and page.locator(f"#v-{v.id} {mark}").count() == points, v.id
        for v in CHARTS:
            if v.athena_only:  # files per partition: from Iceberg metadata, checked in the integration test
                assert sum(sum(p.values()) for p in drawn_points(page, v).values()) > 0
                continue
            assert drawn_points(page, v) == expected_points(v, results[v.id]), v.id

        audit = page.locator("#v-recent_audit_trail tbody tr")
        rows = results["recent_audit_trail"]
        assert audit.count() == len(rows) == 50
        cells = page.evaluate("""() => Array.from(document.querySelectorAll('#v-recent_audit_trail tbody tr'))
            .map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent))""")
        assert cells == [["" if r[c] is None else label(r[c]) for c in VISUALS[4].column_names] for r in rows]

        (lag,) = results["pipeline_lag"]
        assert page.get_attribute("#kpi-changes", "data-value") == str(lag["changes"])
        assert page.get_attribute("#kpi-newest", "data-value") == label(lag["newest_change_time"])
        assert page.get_attribute("#kpi-dlq", "data-value") == "0"
        assert page.get_attribute("#kpi-quarantined", "data-value") == "0"
        assert float(page.get_attribute("#kpi-lag", "data-value") or "nan") >= 0

        assert errors == []
        assert failed == []
        assert requests == [page_path.as_uri()]


def test_lake_up_serves_the_page_and_it_fills(tmp_path: Path) -> None:
    up = start_lake_up(tmp_path, "--ephemeral")
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            url = next((line.split("=", 1)[1].strip() for line in up.output if line.startswith("LAKE_DASHBOARD=")),
                       None)
            time.sleep(0.2)
        assert url and url.startswith("http://127.0.0.1:"), "".join(up.output)
        ddb = up.client("dynamodb")
        with chromium_page() as (page, errors, failed):
            page.goto(url)
            page.wait_for_selector("#kpi-changes", timeout=60_000)
            for i in range(20):
                ddb.put_item(TableName="orders", Item={"pk": {"S": f"c{i % 4}"}, "sk": {"S": str(i)},
                                                       "status": {"S": "paid" if i % 2 else "packed"}})
            # the page reloads itself when the served version changes; no reload by the test
            page.wait_for_function("document.querySelector('#kpi-changes') && "
                                   "document.querySelector('#kpi-changes').dataset.value === '20'", timeout=90_000)
            page.wait_for_function("document.getElementById('v-current_state_counts') && "
                                   "document.getElementById('v-current_state_counts').data.length > 0")
            counts = page.evaluate("""() => Object.fromEntries(document.getElementById('v-current_state_counts').data
                .map(t => [t.name, Object.fromEntries(Array.from(t.x).map((x, i) => [x, t.y[i]]))]))""")
            shot = artefacts_dir() / "dashboard-lake-up.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot: {shot}")
            assert counts == {"orders": {"packed": 10, "paid": 10}}
            assert errors == []
            assert failed == []
    finally:
        assert up.stop() == 0
