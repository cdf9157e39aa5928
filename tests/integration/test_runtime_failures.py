"""Failure semantics: retries, destination, record age, bisect + partial failures, timeouts."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from lake.aws.clients import Clients
from lake.aws.provision import ensure_kinesis
from lake.local.runtime import EventSourceMapping, LocalRuntime
from lake.local.runtime.events import iso_millis
from tests.clock import ManualClock
from tests.runtime_helpers import (
    Recorder,
    drain_queue,
    make_queue,
    make_table,
    put_items,
    seq_of,
    stream_arrivals,
    stream_seqs,
)


def always_fail(event: dict[str, Any]) -> Any:
    raise RuntimeError("boom")


def test_retries_exhausted_send_coordinates_records_and_reason_to_the_destination(
        clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    url, qarn = make_queue(clients)
    put_items(clients, 3)
    rec = Recorder(always_fail)
    m = EventSourceMapping(rec, arn, maximum_retry_attempts=2, on_failure_destination=qarn, name="fails")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert len(rec.events) == 3  # the first try and two retries
    [msg] = drain_queue(clients, url, expect=1)
    seqs = stream_seqs(clients, arn)
    info = msg["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == seqs[0] and info["endSequenceNumber"] == seqs[-1]
    assert info["batchSize"] == 3 and info["streamArn"] == arn and info["shardId"].startswith("shardId-")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    ctx = msg["requestContext"]
    assert ctx["condition"] == "RetryAttemptsExhausted" and ctx["approximateInvokeCount"] == 3
    assert ctx["functionArn"].endswith(":function:fails")
    assert msg["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert msg["version"] == "1.0" and msg["timestamp"].endswith("Z")
    assert msg["records"] == rec.events[0]["Records"]  # the full records, to re-drive from the message
    assert "RuntimeError: boom" in msg["reason"]
    stats = rt.stats["fails"]
    assert stats.retries == 2 and stats.records_to_destination == 3 and stats.destination_messages == 1


def test_failure_without_destination_is_counted_not_silent(clients: Clients, tmp_path: Path, caplog: Any) -> None:
    arn = make_table(clients)
    put_items(clients, 2)
    rec = Recorder(always_fail)
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, maximum_retry_attempts=0, name="nodest")], tmp_path,
                      poll_interval_s=0.01)
    with caplog.at_level("ERROR", logger="lake.local.runtime"):
        try:
            assert rt.run_until_idle(5)
        finally:
            rt.stop()
    assert rt.stats["nodest"].records_discarded == 2
    assert any("DISCARDED" in r.getMessage() for r in caplog.records)


def test_record_age_exceeded(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    url, _ = make_queue(clients)
    put_items(clients, 2)
    # The runtime's clock reads a millisecond past the age limit of both records.
    clock = ManualClock(start=stream_arrivals(clients, arn)[-1] + 1.001)
    rec = Recorder()
    m = EventSourceMapping(rec, arn, maximum_record_age_s=1, on_failure_destination=url, name="aged")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01, clock=clock)
    try:
        assert rt.run_until_idle(5)
        put_items(clients, 1, start=2)  # a fresh record still flows
        assert stream_arrivals(clients, arn)[2] > clock.now() - 1  # written later: under the limit
        assert rt.wait_idle(5)
    finally:
        rt.stop()
    [msg] = drain_queue(clients, url, expect=1)
    assert msg["requestContext"]["condition"] == "RecordAgeExceeded"
    assert msg["requestContext"]["approximateInvokeCount"] == 0
    assert msg["DDBStreamBatchInfo"]["batchSize"] == 2
    assert msg["timestamp"] == iso_millis(clock.now())  # stamped on the runtime's clock
    assert rec.delivered() == stream_seqs(clients, arn)[2:]
    assert rt.stats["aged"].records_expired == 2


def test_bisect_with_batch_item_failures_isolates_the_poison_record(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    url, qarn = make_queue(clients)
    put_items(clients, 10)
    poison = stream_seqs(clients, arn)[4]

    def reply(event: dict[str, Any]) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": seq_of(r)} for r in event["Records"]
                                      if seq_of(r) == poison]}

    rec = Recorder(reply)
    m = EventSourceMapping(rec, arn, batch_size=10, bisect_batch_on_function_error=True,
                           report_batch_item_failures=True, maximum_retry_attempts=1,
                           on_failure_destination=qarn, name="bisect")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(5)
        put_items(clients, 2, start=10)  # later records keep flowing
        assert rt.wait_idle(5)
    finally:
        rt.stop()
    seqs = stream_seqs(clients, arn)
    acknowledged = set()
    for batch in rec.batches:
        if poison not in batch:
            acknowledged.update(batch)
        else:
            acknowledged.update(batch[: batch.index(poison)])
    assert acknowledged == set(seqs) - {poison}
    [msg] = drain_queue(clients, url, expect=1)
    info = msg["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison and info["batchSize"] == 1
    assert info["shardId"].startswith("shardId-")
    assert rt.stats["bisect"].bisections >= 1 and rt.stats["bisect"].records_to_destination == 1
    assert rec.delivered()[-2:] == seqs[10:]  # the records written after the poison one flowed on


def test_handler_raising_on_a_poison_record_is_bisected_to_it(clients: Clients, tmp_path: Path) -> None:
    """Issue 2's acceptance: a handler that raises on one record; bisect + ReportBatchItemFailures."""
    arn = make_table(clients)
    url, qarn = make_queue(clients)
    put_items(clients, 16)
    poison = stream_seqs(clients, arn)[9]

    def reply(event: dict[str, Any]) -> Any:
        if any(seq_of(r) == poison for r in event["Records"]):
            raise ValueError("poison record")
        return {"batchItemFailures": []}

    rec = Recorder(reply)
    m = EventSourceMapping(rec, arn, batch_size=16, bisect_batch_on_function_error=True,
                           report_batch_item_failures=True, maximum_retry_attempts=2,
                           on_failure_destination=qarn, name="raiser")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(10)
        put_items(clients, 3, start=16)
        assert rt.wait_idle(10)
    finally:
        rt.stop()
    seqs = stream_seqs(clients, arn)
    succeeded = {s for b in rec.batches if poison not in b for s in b}
    assert succeeded == set(seqs) - {poison}  # every other record was delivered successfully
    [msg] = drain_queue(clients, url, expect=1)
    info = msg["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (poison, poison, 1)
    assert info["shardId"] == clients.dynamodbstreams.describe_stream(StreamArn=arn)[
        "StreamDescription"]["Shards"][0]["ShardId"]
    assert msg["responseContext"]["functionError"] == "Unhandled"
    assert rec.delivered()[-3:] == seqs[16:]  # later records of the shard kept flowing
    assert rt.stats["raiser"].records_to_destination == 1


def test_a_reply_without_batch_item_failures_is_a_success(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 3)
    rec = Recorder(lambda event: {"statusCode": 200})
    m = EventSourceMapping(rec, arn, report_batch_item_failures=True, name="plain")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert [len(b) for b in rec.batches] == [3] and rt.stats["plain"].records_succeeded == 3


def test_malformed_batch_response_fails_the_whole_batch(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    url, qarn = make_queue(clients)
    put_items(clients, 3)
    replies = iter([{"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, "nonsense",
                    {"batchItemFailures": [{"itemIdentifier": ""}]}])
    rec = Recorder(lambda event: next(replies))
    m = EventSourceMapping(rec, arn, report_batch_item_failures=True, maximum_retry_attempts=2,
                           on_failure_destination=qarn, name="malformed")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert [len(b) for b in rec.batches] == [3, 3, 3]
    [msg] = drain_queue(clients, url, expect=1)
    assert msg["DDBStreamBatchInfo"]["batchSize"] == 3
    assert "functionError" not in msg["responseContext"]


def test_partial_failure_resumes_at_the_lowest_failed_record(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 5)
    seqs = stream_seqs(clients, arn)
    calls = {"n": 0}

    def reply(event: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            return {"batchItemFailures": [{"itemIdentifier": seqs[3]}, {"itemIdentifier": seqs[2]}]}
        return {"batchItemFailures": []}

    rec = Recorder(reply)
    m = EventSourceMapping(rec, arn, report_batch_item_failures=True, name="partial")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert rec.batches == [seqs, seqs[2:]]
    assert rt.stats["partial"].records_succeeded == 5


def test_timeout_is_a_function_error(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    url, qarn = make_queue(clients)
    put_items(clients, 1)
    release = threading.Event()
    remaining: list[int] = []

    def stuck(event: dict[str, Any], context: Any) -> None:
        remaining.append(context.get_remaining_time_in_millis())
        release.wait(10)  # stuck until the test ends

    clock = ManualClock()
    m = EventSourceMapping(stuck, arn, timeout_s=0.25, maximum_retry_attempts=1, on_failure_destination=qarn,
                           name="slow")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01, clock=clock)
    try:
        rt.start()
        # Every wait on the clock here is meant to run out: each time limit, its grace, the retry pause.
        assert clock.drive(lambda: rt.stats["slow"].destination_messages == 1, step=0.25)
        assert rt.wait_idle(5)
    finally:
        release.set()
        rt.stop()
    assert rt.stats["slow"].timeouts == 2 and rt.stats["slow"].invocations == 2
    assert remaining == [250, 250]  # the clock stood still while the handler looked (0.25 s: exact in binary)
    [msg] = drain_queue(clients, url, expect=1)
    assert msg["responseContext"]["functionError"] == "Unhandled"
    assert msg["requestContext"]["approximateInvokeCount"] == 2


def test_unreachable_destination_holds_the_shard_instead_of_losing_records(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    url, qarn = make_queue(clients)

    def fail(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    clock = ManualClock()
    m = EventSourceMapping(fail, arn, maximum_retry_attempts=0, on_failure_destination=qarn, name="held")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.01, clock=clock)
    rt.start()
    try:
        clients.sqs.delete_queue(QueueUrl=url)  # the destination goes away
        put_items(clients, 2)
        # The first send failed: the shard waits 0.4 s of clock time before trying again.
        assert clock.until_waiting(within=0.4)
        stats = rt.stats["held"]
        assert stats.records_discarded == 0 and stats.records_to_destination == 0
        clients.sqs.create_queue(QueueName=url.rsplit("/", 1)[1])  # it comes back
        clock.advance(0.4)
        assert rt.wait_idle(10)
    finally:
        rt.stop()
    msgs = drain_queue(clients, url, expect=1)  # one batch, or two if the writes were read apart
    assert sum(m["DDBStreamBatchInfo"]["batchSize"] for m in msgs) == 2
    assert rt.stats["held"].records_to_destination == 2 and rt.stats["held"].records_discarded == 0


def test_wait_idle_waits_for_a_stream_fed_by_another_mapping(clients: Clients, tmp_path: Path) -> None:
    """DynamoDB → a handler that writes to Kinesis → a Kinesis mapping: idle means both drained."""
    arn = make_table(clients)
    karn, _ = ensure_kinesis(clients, "chain")

    def forward(event: dict[str, Any], context: Any) -> None:
        for r in event["Records"]:
            clients.kinesis.put_record(StreamName="chain", Data=json.dumps(r).encode(), PartitionKey=seq_of(r))

    sink = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(forward, arn, name="forward"),
                                EventSourceMapping(sink, karn, name="sink")], tmp_path, poll_interval_s=0.1)
    try:
        rt.start()
        for round_ in range(15):
            put_items(clients, 1, start=round_)
            assert rt.wait_idle(10)
            assert len(sink.delivered()) == round_ + 1, round_
    finally:
        rt.stop()
