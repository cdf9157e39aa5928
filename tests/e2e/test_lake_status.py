"""`lake status` beside a running `lake up`: the mappings, their counters, and a stopped lake named as such."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO, LakeUp
from tests.e2e.test_lake_up import sink_records, wait_for

pytestmark = pytest.mark.e2e


def lake_status(up: LakeUp) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "lake.cli", "status", "--state-dir", str(up.state_dir)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_lake_status_reports_a_running_lake_and_then_a_stopped_one(lake_up: LakeUp) -> None:
    lake_up.client("dynamodb").put_item(TableName="orders", Item={"pk": {"S": "s"}, "sk": {"S": "1"}})
    assert wait_for(lambda: sink_records(lake_up))

    def delivered() -> subprocess.CompletedProcess[str] | None:
        res = lake_status(lake_up)
        row = [line for line in res.stdout.splitlines() if line.startswith("tests.e2e.sink.handler")]
        return res if row and row[0].split()[3] == "1" else None

    res = wait_for(delivered, timeout=20, interval=0.5)
    assert res and res.returncode == 0, lake_status(lake_up).stdout
    assert "lake up at " + lake_up.endpoint in res.stdout and "stream-archiver" in res.stdout
    assert any(line.startswith("MAPPING") and "LAG" in line and "RESTARTS" in line for line in res.stdout.splitlines())
    assert lake_up.stop() == 0
    assert any("status: " in line for line in lake_up.output)  # `lake up`'s log summarises
    after = lake_status(lake_up)
    assert after.returncode == 1 and "lake up is not running" in after.stdout
