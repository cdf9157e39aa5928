"""`lake up --faults` and `lake redrive` as a user runs them: the fault counts in the state directory,
poison in the dead-letter queue, a dry-run re-drive that says what it would do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, LakeUp, start_lake_up
from tests.e2e.test_lake_up import wait_for

pytestmark = pytest.mark.e2e

SPEC = "poison=0.1,s3.5xx=0.05,s3.slowdown=0.02,kinesis.partial=0.1,kinesis.throttle=0.02,handler.error=0.02,seed=3"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}


@pytest.fixture
def faulty_lake(tmp_path: Path) -> Iterator[LakeUp]:
    up = start_lake_up(tmp_path, "--faults", SPEC, wired=False)
    yield up
    if up.proc.poll() is None:
        up.proc.kill()
        up.proc.wait()


def lake(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lake.cli", *args], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=120)


def test_a_bad_fault_spec_is_a_usage_error() -> None:
    res = lake("up", "--port", "0", "--faults", "s3.5xx=2")
    assert res.returncode == 2
    assert "argument --faults: s3.5xx=2: a rate is a probability between 0 and 1" in res.stderr


def test_faults_are_counted_in_the_state_directory_and_poison_waits_in_the_queue(faulty_lake: LakeUp) -> None:
    ddb = faulty_lake.client("dynamodb")  # an outside writer: never faulted
    for i in range(60):
        ddb.put_item(TableName="orders", Item={"pk": {"S": f"k{i}"}, "sk": {"S": "0"}, "n": {"N": str(i)}})
    counts_file = faulty_lake.state_dir / "faults.json"

    def settled() -> dict[str, Any] | None:
        try:
            counts = json.loads(counts_file.read_text())
            status = json.loads((faulty_lake.state_dir / "status.json").read_text())
        except (OSError, ValueError):
            return None
        archived = {m["name"]: m["records_succeeded"] + m["records_to_destination"] for m in status["mappings"]}
        poisoned = counts["injected"]["poison"]
        done = archived.get("stream-archiver") == 60 and status["dlq_depth"] == 2 * poisoned
        return {"counts": counts, "status": status} if done and poisoned else None

    seen = wait_for(settled, timeout=90, interval=0.5)
    assert seen, counts_file.read_text() if counts_file.exists() else "no faults.json"
    counts = seen["counts"]
    assert counts["spec"].endswith("seed=3") and counts["armed"] is True
    assert set(counts["injected"]) >= {"s3.5xx", "s3.slowdown", "conn.reset", "kinesis.partial", "kinesis.throttle",
                                       "handler.error", "handler.crash", "poison"}
    assert counts["total_injected"] == sum(counts["injected"].values()) > counts["injected"]["poison"]
    assert len(counts["poisoned"]) == counts["injected"]["poison"]
    assert seen["status"]["faults"]["injected"]["poison"] == counts["injected"]["poison"]  # in `lake status --json`

    res = lake("redrive", "--endpoint-url", faulty_lake.endpoint, "--state-dir", str(faulty_lake.state_dir),
               "--dry-run", "--from", "stream")
    assert res.returncode == 0, res.stdout + res.stderr
    poisoned = counts["injected"]["poison"]
    assert f"dry run: {2 * poisoned} message(s)" in res.stdout and "nothing sent or deleted" in res.stdout
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()[2:4]}
    assert rows["stream-archiver"][1:3] == [str(poisoned), str(poisoned)] and rows["fanout"][1] == str(poisoned)
    assert faulty_lake.stop() == 0
    assert json.loads(counts_file.read_text())["armed"] is False  # written once more at stop
