"""Issue 11, `lake redrive`: dead-lettered records sent back through their stage once the cause is
fixed, from the message itself, the raw zone or the stream; a message is deleted only once its
records succeeded; the records land in the raw and curated zones exactly once.

(A poison record re-driven from its own message is not delivered either: the fan-out quarantines
it as malformed, the archiver fails on it. The injected poison is a corruption in transit: once
the injection stops, the records read again from the stream go through.)"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from lake.aws.clients import Clients
from lake.aws.provision import provision
from lake.cli import main
from lake.errors import ConfigError
from lake.invocation import resolve_handler
from lake.local.runtime import EventSourceMapping, LocalRuntime
from lake.local.status import queue_depth
from lake.local.up import EmbeddedLake, table_mappings
from lake.redrive import RedriveOptions, parse_message, redrive
from lake.redrive.invokers import LambdaInvoker
from lake.settings import Settings
from tests.integration.test_faults import curated_event_ids, raw_event_ids, source_event_ids
from tests.runtime_helpers import drain_queue, put_items

# AWS's on-failure record for a DynamoDB stream source (coordinates only), as documented.
AWS_MESSAGE = {
    "requestContext": {"requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
                       "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
                       "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "version": "1.0", "timestamp": "2019-11-14T00:13:49.717Z",
    "DDBStreamBatchInfo": {"shardId": "shardId-00000001573689847184-864758bb",
                           "startSequenceNumber": "800000000003126276362",
                           "endSequenceNumber": "800000000003126276362",
                           "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
                           "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z", "batchSize": 1,
                           "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/"
                                        "2019-11-14T00:04:06.388"},
}


def test_an_aws_on_failure_message_is_read_as_coordinates() -> None:
    dead = parse_message(json.dumps(AWS_MESSAGE))
    assert dead.function == "myfunction" and dead.kind == "dynamodb" and dead.records is None
    assert (dead.shard_id, dead.start_sequence, dead.end_sequence, dead.batch_size) == (
        "shardId-00000001573689847184-864758bb", "800000000003126276362", "800000000003126276362", 1)
    assert dead.stream_arn.endswith("stream/2019-11-14T00:04:06.388") and dead.condition == "RetryAttemptsExhausted"


def pipeline(settings: Settings, clients: Clients, broken: dict[str, set[str]]) -> LocalRuntime:
    """The lake's three mappings as `lake up` wires them, except that a stage fails the records of
    ``broken[stage]``'s keys (the cause, fixed later) and gives up at once (no retries)."""
    prov = provision(settings, clients)

    def breaking(stage: str, spec: str) -> Any:
        real = resolve_handler(spec)

        def handler(event: dict[str, Any], context: Any) -> Any:
            if any(r["dynamodb"]["Keys"]["pk"]["S"] in broken.get(stage, set()) for r in event["Records"]):
                raise RuntimeError(f"{stage}: the sink is down")
            return real(event, context)
        return handler

    mappings = [dataclasses.replace(m, function=breaking(str(m.name), str(m.function)), maximum_retry_attempts=0)
                for m in table_mappings("orders", prov.stream_arns["orders"], prov.dlq_arn, qualify=False)]
    mappings.append(EventSourceMapping("lambdas.parquet_consumer:lambda_handler", prov.kinesis_arn, batch_size=500,
                                       bisect_batch_on_function_error=True, report_batch_item_failures=True,
                                       on_failure_destination=prov.dlq_arn, name="parquet-consumer"))
    return LocalRuntime(clients, mappings, Path(settings.state_dir) / "runtime", poll_interval_s=0.01)


def sink_still_down(event: dict[str, Any], context: Any) -> Any:
    raise RuntimeError("the sink is still down")


