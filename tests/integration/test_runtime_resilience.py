"""Issue 11: poison records, crashed workers, outages, idle polling. Nothing is lost or silently stuck."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.local import embedded
from lake.local.runtime import EventSourceMapping, LocalRuntime
from lake.local.runtime.worker import ShardWorker
from lake.local.up import table_mappings
from tests.clock import ManualClock
from tests.runtime_helpers import Recorder, drain_queue, make_queue, make_table, put_items, stream_seqs


def nested_map(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "bottom"}
    for _ in range(depth):
        value = {"M": {"a": value}}
    return value


def test_a_record_the_runtime_cannot_serialise_goes_to_the_destination_and_the_shard_goes_on(
        clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    url, qarn = make_queue(clients)
    put_items(clients, 2)
    put_items(clients, 1, start=2, deep=nested_map(150))  # the embedded DynamoDB accepts it
    put_items(clients, 2, start=3)
    seqs = stream_seqs(clients, arn)
    rec = Recorder()
    m = EventSourceMapping(rec, arn, batch_size=10, on_failure_destination=qarn, name="poison")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(10)
        put_items(clients, 1, start=5)  # the shard is alive: later changes still flow
        assert rt.wait_idle(10)
    finally:
        rt.stop()
    assert rec.delivered() == [s for i, s in enumerate(stream_seqs(clients, arn)) if i != 2]
    [msg] = drain_queue(clients, url, expect=1)
    assert msg["requestContext"]["condition"] == "PoisonRecord"
    assert msg["DDBStreamBatchInfo"]["startSequenceNumber"] == seqs[2] and msg["DDBStreamBatchInfo"]["batchSize"] == 1
    assert "serialise" in msg["reason"]
    [record] = msg["records"]  # the full record, not just its coordinates
    assert record["dynamodb"]["SequenceNumber"] == seqs[2]
    assert record["dynamodb"]["NewImage"]["deep"] == nested_map(150)
    assert rt.stats["poison"].records_to_destination == 1 and rt.stats["poison"].worker_restarts == 0


def crash_every_worker_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first batch any shard worker processes raises, as a bug in the runtime would."""
    real = ShardWorker._process_next_batch
    crashes = []

    def crash_once(self: ShardWorker) -> None:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("a bug in the runtime")
        real(self)

    monkeypatch.setattr(ShardWorker, "_process_next_batch", crash_once)


def test_a_crashed_shard_worker_is_restarted_with_a_log_line_and_a_count(
        clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    arn = make_table(clients)
    put_items(clients, 3)
    crash_every_worker_once(monkeypatch)
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, name="crashy")], tmp_path, poll_interval_s=0.01)
    with caplog.at_level("ERROR", logger="lake.local.runtime"):
        try:
            assert rt.run_until_idle(10)
            put_items(clients, 1, start=3)
            assert rt.wait_idle(10)
        finally:
            rt.stop()
    assert rec.delivered() == stream_seqs(clients, arn)  # each once, in order, nothing skipped
    assert rt.stats["crashy"].worker_restarts == 1
    assert any("restart" in r.getMessage() for r in caplog.records)


def test_an_outage_longer_than_the_old_retry_budget_loses_nothing(clients: Clients, tmp_path: Path) -> None:
    """The lake's local mappings retry a failing batch until the record expires (AWS's
    defaults for stream sources), backing off up to 30 s: a 10-minute outage holds the shard."""
    arn = make_table(clients)
    url, qarn = make_queue(clients)
    put_items(clients, 4)
    outage = threading.Event()
    outage.set()
    clock = ManualClock()
    invoked_at: list[float] = []

    def reply(event: dict[str, Any]) -> Any:
        invoked_at.append(clock.monotonic())
        if outage.is_set():
            raise ConnectionError("S3 is unavailable")
        return None

    rec = Recorder(reply)
    archiver = table_mappings("orders", arn, qarn)[0]
    assert archiver.maximum_retry_attempts == -1 and archiver.maximum_record_age_s == -1
    m = dataclasses.replace(archiver, function=rec, name="outage")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01, clock=clock)
    rt.start()
    try:
        while clock.monotonic() < 600:  # ten minutes of mapping time
            # Only the retry pause runs out; a handler's time limit (120 s) never does.
            assert clock.until_waiting(1, within=30 + 1e-6)
            clock.advance(min(w for w in clock.waiting() if w <= 30 + 1e-6))
        outage.clear()
        assert clock.drive(lambda: rt.stats["outage"].records_succeeded == 4, step=30)
        assert rt.wait_idle(10)
    finally:
        rt.stop()
    assert drain_queue(clients, url, timeout=0.5) == []
    assert rt.stats["outage"].records_to_destination == 0
    gaps = [b - a for a, b in itertools.pairwise(invoked_at)]
    assert 20 <= max(gaps) <= 30 + 1e-6  # backed off, capped at 30 s
    assert len(invoked_at) < 60


