"""The local runtime on Kinesis: event shape, positions, shard lineage, restart from checkpoint."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel

from lake.aws.clients import Clients
from lake.local.runtime import EventSourceMapping, LocalRuntime
from tests.runtime_helpers import Recorder, make_kinesis, make_table, put_items, put_kinesis, stream_seqs


def payloads(rec: Recorder) -> list[int]:
    return [json.loads(base64.b64decode(r["kinesis"]["data"]))["i"] for e in rec.events for r in e["Records"]]


def test_kinesis_event_shape(clients: Clients, tmp_path: Path) -> None:
    arn = make_kinesis(clients)
    put_kinesis(clients, 3)
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, name="kin")], tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert payloads(rec) == [0, 1, 2]
    r = rec.events[0]["Records"][0]
    assert r["eventSource"] == "aws:kinesis" and r["eventName"] == "aws:kinesis:record"
    assert r["eventVersion"] == "1.0" and r["eventSourceARN"] == arn and r["awsRegion"] == "us-east-1"
    assert r["eventID"] == f"shardId-000000000000:{r['kinesis']['sequenceNumber']}"
    assert r["invokeIdentityArn"] == "arn:aws:iam::123456789012:role/lake-local"
    assert r["kinesis"]["kinesisSchemaVersion"] == "1.0" and r["kinesis"]["partitionKey"] == "k0"
    assert isinstance(r["kinesis"]["approximateArrivalTimestamp"], float)
    model = KinesisDataStreamModel(**rec.events[0])
    assert json.loads(model.Records[0].kinesis.data) == {"i": 0}


def test_kinesis_filter_on_decoded_data(clients: Clients, tmp_path: Path) -> None:
    arn = make_kinesis(clients)
    put_kinesis(clients, 6)
    rec = Recorder()
    m = EventSourceMapping(rec, arn, filter_criteria=({"data": {"i": [{"numeric": [">=", 4]}]}},), name="f")
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert payloads(rec) == [4, 5] and rt.stats["f"].records_filtered == 4


def test_at_timestamp(clients: Clients, tmp_path: Path) -> None:
    arn = make_kinesis(clients)
    put_kinesis(clients, 2)
    time.sleep(0.3)
    cut = datetime.now(UTC)
    time.sleep(0.3)
    put_kinesis(clients, 2, start=2)
    rec = Recorder()
    m = EventSourceMapping(rec, arn, starting_position="AT_TIMESTAMP", starting_position_timestamp=cut)
    rt = LocalRuntime(clients, [m], tmp_path, poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
    finally:
        rt.stop()
    assert payloads(rec) == [2, 3]


def test_latest_on_kinesis(clients: Clients, tmp_path: Path) -> None:
    arn = make_kinesis(clients, shards=2)
    put_kinesis(clients, 4)
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, starting_position="LATEST")], tmp_path,
                      poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(5)
        put_kinesis(clients, 4, start=4)
        assert rt.wait_idle(5)
    finally:
        rt.stop()
    assert sorted(payloads(rec)) == [4, 5, 6, 7]


def test_lineage_parent_before_children_after_split(clients: Clients, tmp_path: Path) -> None:
    # (the embedded Kinesis routes records put after the split to the open children, as AWS)
    arn = make_kinesis(clients)
    put_kinesis(clients, 6)
    [parent] = clients.kinesis.list_shards(StreamName="events")["Shards"]
    clients.kinesis.split_shard(StreamName="events", ShardToSplit=parent["ShardId"],
                                NewStartingHashKey=str(2**127))
    put_kinesis(clients, 6, start=6)
    shards = {s["ShardId"]: s for s in clients.kinesis.list_shards(StreamName="events")["Shards"]}
    assert len(shards) == 3 and "EndingSequenceNumber" in shards[parent["ShardId"]]["SequenceNumberRange"]
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, batch_size=2, name="lineage")], tmp_path,
                      poll_interval_s=0.02)
    try:
        assert rt.run_until_idle(8)
    finally:
        rt.stop()
    shard_of = [r["eventID"].split(":")[0] for e in rec.events for r in e["Records"]]
    assert sorted(payloads(rec)) == list(range(12))
    last_parent = max(i for i, s in enumerate(shard_of) if s == parent["ShardId"])
    first_child = min(i for i, s in enumerate(shard_of) if s != parent["ShardId"])
    assert last_parent < first_child
    assert payloads(rec)[: last_parent + 1] == list(range(6))
    saved = json.loads(next(tmp_path.glob("lineage-*.json")).read_text())
    assert saved["shards"][parent["ShardId"]]["done"] is True


def test_restart_resumes_from_the_checkpoint(clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 10)
    seqs = stream_seqs(clients, arn)
    block, third = threading.Event(), threading.Event()

    def reply(event: dict[str, Any]) -> None:
        if len(first.events) == 3:
            third.set()
            block.wait(10)

    first = Recorder(reply)
    m1 = EventSourceMapping(first, arn, batch_size=2, name="resume")
    rt1 = LocalRuntime(clients, [m1], tmp_path, poll_interval_s=0.02)
    rt1.start()
    try:
        assert third.wait(5)
        assert len(first.events) == 3
        rt1.stop(timeout=0.3)  # "killed" with the third batch in flight
        second = Recorder()
        rt2 = LocalRuntime(clients, [EventSourceMapping(second, arn, batch_size=2, name="resume")], tmp_path,
                           poll_interval_s=0.02)
        try:
            assert rt2.run_until_idle(5)
        finally:
            rt2.stop()
    finally:
        block.set()
    acknowledged = [s for b in first.batches[:2] for s in b]
    assert acknowledged == seqs[:4]
    assert second.delivered() == seqs[4:]  # redelivery only from the last checkpoint, nothing lost
