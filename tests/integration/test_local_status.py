"""Issue 11, "no silent worker death": `lake status` and `lake up`'s log show each mapping's
state, lag, last error, records delivered, dead-letter depth and restarts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lake.cli import main
from lake.local.runtime import EventSourceMapping
from lake.local.status import status_path
from lake.local.up import EmbeddedLake
from lake.settings import Settings
from tests.runtime_helpers import Recorder, put_items


def test_lake_status_shows_each_mapping_while_running_and_says_when_stopped(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: Any) -> None:
    state = tmp_path / "lake-state"
    s = settings.replace(state_dir=str(state))

    def fail(event: dict[str, Any]) -> Any:
        raise RuntimeError("the sink is down")

    with caplog.at_level("INFO", logger="lake.local.status"), \
            EmbeddedLake(s, port=0, ttl_interval_s=None, poll_interval_s=0.02, status_interval_s=3600) as lake:
        assert lake.clients is not None and lake.provisioned is not None and lake.reporter is not None
        lake.runtime.add_mapping(EventSourceMapping(Recorder(fail), lake.provisioned.stream_arns["orders"],
                                                    maximum_retry_attempts=0, name="failing-sink",
                                                    on_failure_destination=lake.provisioned.dlq_arn))
        put_items(lake.clients, 3)
        assert lake.wait_idle(30)
        lake.reporter.report()
        data = json.loads(status_path(state).read_text())
        by_name = {m["name"]: m for m in data["mappings"]}
        archiver = by_name["stream-archiver"]
        assert archiver["state"] == "Enabled" and archiver["records_succeeded"] == 3 and archiver["lag_s"] == 0
        assert archiver["worker_restarts"] == 0 and archiver["last_error"] is None
        sink = by_name["failing-sink"]
        assert sink["records_to_destination"] == 3 and "the sink is down" in sink["last_error"]["error"]
        depth = data["dlq_depth"]
        assert depth >= 1 and data["running"] is True  # one message per failed batch
        assert main(["status", "--state-dir", str(state)]) == 0
        out = capsys.readouterr().out
        assert "lake up at http://127.0.0.1:" in out and f"dead-letter queue: {depth} message(s)" in out
        assert "stream-archiver" in out and "parquet-consumer" in out and "the sink is down" in out
    summaries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("status:")]
    assert summaries and "dead-lettered 3" in summaries[-1] and f"(queue depth {depth})" in summaries[-1]
    assert main(["status", "--state-dir", str(state)]) == 1  # stopped
    out = capsys.readouterr().out
    assert "lake up is not running" in out and "Stopped" in out


def test_lake_status_without_a_lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "no `lake up` has run" in capsys.readouterr().out


def test_lake_status_shows_the_saved_state_and_the_faults_injected(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "lake-state"
    s = settings.replace(state_dir=str(state), endpoint_url=None)
    with EmbeddedLake(s, port=0, ttl_interval_s=None, poll_interval_s=0.02, status_interval_s=3600, persist=True,
                      faults="s3.5xx=1.0,seed=3") as lake:
        assert lake.clients is not None and lake.state is not None and lake.reporter is not None
        put_items(lake.clients, 2)
        lake.state.snapshot()
        for _ in range(3):  # every S3 object request fails
            try:
                lake.clients.s3.head_object(Bucket=s.bucket, Key="nothing")
            except ClientError:  # the injected 500
                pass
        lake.reporter.report()
        assert main(["status", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert f"saved in {state / 'aws'}: last snapshot" in out and "journaled write(s) since" in out
    shown = re.search(r"faults \(s3\.5xx=1,seed=3\): \d+ injected — .*s3\.5xx (\d+)", out)
    assert shown is not None and int(shown.group(1)) >= 3, out  # (the archiver's retries add more)