def test_idle_shards_back_off_and_shards_are_not_listed_on_every_poll(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    calls: dict[str, int] = {}

    def count(model: Any, **kwargs: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1

    clients.dynamodbstreams.meta.events.register("before-call.dynamodbstreams.*", count)
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, name="idle")], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(10)
        time.sleep(1.0)  # settle into idle
        calls.clear()
        time.sleep(2.0)
        idle_calls = dict(calls)
        t0 = time.monotonic()
        put_items(clients, 1)
        deadline = time.monotonic() + 5
        while not rec.events and time.monotonic() < deadline:
            time.sleep(0.005)
        latency = time.monotonic() - t0
    finally:
        rt.stop()
    assert idle_calls.get("GetRecords", 0) <= 6  # ~1 read a second once idle, not 100
    assert idle_calls.get("DescribeStream", 0) <= 1  # discovery on a timer, not on every pass
    assert rec.events and latency < 1.5  # the first record after idle still arrives promptly


def test_dead_letters_too_large_for_one_message_are_split_or_kept_in_a_file(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    url, qarn = make_queue(clients)
    put_items(clients, 3, blob={"S": "x" * 120_000})  # three records: too large together for one message
    put_items(clients, 1, start=3, blob={"S": "y" * 300_000})  # too large alone for any message
    seqs = stream_seqs(clients, arn)

    def fail(event: dict[str, Any]) -> Any:
        raise RuntimeError("nope")

    m = EventSourceMapping(Recorder(fail), arn, batch_size=10, maximum_retry_attempts=0,
                           on_failure_destination=qarn, name="big")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(10)
    finally:
        rt.stop()
    msgs = drain_queue(clients, url, expect=3)
    carried = [r["dynamodb"]["SequenceNumber"] for msg in msgs for r in msg.get("records", [])]
    spilled = [msg for msg in msgs if "recordFile" in msg]
    assert len(msgs) >= 3 and len(spilled) == 1
    [big] = spilled
    assert Path(big["recordFile"]).is_file() and Path(big["recordFile"]).is_relative_to(tmp_path)
    kept = json.loads(Path(big["recordFile"]).read_text())
    assert kept["dynamodb"]["NewImage"]["blob"]["S"] == "y" * 300_000
    assert sorted([*carried, kept["dynamodb"]["SequenceNumber"]]) == sorted(seqs)
    assert all("nope" in msg["reason"] for msg in msgs)
    assert rt.stats["big"].records_to_destination == 4


def test_a_worker_that_crashes_before_its_first_checkpoint_resumes_at_its_first_pending_record(
        clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = make_table(clients)
    crash_every_worker_once(monkeypatch)
    rec = Recorder()
    m = EventSourceMapping(rec, arn, starting_position="LATEST", name="latest")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(10)
        put_items(clients, 3)
        assert rt.wait_idle(10)
    finally:
        rt.stop()
    assert rec.delivered() == stream_seqs(clients, arn)  # LATEST again would have skipped them
    assert rt.stats["latest"].worker_restarts == 1


def test_a_checkpoint_past_the_streams_retention_reads_on_from_trim_horizon(
        clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # lake up stopped for more than a day: the records after its checkpoint were trimmed away
    # (as DynamoDB Streams drops them after 24 h); asking for that position forever would stall
    # the shard, so the mapping goes on from the oldest record kept and says what was lost
    now = [time.time()]
    monkeypatch.setattr(embedded, "stream_now", lambda: now[0])
    arn = make_table(clients)
    put_items(clients, 1)
    first = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(first, arn, name="late")], tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    put_items(clients, 1, start=1)  # written while the runtime was stopped
    now[0] += 25 * 3600
    put_items(clients, 1, start=2)  # its write trims the two older records
    second = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(second, arn, name="late")], tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
        status = rt.status()
    finally:
        rt.stop()
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for e in second.events for r in e["Records"]] == ["item-0002"]
    assert "retention" in json.dumps(status)
