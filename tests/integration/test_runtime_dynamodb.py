"""The local runtime on DynamoDB Streams: event shape, batching, positions, filters, mappings."""

from __future__ import annotations

import base64
import time
from pathlib import Path

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from lake.aws.clients import Clients
from lake.local.runtime import EventSourceMapping, LocalRuntime
from tests.clock import ManualClock
from tests.runtime_helpers import HANDLED, Recorder, make_table, put_items, seq_of, stream_seqs


def test_event_shape_is_lambdas(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    clients.dynamodb.put_item(TableName="orders", Item={
        "pk": {"S": "a"}, "sk": {"S": "1"}, "blob": {"B": b"\x00\xff"},
        "nested": {"M": {"bs": {"BS": [b"x", b"y"]}, "l": {"L": [{"B": b"z"}, {"N": "1.50"}]}}},
    })
    clients.dynamodb.delete_item(TableName="orders", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, name="shape")], tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    records = [r for e in rec.events for r in e["Records"]]
    assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]
    first = records[0]
    assert first["eventVersion"] == "1.1" and first["eventSource"] == "aws:dynamodb"
    assert first["eventSourceARN"] == arn and first["awsRegion"] == "us-east-1"
    created = first["dynamodb"]["ApproximateCreationDateTime"]
    assert isinstance(created, int) and abs(created - time.time()) < 60
    image = first["dynamodb"]["NewImage"]
    assert image["blob"] == {"B": base64.b64encode(b"\x00\xff").decode()}
    assert image["nested"]["M"]["bs"]["BS"] == ["eA==", "eQ=="]
    assert image["nested"]["M"]["l"]["L"] == [{"B": "eg=="}, {"N": "1.50"}]
    assert records[1]["dynamodb"]["OldImage"]["blob"] == image["blob"]
    for event in rec.events:
        model = DynamoDBStreamModel(**event)
        assert model.Records[0].eventSourceARN == arn
    ctx = rec.contexts[0]
    assert ctx.function_name == "shape" and ctx.function_version == "$LATEST"
    assert ctx.invoked_function_arn.endswith(":function:shape") and ctx.memory_limit_in_mb == 128
    assert 0 < ctx.get_remaining_time_in_millis() <= 30_000 and ctx.aws_request_id
    assert ctx.log_group_name == "/aws/lambda/shape" and ctx.log_stream_name


def test_batch_size_and_order(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 7)
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, batch_size=3)], tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert [len(b) for b in rec.batches] == [3, 3, 1]
    assert rec.delivered() == stream_seqs(clients, arn)
    stats = rt.stats["Recorder"]
    assert stats.invocations == 3 and stats.records_succeeded == 7


def test_batching_window_gathers_records(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    rec = Recorder()
    clock = ManualClock()
    m = EventSourceMapping(rec, arn, batch_size=10, maximum_batching_window_s=1.0)
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.02, clock=clock)
    try:
        rt.start()
        assert rt.wait_idle(5)
        for i in range(4):  # trickled in over 0.8 s: within the window they make one batch
            put_items(clients, 1, start=i)
            clock.advance(0.2)
        assert not rt.wait_idle(0.2)  # records held, the window still open...
        assert rec.events == []  # ...and nothing invoked
        clock.advance(2.0)  # past the window, however late the first record was read
        assert rt.wait_idle(5)
    finally:
        rt.stop()
    assert [len(b) for b in rec.batches] == [4]


def test_no_batching_window_invokes_as_records_arrive(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, batch_size=10)], tmp_path, poll_interval_s=0.02)
    try:
        rt.start()
        assert rt.wait_idle(5)
        for i in range(3):
            put_items(clients, 1, start=i)
            assert rt.wait_idle(5)
    finally:
        rt.stop()
    assert [len(b) for b in rec.batches] == [1, 1, 1]


def test_latest_skips_existing_records(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 3)
    rec = Recorder()
    m = EventSourceMapping(rec, arn, starting_position="LATEST")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
        assert rec.delivered() == []
        put_items(clients, 2, start=3)
        assert rt.wait_idle(5)
    finally:
        rt.stop()
    assert rec.delivered() == stream_seqs(clients, arn)[3:]


def test_trim_horizon_reads_everything(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 3)
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, starting_position="TRIM_HORIZON")], tmp_path,
                      poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert rec.delivered() == stream_seqs(clients, arn)


def test_filter_criteria_skip_and_count_as_processed(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    for i in range(6):
        status = "shipped" if i % 2 else "pending"
        clients.dynamodb.put_item(TableName="orders",
                                  Item={"pk": {"S": f"o{i}"}, "sk": {"S": "0"}, "status": {"S": status}})
    rec = Recorder()
    pattern = '{"dynamodb": {"NewImage": {"status": {"S": ["shipped"]}}}, "eventName": ["INSERT"]}'
    m = EventSourceMapping(rec, arn, filter_criteria=(pattern,), name="shipped")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    statuses = [r["dynamodb"]["NewImage"]["status"]["S"] for e in rec.events for r in e["Records"]]
    assert statuses == ["shipped"] * 3
    assert rt.stats["shipped"].records_filtered == 3
    # filtered records count as processed: the checkpoint is past the last record
    saved = next(tmp_path.glob("shipped-*.json")).read_text()
    assert stream_seqs(clients, arn)[-1] in saved


def test_two_mappings_on_one_stream_keep_their_own_positions(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 4)
    fast, slow = Recorder(), Recorder()
    maps = [EventSourceMapping(fast, arn, batch_size=4, name="fast"),
            EventSourceMapping(slow, arn, batch_size=1, name="slow")]
    rt = LocalRuntime(clients, maps, tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    seqs = stream_seqs(clients, arn)
    assert fast.delivered() == seqs and slow.delivered() == seqs
    assert len(fast.events) == 1 and len(slow.events) == 4
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_handler_by_module_path_and_clear_errors(clients: Clients, tmp_path: Path) -> None:
    import pytest

    from lake.errors import ConfigError, NotFoundError

    arn = make_table(clients)
    rt = LocalRuntime(clients, [EventSourceMapping("no_such_module_xyz:handler", arn)], tmp_path)
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        rt.start()
    missing = arn.replace("table/orders/", "table/nope/")
    rt = LocalRuntime(clients, [EventSourceMapping("json:dumps", missing)], tmp_path)
    with pytest.raises(NotFoundError, match="nope"):
        rt.start()
    put_items(clients, 2)
    HANDLED.clear()
    rt = LocalRuntime(clients, [EventSourceMapping("tests.runtime_helpers:module_handler", arn)], tmp_path,
                      poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert [seq_of(r) for e in HANDLED for r in e["Records"]] == stream_seqs(clients, arn)
    assert rt.stats["runtime_helpers"].invocations == 1


def test_a_stopped_runtime_starts_again_from_its_checkpoint(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, name="again")], tmp_path, poll_interval_s=0.01)
    put_items(clients, 2)
    assert rt.run_until_idle(5)
    rt.stop()
    put_items(clients, 2, start=2)
    assert rt.run_until_idle(5)  # the same object, started again
    rt.stop()
    assert rec.delivered() == stream_seqs(clients, arn)  # each record once, in order
    assert rt.stats["again"].records_delivered == 4
