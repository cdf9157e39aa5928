"""`lake up`'s dashboard server on the embedded AWS: a lake with nothing curated yet still gets a page
(saying why each visual is empty), the page is rebuilt only when the lake moved or it got old, and it
is served on loopback with its version."""

from __future__ import annotations

import time
import urllib.request

from lake.aws.clients import Clients
from lake.aws.provision import provision
from lake.local.dashboard_server import DashboardServer
from lake.settings import Settings
from tests.clock import ManualClock


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()


def test_refresh_builds_on_change_or_age_and_serves(settings: Settings, clients: Clients) -> None:
    provision(settings, clients)
    clock = ManualClock()
    server = DashboardServer(settings, port=0, interval_s=3600, max_age_s=30, clients=clients, clock=clock)
    try:
        assert server.refresh() is True
        assert server.data is not None and server.data.rows["change_volume"] == []
        assert "change_volume" in server.data.errors  # nothing curated yet: said, not hidden
        assert server.data.health.dead_letter_depth == 0 and server.data.health.quarantined == 0
        assert server.refresh() is False  # nothing moved
        clients.store(settings.bucket).put(settings.zone_prefix("quarantine") + "stage=curate/x.json", b"{}")
        assert server.refresh() is True and server.data.health.quarantined == 1
        clock.advance(31)
        assert server.refresh() is True  # the lag tile ages: rebuilt anyway
        assert server.version == 3

        server.start()
        status, page = get(server.url)
        assert status == 200 and 'id="kpi-quarantined" data-value="1"' in page
        assert get(server.url + "version") == (200, "3")
        assert get(server.url + "favicon.ico")[0] == 204
    finally:
        server.stop()


def test_nothing_is_built_until_someone_watches(settings: Settings, clients: Clients) -> None:
    provision(settings, clients)
    server = DashboardServer(settings, port=0, interval_s=0.2, clients=clients).start()
    try:
        time.sleep(1.5)
        assert server.version == 0 and server.data is None  # an unwatched lake up does no work for the page
        status, page = get(server.url)
        assert status == 200 and "being built" in page
        deadline = time.monotonic() + 60
        while server.version == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.version >= 1
        assert 'id="kpi-dlq" data-value="0"' in get(server.url)[1]
    finally:
        server.stop()
