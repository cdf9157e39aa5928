"""Replay from a raw zone in (moto) S3, written by the real archiver Lambda handler, to every
target kind: python (Powertools consumer), lambda (local Invoke shim, and botocore Stubber),
kinesis, sqs (standard and FIFO), file; plus the ``lake replay`` CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket
from lake.cli import main
from lake.records import key_string, partition_key, table_name
from lake.replay import ReplayOptions, Selection, Target, replay
from lake.replay.handlers import rebuild_item
from lake.settings import Settings
from lambdas import stream_archiver
from tests import replay_handlers as h


@pytest.fixture
def archived(settings: Settings, clients: Clients) -> Iterator[list[dict[str, Any]]]:
    """Two tables' histories delivered to the archiver handler in Lambda batches, one batch twice."""
    ensure_bucket(clients, settings.bucket, settings.region)
    stream_archiver.configure(settings, clients)
    records = h.history("orders", items=6, changes=5, seed=21) + \
        h.history("users", items=3, changes=4, seed=22, start_seq=10**21)
    events = list(h.batches(records, 8))
    for event in [*events, events[1]]:  # at-least-once: a batch redelivered
        assert stream_archiver.lambda_handler(event, None) == {"batchItemFailures": []}
    yield records
    stream_archiver.configure(None, None)


