"""Handlers in worker processes (LocalRuntime(handler_processes=True)): Lambda's semantics hold
across the process boundary — partial batch failures, time limits (the process is killed and
the batch retried in a fresh one), a process that dies mid-invocation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.local.runtime import EventSourceMapping, LocalRuntime
from tests.runtime_helpers import make_table, put_items, stream_seqs


@pytest.fixture
def sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "sink.jsonl"
    monkeypatch.setenv("LAKE_TEST_SINK", str(path))  # the worker processes inherit the environment
    return path


def lines(sink: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.read_text().splitlines()] if sink.exists() else []


def run(clients: Clients, tmp_path: Path, function: str, **kw: Any) -> LocalRuntime:
    arn = make_table(clients)
    put_items(clients, 7)
    rt = LocalRuntime(clients, [EventSourceMapping(function, arn, name="proc", **kw)], tmp_path / "state",
                      poll_interval_s=0.02, max_retry_backoff_s=0.05, handler_processes=True)
    try:
        assert rt.run_until_idle(60)
    finally:
        rt.stop()
    return rt


def test_a_handler_runs_in_its_own_process_with_lambda_s_context(clients: Clients, tmp_path: Path,
                                                                  sink: Path) -> None:
    rt = run(clients, tmp_path, "tests.process_handlers:record", batch_size=3, timeout_s=30)
    got = lines(sink)
    assert [s for g in got for s in g["seqs"]] == stream_seqs(clients, make_table(clients))
    assert [len(g["seqs"]) for g in got] == [3, 3, 1]
    assert {g["pid"] for g in got} != {os.getpid()} and len({g["pid"] for g in got}) == 1  # one warm process
    assert all(g["function"] == "proc" and 0 < g["remaining_ms"] <= 30_000 for g in got)
    assert rt.stats["proc"].records_succeeded == 7


def test_partial_batch_failures_come_back_from_the_process(clients: Clients, tmp_path: Path, sink: Path) -> None:
    rt = run(clients, tmp_path, "tests.process_handlers:fail_first_seen", batch_size=7,
             report_batch_item_failures=True)
    seqs = stream_seqs(clients, make_table(clients))
    assert [g["seqs"] for g in lines(sink)] == [seqs, seqs[2:]]  # resumed at the reported record
    assert rt.stats["proc"].retries == 1 and rt.stats["proc"].records_succeeded == 7


def test_a_handler_past_its_time_limit_has_its_process_killed_and_the_batch_retried(
        clients: Clients, tmp_path: Path, sink: Path) -> None:
    rt = run(clients, tmp_path, "tests.process_handlers:hang_once", batch_size=10, timeout_s=1.0)
    got = lines(sink)
    seqs = stream_seqs(clients, make_table(clients))
    assert [(g["note"], g["seqs"]) for g in got] == [("hanging", seqs), ("", seqs)]
    assert got[0]["pid"] != got[1]["pid"]  # a fresh process: the hung one was killed
    with pytest.raises(ProcessLookupError):
        os.kill(got[0]["pid"], 0)
    assert rt.stats["proc"].timeouts == 1 and rt.stats["proc"].records_succeeded == 7


def test_a_process_that_dies_mid_invocation_is_that_invocation_s_error(clients: Clients, tmp_path: Path,
                                                                        sink: Path) -> None:
    rt = run(clients, tmp_path, "tests.process_handlers:exit_once", batch_size=10)
    assert [g["seqs"] for g in lines(sink)] == [stream_seqs(clients, make_table(clients))]
    assert rt.stats["proc"].function_errors == 1 and rt.stats["proc"].records_succeeded == 7
    assert "exited (code 3)" in (rt.status()[0]["last_error"] or {}).get("error", "")


def test_a_missing_handler_module_is_refused_at_start(clients: Clients, tmp_path: Path) -> None:
    from lake.errors import ConfigError

    arn = make_table(clients)
    rt = LocalRuntime(clients, [EventSourceMapping("tests.no_such_module:handler", arn, name="proc")],
                      tmp_path / "state", handler_processes=True)
    with pytest.raises(ConfigError, match="no_such_module"):
        rt.start()
    rt.stop()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()  # a zombie has ended; only its exit status is left
    except FileNotFoundError:
        return False


def test_a_worker_process_mid_invocation_ends_when_lake_up_is_killed(tmp_path: Path, sink: Path) -> None:
    # an orphan mid-invocation would go on writing into the next lake up on the same port
    script = ("import json, time\n"
              "from lake.local.runtime.process import ProcessHandler\n"
              "h = ProcessHandler('tests.process_handlers:sleep_then_record')\n"
              "assert h._start() is None\n"
              "ctx = {'function_name': 'f', 'invoked_function_arn': 'arn:f', 'memory_limit_in_mb': 128,\n"
              "       'log_stream_name': 's', 'aws_request_id': 'r', 'timeout_s': 30}\n"
              "rec = {'dynamodb': {'SequenceNumber': '1'}}\n"
              "h._conn.send_bytes(json.dumps(ctx).encode() + b'\\n' + json.dumps([rec]).encode())\n"
              "print(h._proc.pid, flush=True)\n"
              "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)  # the handler is asleep mid-invocation
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    time.sleep(2.5)  # past the handler's sleep: had it lived on, it would have written by now
    assert not sink.exists() or sink.read_text() == ""