def test_coordinates_only_messages_are_redriven_from_the_raw_zone_or_the_stream_exactly_once(
        settings: Settings, clients: Clients) -> None:
    broken = {"stream-archiver": {"item-0003", "item-0007"}, "fanout": {"item-0005"}}
    rt = pipeline(settings, clients, broken)
    try:
        put_items(clients, 10)
        assert rt.run_until_idle(60)
        dlq = clients.sqs.get_queue_url(QueueName=settings.dlq)["QueueUrl"]
        dead = drain_queue(clients, dlq, expect=3)
        assert sorted(m["requestContext"]["functionArn"].rsplit(":", 1)[-1] for m in dead) == [
            "fanout", "stream-archiver", "stream-archiver"]
        for m in dead:  # as AWS sends them: coordinates, no records
            clients.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(
                {k: v for k, v in m.items() if k not in ("records", "reason")}))
        down = "tests.integration.test_redrive:sink_still_down"  # not fixed yet
        options = RedriveOptions(backoff_s=0.01, handlers=(("stream-archiver", down), ("fanout", down)))
        still = redrive(settings, options, clients=clients)
        assert not still.ok and still.totals().failing == 3 and still.totals().deleted == 0
        assert queue_depth(clients, dlq) == 3  # a message goes only once its records succeeded
        broken.clear()  # the cause is fixed
        report = redrive(settings, RedriveOptions(backoff_s=0.01), clients=clients)
        assert rt.wait_idle(60)
        source = source_event_ids(clients, rt.mappings[0].event_source_arn)
        raw = raw_event_ids(settings, clients)
        curated = curated_event_ids(settings, clients)
    finally:
        rt.stop()
    archiver, fanout = report.functions["stream-archiver"], report.functions["fanout"]
    assert (archiver.messages, archiver.records, archiver.succeeded, archiver.failing) == (2, 2, 2, 0)
    assert archiver.deleted == 2
    assert archiver.sources == {"stream": 2}  # not archived: read again from the stream
    assert (fanout.messages, fanout.succeeded, fanout.deleted) == (1, 1, 1) and fanout.sources == {"raw": 1}
    assert sorted(raw) == sorted(source)  # each change archived, once
    assert set(curated) == set(source) and max(curated.values()) == 1
    assert queue_depth(clients, dlq) == 0 and report.ok


def test_poison_records_are_redriven_from_the_stream_once_the_cause_is_fixed(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = settings.replace(state_dir=str(tmp_path / "state"))
    with EmbeddedLake(s, port=0, ttl_interval_s=None, poll_interval_s=0.01, status_interval_s=None,
                      faults="poison=0.05,seed=9") as lake:
        assert lake.clients is not None and lake.provisioned is not None and lake.faults is not None
        clients, dlq = lake.clients, lake.provisioned.dlq_url
        put_items(clients, 200)
        assert lake.wait_idle(60)
        poisoned = set(lake.faults.poisoned)
        assert poisoned and queue_depth(clients, dlq) == 2 * len(poisoned)
        cli = ["redrive", "--endpoint-url", str(lake.settings.endpoint_url), "--state-dir", s.state_dir]

        assert main([*cli, "--dry-run", "--from", "stream"]) == 0
        out = capsys.readouterr().out
        assert f"dry run: {2 * len(poisoned)} message(s)" in out and "nothing sent or deleted" in out
        assert queue_depth(clients, dlq) == 2 * len(poisoned)

        lake.faults.disarm()  # the cause is fixed: the stream delivers the records as they are
        assert main([*cli, "--json"]) == 0  # auto: a PoisonRecord's records are read again from the stream
        report = json.loads(capsys.readouterr().out)
        assert lake.wait_idle(60)  # the fan-out's re-driven records are curated by the running lake
        source = source_event_ids(clients, lake.provisioned.stream_arns["orders"])
        raw = raw_event_ids(s, clients)
        curated = curated_event_ids(s, clients)
        depth = queue_depth(clients, dlq)
    by_function = {f["function"]: f for f in report["functions"]}
    for name in ("stream-archiver", "fanout"):
        f = by_function[name]
        assert (f["messages"], f["records"], f["succeeded"], f["failing"], f["deleted"]) == (
            len(poisoned), len(poisoned), len(poisoned), 0, len(poisoned))
        assert f["sources"] == {"stream": len(poisoned)}
    assert sorted(raw) == sorted(source) and len(source) == 200  # the poisoned ones too, once
    assert set(curated) == set(source) and max(curated.values()) == 1
    assert depth == 0


def test_redrive_on_aws_asks_first() -> None:
    aws = Settings.resolve({"region": "us-east-1"}, environ={}, config_path=None)
    assert not aws.is_local
    asked: list[str] = []

    def no(message: str) -> bool:
        asked.append(message)
        return False

    with pytest.raises(ConfigError, match=r"refusing: redrive would invoke .* pass --yes"):
        redrive(aws, RedriveOptions(confirm=no))
    assert asked and "real AWS (us-east-1)" in asked[0]


def test_on_aws_the_function_is_invoked_and_its_reply_read_with_the_lambda_contract() -> None:
    import boto3

    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    records = [{"dynamodb": {"SequenceNumber": "1"}}, {"dynamodb": {"SequenceNumber": "2"}}]
    arn = "arn:aws:lambda:us-east-1:123456789012:function:stream-archiver"
    payload = json.dumps({"Records": records}, separators=(",", ":")).encode()
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": _body(b'{"batchItemFailures":'
                                                                         b'[{"itemIdentifier":"2"}]}')},
                          {"FunctionName": arn, "InvocationType": "RequestResponse", "Payload": payload})
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": _body(b'{"errorMessage":"boom"}')},
                          {"FunctionName": arn, "InvocationType": "RequestResponse", "Payload": payload})
        invoker = LambdaInvoker(client)
        partial = invoker.invoke(arn, "stream-archiver", records)
        failed = invoker.invoke(arn, "stream-archiver", records)
    assert partial.resume_index(["1", "2"]) == 1
    assert failed.resume_index(["1", "2"]) == 0 and "boom" in (failed.error or "")


