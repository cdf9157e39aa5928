"""Each stream is read once for all its mappings (lake.local.runtime.feed), and each mapping keeps
its own position, batching, retries and checkpoints: one held by failures neither blocks nor
skips the others."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.local.runtime import EventSourceMapping, LocalRuntime
from lake.local.runtime import feed as feed_module
from tests.runtime_helpers import Recorder, make_kinesis, make_table, put_items, put_kinesis, stream_seqs


class GetRecordsCount:
    """Records returned by every GetRecords of ``client`` (each record should be fetched once)."""

    def __init__(self, client: Any, op: str = "GetRecords") -> None:
        self.calls = 0
        self.records = 0
        self.iterators = 0
        prefix = client.meta.service_model.endpoint_prefix
        client.meta.events.register(f"after-call.{prefix}.{op}", self._count)
        client.meta.events.register(f"after-call.{prefix}.GetShardIterator", self._iterator)

    def _count(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        self.records += len(parsed.get("Records") or parsed.get("LakeWireRecords") or [])

    def _iterator(self, **_: Any) -> None:
        self.iterators += 1


def test_two_mappings_of_one_stream_read_it_once(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 250)
    count = GetRecordsCount(clients.dynamodbstreams)
    a, b = Recorder(), Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(a, arn, batch_size=40, name="a"),
                                EventSourceMapping(b, arn, batch_size=100, name="b")], tmp_path,
                      poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(10)
        put_items(clients, 50, start=250)  # and what comes later, read once too
        assert rt.wait_idle(10)
    finally:
        rt.stop()
    read = (count.records, count.iterators, count.calls)
    seqs = stream_seqs(clients, arn)
    assert len(seqs) == 300
    assert a.delivered() == seqs and b.delivered() == seqs  # each its own batches, all in order
    assert max(len(x) for x in a.batches) == 40 and max(len(x) for x in b.batches) == 100
    # Every record came out of the stream once, for both mappings, through the feed's one iterator
    # (each mapping's iterators are positions in the feed).
    assert read[:2] == (300, 1), read
    checkpoints = {json.loads(p.read_text())["mapping"]: json.loads(p.read_text())["shards"]
                   for p in tmp_path.glob("*.json")}
    assert sorted(checkpoints) == sorted(m.mapping_id for m in rt.mappings)
    assert all(next(iter(c.values()))["seq"] == seqs[-1] for c in checkpoints.values())


def test_a_mapping_held_by_failures_neither_blocks_nor_skips_the_other(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 30)
    healthy = threading.Event()

    def reply(event: dict[str, Any]) -> Any:
        if not healthy.is_set():
            raise RuntimeError("S3 is down")
        return None

    stuck, fine = Recorder(reply), Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(stuck, arn, batch_size=10, name="stuck"),
                                EventSourceMapping(fine, arn, batch_size=10, name="fine")], tmp_path,
                      poll_interval_s=0.02, max_retry_backoff_s=0.05)
    try:
        rt.start()
        put_items(clients, 30, start=30)
        seqs = stream_seqs(clients, arn)
        for _ in range(200):
            if fine.delivered() == seqs:
                break
            healthy.wait(0.05)
        assert fine.delivered() == seqs  # all 60, while the other retries its first batch
        assert rt.stats["stuck"].records_succeeded == 0 and rt.stats["stuck"].retries >= 1
        healthy.set()
        assert rt.wait_idle(10)
    finally:
        rt.stop()
    # Once healthy, the stuck mapping delivered every record from where it was, in order, none skipped.
    succeeded = stuck.batches[-6:]
    assert [s for b in succeeded for s in b] == seqs
    assert rt.stats["stuck"].records_succeeded == 60 and rt.stats["fine"].records_succeeded == 60


def test_a_mapping_behind_what_the_feed_keeps_reads_the_stream_itself(clients: Clients, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "KEEP_READ", 0)
    monkeypatch.setattr(feed_module, "MAX_BUFFERED", 5)
    arn = make_kinesis(clients)
    put_kinesis(clients, 40)
    gate = threading.Event()

    def slow(event: dict[str, Any]) -> Any:
        gate.wait(10)  # holds its first batch while the other reads far ahead
        return None

    held, fast = Recorder(slow), Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(held, arn, batch_size=4, name="held"),
                                EventSourceMapping(fast, arn, batch_size=4, name="fast")], tmp_path,
                      poll_interval_s=0.02)
    try:
        rt.start()
        for _ in range(200):
            if len(fast.delivered()) == 40:
                break
            gate.wait(0.05)
        assert len(fast.delivered()) == 40
        gate.set()
        assert rt.wait_idle(10)
    finally:
        rt.stop()
    assert held.delivered() == fast.delivered()  # all, in order, the trimmed ones read directly
    assert [int(s) for s in held.delivered()] == sorted(int(s) for s in held.delivered())
