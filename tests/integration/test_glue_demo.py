"""`lake demo` runs current_state and compact and prints what they did (issue 12)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from lake.local.demo import run_demo
from lake.settings import Settings
from tests.integration.test_glue_compact import moto_glue_compat  # noqa: F401  (fixture)


def test_the_demo_runs_current_state_and_compact(tmp_path: Path) -> None:
    out = io.StringIO()
    settings = Settings.resolve({"state_dir": str(tmp_path)}, environ={}, config_path=None)
    report = run_demo(settings, 300, 7, Console(file=out, width=200), timeout_s=120)
    text = out.getvalue()
    (rows, live), = report.stages["current_rows"].values()
    assert rows == live > 0
    assert f"orders_current: {rows} rows; orders holds {live} items (equal)" in text
    files_in, files_out = report.stages["compacted_files"]
    assert files_in > files_out > 0
    assert "compact: per table" in text and "current_state: per table" in text
