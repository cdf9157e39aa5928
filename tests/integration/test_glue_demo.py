"""`lake demo` runs current_state and compact and prints what they did (issue 12)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from lake.local.demo import run_demo
from lake.settings import Settings


def test_the_demo_runs_current_state_and_compact(settings: Settings, tmp_path: Path) -> None:
    # the `settings` fixture resets moto's backends, which every embedded AWS of this process shares:
    # the demo's lake starts empty whatever the tests before it left
    out = io.StringIO()
    demo = settings.replace(endpoint_url=None, state_dir=str(tmp_path / "demo"))
    report = run_demo(demo, 300, 7, Console(file=out, width=200), timeout_s=120)
    text = out.getvalue()
    (rows, live), = report.stages["current_rows"].values()
    assert rows == live > 0
    assert f"orders_current: {rows} rows; orders holds {live} items (equal)" in text
    files_in, files_out = report.stages["compacted_files"]
    assert files_in > files_out > 0
    assert "compact: per table" in text and "current_state: per table" in text
