"""The local page: the visuals' queries on DuckDB, rendered to ``<dir>/index.html``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lake.aws.clients import Clients
from lake.clock import Clock
from lake.dashboard.collect import DashboardData, collect
from lake.dashboard.html import render
from lake.settings import Settings

PAGE_NAME = "index.html"


def build(settings: Settings, clients: Clients | None = None, engine: Any = None,
          clock: Clock | None = None) -> DashboardData:
    """Collect the dashboard's data on ``engine`` (default: the local engine, closed afterwards)."""
    clients = clients or Clients(settings)
    if engine is not None:
        return collect(settings, engine, clients, clock)
    from lake.query.local import LocalEngine

    own = LocalEngine(settings, clients)
    try:
        return collect(settings, own, clients, clock)
    finally:
        own.close()


def write_page(data: DashboardData, out_dir: str | os.PathLike[str]) -> Path:
    """Write the page atomically (a reader never sees half a file); return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / PAGE_NAME
    tmp = out / f".{PAGE_NAME}.tmp"
    tmp.write_text(render(data), encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_dashboard(settings: Settings, out_dir: str | os.PathLike[str], clients: Clients | None = None) -> Path:
    """``lake dashboard --out DIR`` (and ``lake demo``): build from the local engine and write the page."""
    return write_page(build(settings, clients), out_dir)
