"""``lake up``'s dashboard: the local page served on loopback, rebuilt as changes arrive.

A thread rebuilds the page (``lake.dashboard``) when the lake moved (the ``changes`` table's
snapshot, the dead-letter depth or the quarantine changed) and at least every ``max_age_s`` (the lag
tile ages), looking every ``interval_s`` seconds, or four times as long as the last build took.
The page polls ``/version`` and reloads when it changes. Nothing is built while nobody watches (no
request for ``idle_s`` seconds): an unwatched ``lake up`` (a soak, a test) does no work for the page.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lake.aws.clients import Clients
from lake.clock import Clock, SystemClock
from lake.dashboard.collect import DashboardData, collect
from lake.dashboard.html import render
from lake.errors import LakeError
from lake.settings import Settings

log = logging.getLogger(__name__)

_WAITING = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>lake dashboard</title></head><body>"
            "<p>the lake's dashboard is being built…</p><script>setTimeout(function(){location.reload()},1000)"
            "</script></body></html>")


class DashboardServer:
    """Serve the dashboard of the lake at ``settings`` on ``127.0.0.1:port`` (0: any free port)."""

    def __init__(self, settings: Settings, port: int = 0, interval_s: float = 2.0, max_age_s: float = 30.0,
                 clients: Clients | None = None, clock: Clock | None = None, idle_s: float = 60.0) -> None:
        self.settings = settings
        self.clients = clients or Clients(settings)
        self.clock = clock or SystemClock()
        self.interval_s, self.max_age_s, self.idle_s = interval_s, max_age_s, idle_s
        self._watched_at: float | None = None  # the last request for the page or its version
        self._watched = threading.Event()
        self.version = 0
        self.page = _WAITING
        self.data: DashboardData | None = None
        self._state: tuple[Any, ...] | None = None
        self._built_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._engine: Any = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    page, version = server.page, server.version
                    if path in ("/", "/index.html", "/version"):
                        server._watched_at = server.clock.monotonic()
                        server._watched.set()
                if path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", page.encode())
                elif path == "/version":
                    self._send(200, "text/plain", str(version).encode())
                elif path == "/favicon.ico":  # browsers ask; a 404 would be a console error
                    self._send(204, "image/x-icon", b"")
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("dashboard: " + format, *args)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self._threads = [threading.Thread(target=self.httpd.serve_forever, name="dashboard-http", daemon=True),
                         threading.Thread(target=self._run, name="dashboard-refresh", daemon=True)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def start(self) -> DashboardServer:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            t.join(timeout=10)
        if self._engine is not None:
            self._engine.close()

    def _lake_state(self) -> tuple[Any, ...]:
        from lake.aws.catalog import IcebergTables
        from lake.curate.names import CHANGES
        from lake.dashboard.collect import dead_letter_depth, quarantined

        table = IcebergTables(self.settings, self.clients).find(CHANGES)
        snapshot = table.current_snapshot() if table is not None else None
        return (snapshot.snapshot_id if snapshot else None, dead_letter_depth(self.settings, self.clients),
                quarantined(self.settings, self.clients))

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the page if the lake moved (or it is older than ``max_age_s``); True if rebuilt."""
        state = self._lake_state()
        if not force and state == self._state and self.clock.monotonic() - self._built_at < self.max_age_s:
            return False
        from lake.query.local import LocalEngine

        if self._engine is None:
            self._engine = LocalEngine(self.settings, self.clients)
        self._engine.refresh()  # the catalog and the tables' current snapshots
        data = collect(self.settings, self._engine, self.clients, self.clock)
        with self._lock:
            self.version += 1
            self.page = render(data, version=str(self.version))
            self.data = data
        self._state, self._built_at = state, self.clock.monotonic()
        return True

    def watched(self) -> bool:
        with self._lock:
            return self._watched_at is not None and self.clock.monotonic() - self._watched_at < self.idle_s

    def _run(self) -> None:
        while True:
            if not self.watched():
                self._watched.clear()
                # wait for a viewer (a request sets the event) or the stop
                while not self._watched.wait(0.5):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
            started = self.clock.monotonic()
            try:
                self.refresh()
            except LakeError as e:  # the lake is starting, or an AWS hiccup: the next round tries again
                log.info("dashboard not refreshed: %s", e)
            except Exception:  # as TableWatcher: a failed refresh must not stop `lake up` nor the page
                log.exception("dashboard refresh failed")
            # a big lake under load: the page may lag a little, the lake must not (the build shares its CPUs)
            pause = max(self.interval_s, 4 * (self.clock.monotonic() - started))
            if self._stop.wait(pause):
                return


def serve(settings: Settings, port: int = 0) -> DashboardServer:
    """Start serving and print where (one machine-readable line, like ``LAKE_ENDPOINT=``)."""
    server = DashboardServer(settings, port).start()
    print(f"dashboard: {server.url}  (refreshes as changes arrive)\nLAKE_DASHBOARD={server.url}", flush=True)
    return server
