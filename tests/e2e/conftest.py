"""Start `lake up` as a subprocess on a free port and stop it with SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from lake.local.embedded import EmbeddedAWS
from lake.local.up import EmbeddedLake
from lake.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@dataclass
class LakeUp:
    proc: subprocess.Popen[str]
    endpoint: str
    sink: Path
    state_dir: Path
    output: list[str]

    def client(self, service: str):  # type: ignore[no-untyped-def]
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def _pump(stream, lines: list[str], q: queue.Queue[str]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        lines.append(line)
        q.put(line)


def start_lake_up(tmp_path: Path, *extra: str, wired: bool = True) -> LakeUp:
    """`lake up` on a free port with its state in ``tmp_path/state``; the caller stops or kills it.
    ``wired``: the e2e bucket and the sink handler (tests/e2e/sink.py) beside the lake's own."""
    sink = tmp_path / "sink.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
    env["LAKE_SINK_FILE"] = str(sink)
    cmd = [sys.executable, "-m", "lake.cli", "up", "--port", "0", "--state-dir", str(tmp_path / "state"),
           *(("--bucket", "e2e-lake", "--function", "tests.e2e.sink:handler") if wired else ()), *extra]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    q: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines, q), daemon=True).start()
    endpoint = None
    deadline = time.monotonic() + 60
    while endpoint is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            line = q.get(timeout=0.5)
        except queue.Empty:
            continue
        if line.startswith("LAKE_ENDPOINT="):
            endpoint = line.strip().split("=", 1)[1]
    if endpoint is None:
        proc.kill()
        pytest.fail("lake up did not print its endpoint:\n" + "".join(lines))
    return LakeUp(proc, endpoint, sink, tmp_path / "state", lines)


@pytest.fixture
def lake_up(tmp_path: Path) -> Iterator[LakeUp]:
    up = start_lake_up(tmp_path)
    yield up
    if up.proc.poll() is None:
        up.proc.kill()
        up.proc.wait()


@pytest.fixture
def app_lake(embedded_aws: EmbeddedAWS, tmp_path: Path) -> Iterator[EmbeddedLake]:
    """A fresh lake in this process for an example's LocalApp (moto's backends are shared by every
    embedded AWS of the process: reset first), archiving every table it sees."""
    embedded_aws.reset()
    settings = Settings.resolve({"state_dir": str(tmp_path / "state")}, environ={}, config_path=None)
    lake = EmbeddedLake(settings, port=0, watch_tables=True, ttl_interval_s=None, status_interval_s=None,
                        poll_interval_s=0.05)
    lake.handler_processes = False  # the lake's own handlers in threads: a faster start
    with lake:
        yield lake