def by_table(records: list[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    return [r for r in records if table_name(r) == table]


def test_python_target_powertools_consumer_from_s3(settings: Settings, archived: list[dict[str, Any]]) -> None:
    consumer = h.PowertoolsConsumer()
    report = replay(settings, Selection(tables=("orders",)), Target.python(consumer), ReplayOptions(batch_size=10))
    orders = by_table(archived, "orders")
    assert consumer.processed == [r["eventID"] for r in orders]
    assert report.ok and report.events_sent == len(orders) and report.batches == 3
    assert all(resp == {"batchItemFailures": []} for resp in consumer.responses)


def test_lambda_target_through_a_local_invoke_shim(settings: Settings, clients: Clients,
                                                   archived: list[dict[str, Any]]) -> None:
    # moto cannot run Lambda code without Docker: botocore's before-call hook answers Invoke
    # in-process, after botocore validated and serialised the real request.
    orders = by_table(archived, "orders")
    consumer = h.PowertoolsConsumer(fail={orders[4]["eventID"]: 1})
    payloads = h.install_invoke_shim(clients.client("lambda"), {"orders-consumer": consumer})
    report = replay(settings, Selection(tables=("orders",)), "lambda:orders-consumer",
                    ReplayOptions(batch_size=10, retry_backoff_s=0), clients=clients)
    assert report.ok and report.retries == 1 and report.events_sent == len(orders)
    for p in payloads:
        DynamoDBStreamModel.model_validate_json(p)
    # batch 1 failed at its 5th record: the retry started there (as Lambda's partial-batch retry)
    assert [len(orjson.loads(p)["Records"]) for p in payloads] == [10, 6, 10, 10]
    assert orjson.loads(payloads[1])["Records"] == orders[4:10]


def test_lambda_function_error_is_retried_then_reported(settings: Settings, clients: Clients,
                                                        archived: list[dict[str, Any]]) -> None:
    def crash(event: dict[str, Any], context: Any) -> None:
        raise ValueError("boom")

    payloads = h.install_invoke_shim(clients.client("lambda"), {"crash": crash})
    report = replay(settings, Selection(tables=("users",), event_names=frozenset({"INSERT"})), "lambda:crash",
                    ReplayOptions(batch_size=50, max_retries=2, retry_backoff_s=0), clients=clients)
    users = [r for r in by_table(archived, "users") if r["eventName"] == "INSERT"]
    assert len(payloads) == 3 and report.events_sent == 0
    assert [f.event_id for f in report.failures] == [r["eventID"] for r in users]
    assert report.failures[0].reason == "FunctionError Unhandled: ValueError: boom"


def test_lambda_target_with_botocore_stubber(settings: Settings, clients: Clients,
                                             archived: list[dict[str, Any]]) -> None:
    client = clients.client("lambda")
    users = by_table(archived, "users")

    def response(body: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(body).encode()
        return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(raw), len(raw))}

    failing_seq = users[2]["dynamodb"]["SequenceNumber"]
    with Stubber(client) as stub:
        expected = {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f",
                    "InvocationType": "RequestResponse", "Payload": ANY}
        stub.add_response("invoke", response({"batchItemFailures": [{"itemIdentifier": failing_seq}]}), expected)
        stub.add_response("invoke", response({"batchItemFailures": []}), expected)
        stub.add_response("invoke", {"StatusCode": 200}, expected)
        report = replay(settings, Selection(tables=("users",)),
                        "lambda:arn:aws:lambda:us-east-1:123456789012:function:f",
                        ReplayOptions(batch_size=8, retry_backoff_s=0), clients=clients)
        stub.assert_no_pending_responses()
    assert report.ok and report.events_sent == len(users) == 12 and report.retries == 1


def test_kinesis_target_keeps_per_item_order(settings: Settings, clients: Clients,
                                             archived: list[dict[str, Any]]) -> None:
    kin = clients.kinesis
    kin.create_stream(StreamName="replayed", ShardCount=2)
    kin.get_waiter("stream_exists").wait(StreamName="replayed", WaiterConfig={"Delay": 0.2})
    report = replay(settings, Selection(), "kinesis:replayed", ReplayOptions(batch_size=25), clients=clients)
    assert report.ok and report.events_sent == len(archived)
    got: list[dict[str, Any]] = []
    for shard in kin.list_shards(StreamName="replayed")["Shards"]:
        it = kin.get_shard_iterator(StreamName="replayed", ShardId=shard["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for r in kin.get_records(ShardIterator=it, Limit=1000)["Records"]:
            rec = orjson.loads(r["Data"])
            assert r["PartitionKey"] == partition_key(table_name(rec), rec["dynamodb"]["Keys"])
            got.append(rec)
    assert sorted(r["eventID"] for r in got) == sorted(r["eventID"] for r in archived)
    for key in {partition_key(table_name(r), r["dynamodb"]["Keys"]) for r in archived}:
        mine = [r for r in got if partition_key(table_name(r), r["dynamodb"]["Keys"]) == key]
        assert mine == [r for r in archived if partition_key(table_name(r), r["dynamodb"]["Keys"]) == key]


def _stream_records(kin: Any, stream: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for shard in kin.list_shards(StreamName=stream)["Shards"]:
        it = kin.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out += [orjson.loads(r["Data"]) for r in kin.get_records(ShardIterator=it, Limit=1000)["Records"]]
    return out


def _per_item(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in records:
        out.setdefault(partition_key(table_name(r), r["dynamodb"]["Keys"]), []).append(r["eventID"])
    return out


def _without_repeats(ids: list[str]) -> list[str]:
    return [x for i, x in enumerate(ids) if i == 0 or ids[i - 1] != x]


def test_kinesis_partial_failure_repeats_a_change_but_never_reorders_an_item(clients: Clients) -> None:
    from lake.fanout import FaultInjectingKinesis
    from lake.replay.source import Change
    from lake.replay.targets import KinesisSender

    kin = clients.kinesis
    kin.create_stream(StreamName="flaky", ShardCount=1)
    kin.get_waiter("stream_exists").wait(StreamName="flaky", WaiterConfig={"Delay": 0.2})
    # y1 y2 x1 x2 x3: the first wave puts y1 and x1; y2 then fails once.
    order = [("y", 1), ("y", 2), ("x", 1), ("x", 2), ("x", 3)]
    records = [h.make_record("orders", pk, "v0", "INSERT" if n == 1 else "MODIFY", 10**20 + i, h.T0 + i,
                             new={"n": {"N": str(n)}}) for i, (pk, n) in enumerate(order)]
    changes = [Change(0, int(r["dynamodb"]["SequenceNumber"]), r["eventID"], key_string(r["dynamodb"]["Keys"]),
                      r["eventName"], "orders", "s", "orders|s", orjson.dumps(r)) for r in records]
    y2 = records[1]["eventID"]
    failed: list[str] = []

    def fail_y2_once(call: int, position: int, entry: dict[str, Any]) -> bool:
        event_id = orjson.loads(entry["Data"])["eventID"]
        if event_id == y2 and not failed:
            failed.append(event_id)
            return True
        return False

    faulty = FaultInjectingKinesis(kin, fail=fail_y2_once)
    sender = KinesisSender(faulty, "flaky")
    result = sender.send(changes, b"")
    assert result.failed_index == 1 and "injected" in result.reason
    # everything before the failure was put; x2 was held back although its key was free
    assert [r["eventID"] for r in _stream_records(kin, "flaky")] == [records[0]["eventID"], records[2]["eventID"]]
    assert sender.send(changes[1:], b"").ok  # the engine's retry, from the failed change on
    got = _per_item(_stream_records(kin, "flaky"))
    assert got == {partition_key("orders", records[0]["dynamodb"]["Keys"]): [r["eventID"] for r in records[:2]],
                   partition_key("orders", records[2]["dynamodb"]["Keys"]):
                       [records[2]["eventID"]] + [r["eventID"] for r in records[2:]]}  # x1 twice, in a row


def test_kinesis_target_through_random_failures_keeps_every_item_in_order(
        settings: Settings, clients: Clients, archived: list[dict[str, Any]]) -> None:
    from lake.fanout import FaultInjectingKinesis
    from lake.replay.targets import KinesisSender

    kin = clients.kinesis
    kin.create_stream(StreamName="throttled", ShardCount=2)
    kin.get_waiter("stream_exists").wait(StreamName="throttled", WaiterConfig={"Delay": 0.2})
    faulty = FaultInjectingKinesis(kin, fail_prob=0.2, seed=5)
    report = replay(settings, Selection(), "kinesis:throttled", ReplayOptions(batch_size=25, max_retries=30,
                                                                               retry_backoff_s=0),
                    sender=KinesisSender(faulty, "throttled"))
    assert report.ok and report.retries > 0 and faulty.injected > 0
    got = _per_item(_stream_records(kin, "throttled"))
    expected = _per_item(archived)
    assert {k: _without_repeats(v) for k, v in got.items()} == expected  # repeats only, no gap, no reorder


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                   AttributeNames=["All"]).get("Messages", [])
        if not msgs:
            return out
        out.extend(msgs)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])


def test_sqs_fifo_target_one_message_per_change_in_item_order(settings: Settings, clients: Clients,
                                                              archived: list[dict[str, Any]]) -> None:
    url = clients.sqs.create_queue(QueueName="replayed.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    report = replay(settings, Selection(tables=("orders",)), "sqs:replayed.fifo", clients=clients)
    orders = by_table(archived, "orders")
    msgs = _drain(clients.sqs, url)
    assert report.ok and len(msgs) == len(orders)
    bodies = [orjson.loads(m["Body"]) for m in msgs]
    for r, m in zip(bodies, msgs, strict=True):
        assert m["Attributes"]["MessageGroupId"] == f"orders|{key_string(r['dynamodb']['Keys'])}"
        assert m["MessageAttributes"]["eventName"]["StringValue"] == r["eventName"]
    for key in {key_string(r["dynamodb"]["Keys"]) for r in orders}:
        assert [b for b in bodies if key_string(b["dynamodb"]["Keys"]) == key] == \
            [r for r in orders if key_string(r["dynamodb"]["Keys"]) == key]


def test_sqs_standard_queue_by_url(settings: Settings, clients: Clients, archived: list[dict[str, Any]]) -> None:
    url = clients.sqs.create_queue(QueueName="replayed")["QueueUrl"]
    report = replay(settings, Selection(tables=("users",)), f"sqs:{url}", clients=clients)
    bodies = [orjson.loads(m["Body"]) for m in _drain(clients.sqs, url)]
    assert report.ok and sorted(b["eventID"] for b in bodies) == sorted(
        r["eventID"] for r in by_table(archived, "users"))


def test_rebuild_item_equals_the_final_state(settings: Settings, clients: Clients,
                                             archived: list[dict[str, Any]]) -> None:
    orders = by_table(archived, "orders")
    key = key_string(orders[-1]["dynamodb"]["Keys"])
    mine = [r for r in orders if key_string(r["dynamodb"]["Keys"]) == key]
    item, report = rebuild_item(settings, "orders", key, clients=clients)
    expected = None if mine[-1]["eventName"] == "REMOVE" else mine[-1]["dynamodb"]["NewImage"]
    assert item == expected and report.events_sent == len(mine)


def test_cli_dry_run_json_and_file_target(settings: Settings, archived: list[dict[str, Any]], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "events"
    base = ["replay", f"file:{out}", "--endpoint-url", settings.endpoint_url or "", "--state-dir",
            settings.state_dir, "--table", "orders", "--event-name", "MODIFY", "--batch-size", "4"]
    assert main([*base, "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    modifies = [r for r in by_table(archived, "orders") if r["eventName"] == "MODIFY"]
    assert dry["dry_run"] and dry["events_selected"] == len(modifies) and dry["events_sent"] == 0
    assert not out.exists()
    assert main([*base, "--no-progress"]) == 0
    assert f"replayed {len(modifies)} event(s)" in capsys.readouterr().out
    sent = [r for f in sorted(out.iterdir()) for r in orjson.loads(f.read_bytes())["Records"]]
    assert sent == modifies


def test_cli_refuses_non_local_targets_without_yes(settings: Settings, archived: list[dict[str, Any]],
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # an endpoint that is not on this machine; stdin is not a TTY under pytest: refuse, send nothing
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    code = main(["replay", "lambda:prod-fn", "--endpoint-url", "https://lambda.example.com",
                 "--state-dir", settings.state_dir])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing" in err and "--yes" in err
