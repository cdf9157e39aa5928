"""The jobs run three ways (issue 12): `lake glue <job>` and `lake bootstrap` from a fresh
process, and the `glue_jobs/` scripts (argparse outside Glue), against the embedded AWS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lake.aws.catalog import IcebergMaintenance, IcebergTables
from lake.aws.clients import Clients
from lake.curate import curate
from lake.settings import Settings
from tests.integration.test_curate_iceberg import kinesis, lake  # noqa: F401  (fixture)
from tests.integration.test_fanout_kinesis import stream_record

ROOT = Path(__file__).resolve().parents[2]


def _run(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(settings.state_dir), "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    return subprocess.run([sys.executable, *argv, "--endpoint-url", str(settings.endpoint_url)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_the_cli_and_the_glue_scripts_run_the_jobs(lake: Settings, clients: Clients) -> None:  # noqa: F811
    for b in range(4):
        recs = [stream_record(b * 3 + i, f"K{i}", t=1_700_000_000 + b * 10 + i) for i in range(3)]
        assert curate(lake, kinesis(recs, first=b * 10), clients).failures == []
    tables = IcebergTables(lake, clients)

    dry = _run(lake, "-m", "lake.cli", "glue", "compact", "--table", "orders_history", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] and report["tables"][0]["files_in"] == 4 and report["tables"][0]["files_out"] == 1

    done = _run(lake, "-m", "glue_jobs.compact", "--table", "orders_history")
    assert done.returncode == 0, done.stderr
    assert "files 4 → 1" in done.stdout
    assert len(IcebergMaintenance(tables).data_files(tables.load("orders_history"))) == 1

    state = _run(lake, "-m", "lake.cli", "glue", "current_state")
    assert state.returncode == 0, state.stderr
    assert "orders_current" in state.stdout and tables.scan("orders_current").num_rows == 3
    again = _run(lake, "-m", "glue_jobs.current_state")
    assert again.returncode == 0 and "up to date" in again.stdout

    missing = _run(lake, "-m", "lake.cli", "bootstrap", "--table", "nosuchtable")
    assert missing.returncode == 2 and "nosuchtable" in missing.stderr
    bad = _run(lake, "-m", "lake.cli", "glue", "backfill", "--table", "orders", "--since", "tomorrow-ish")
    assert bad.returncode == 2 and "tomorrow-ish" in bad.stderr