def _body(data: bytes) -> Any:
    import io

    from botocore.response import StreamingBody

    return StreamingBody(io.BytesIO(data), len(data))


def test_messages_that_are_not_on_failure_messages_are_left_alone(settings: Settings, clients: Clients) -> None:
    prov = provision(settings, clients)
    clients.sqs.send_message(QueueUrl=prov.dlq_url, MessageBody="not json")
    report = redrive(settings, clients=clients)
    assert report.unreadable == 1 and report.ok and queue_depth(clients, prov.dlq_url) == 1
    assert report.totals().messages == 0 and report.to_dict()["unreadable"] == 1


def test_a_kinesis_batch_is_read_again_from_its_stream_as_lambda_delivers_it(clients: Clients) -> None:
    from lake.redrive.message import DeadLetter
    from lake.redrive.sources import Unavailable, from_stream
    from tests.runtime_helpers import make_kinesis, put_kinesis

    arn = make_kinesis(clients, "redrive-src")
    seqs = put_kinesis(clients, 4, stream="redrive-src")
    shard = clients.kinesis.list_shards(StreamName="redrive-src")["Shards"][0]["ShardId"]
    dead = DeadLetter("arn:aws:lambda:us-east-1:123456789012:function:parquet-consumer", "RetryAttemptsExhausted",
                      "kinesis", arn, shard, seqs[1], seqs[2], 2)
    records = from_stream(dead, clients, "us-east-1")
    assert [r["kinesis"]["sequenceNumber"] for r in records] == seqs[1:3]
    assert [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in records] == [{"i": 1}, {"i": 2}]
    assert records[0]["eventID"] == f"{shard}:{seqs[1]}" and records[0]["eventSourceARN"] == arn
    with pytest.raises(Unavailable, match="holds 1 of the batch's 3"):
        from_stream(dataclasses.replace(dead, start_sequence=seqs[3], end_sequence=str(int(seqs[3]) + 5),
                                        batch_size=3), clients, "us-east-1")


def test_a_record_kept_in_a_file_is_read_from_it(tmp_path: Path) -> None:
    from lake.redrive.sources import Unavailable, from_message

    record = {"eventID": "e1", "dynamodb": {"SequenceNumber": "7", "NewImage": {"blob": {"S": "y" * 300_000}}}}
    kept = tmp_path / "dead-letter" / "abc-7.json"
    kept.parent.mkdir()
    kept.write_text(json.dumps(record))
    message = dict(AWS_MESSAGE)
    message["recordFile"] = str(kept)  # as the local runtime writes a record too large for a message
    dead = parse_message(json.dumps(message))
    assert from_message(dead) == [record]
    kept.unlink()
    with pytest.raises(Unavailable, match="its record file"):
        from_message(dead)
