"""Issue 11, fault injection as a feature: `lake up --faults SPEC` (lake/local/faults.py).

Each fault fires at its rate (seeded, reproducible), is counted, and hits the lake's own
pipeline only; the pipeline under every fault at once loses nothing; poison records end
in the dead-letter queue with their record and reason.
"""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lake.aws.clients import Clients
from lake.cli import build_parser
from lake.errors import ConfigError
from lake.local.embedded import EmbeddedAWS
from lake.local.faults import (
    EXEMPT_APP_ID,
    POISON_ATTRIBUTE,
    FaultInjector,
    FaultSpec,
    faults_path,
    install,
    middleware,
)
from lake.local.runtime import EventSourceMapping, LocalRuntime
from lake.local.up import EmbeddedLake
from lake.query.local import LocalEngine
from lake.replay.selection import Selection
from lake.replay.source import iter_changes, select_objects
from lake.settings import Settings
from tests.runtime_helpers import Recorder, drain_queue, make_table, put_items, stream_seqs


def within(count: int, n: int, rate: float, sigmas: float = 4.0) -> bool:
    """``count`` successes of ``n`` draws is a plausible outcome of ``rate`` (binomial, ±4σ)."""
    sd = math.sqrt(n * rate * (1 - rate))
    return abs(count - n * rate) <= sigmas * sd + 1


# -- the spec ------------------------------------------------------------------------------------

def test_a_spec_names_each_fault_with_a_rate_and_a_seed() -> None:
    spec = FaultSpec.parse("s3.5xx=0.02, s3.slowdown=1%,conn.reset=0.005,kinesis.partial=0.05,"
                           "kinesis.throttle=0.02,handler.error=0.01,handler.crash=0.01,poison=0.001,seed=7")
    assert spec.seed == 7 and spec.rate("s3.slowdown") == pytest.approx(0.01) and spec.rate("poison") == 0.001
    assert FaultSpec.parse(spec.render()) == spec
    assert FaultSpec.parse("s3.5xx=0.1").seed == 0


@pytest.mark.parametrize("text, message", [
    ("", "empty spec"),
    ("s3.500=0.1", "unknown fault 's3.500' (did you mean s3.5xx?)"),
    ("s3.5xx", "is not name=value"),
    ("s3.5xx=lots", "the rate is not a number"),
    ("s3.5xx=1.5", "a rate is a probability between 0 and 1"),
    ("s3.5xx=-0.1", "a rate is a probability"),
    ("s3.5xx=0.1,s3.5xx=0.2", "s3.5xx given twice"),
    ("seed=abc", "seed 'abc' is not an integer"),
    ("s3.5xx=0.6,s3.slowdown=0.5", "must add up to at most 1"),
])
def test_a_bad_spec_is_refused_with_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="--faults: .*" if message != "empty spec" else "empty spec") as e:
        FaultSpec.parse(text)
    assert message in str(e.value)


def test_lake_up_refuses_a_bad_spec_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["up", "--faults", "kinesis.partal=0.1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --faults: unknown fault 'kinesis.partal' (did you mean kinesis.partial?)" in err
    args = build_parser().parse_args(["up", "--faults", "poison=0.01,seed=3"])
    assert args.faults == FaultSpec({"poison": 0.01}, 3)


# -- server-side faults at their rates -----------------------------------------------------------

@pytest.fixture
def faulty(settings: Settings) -> Iterator[tuple[EmbeddedAWS, FaultInjector]]:
    """A second embedded AWS (same moto backends) behind a fault middleware, disarmed."""
    injector = FaultInjector("s3.5xx=0.1")
    aws = EmbeddedAWS(port=0, wrap=middleware(injector))
    aws.start()
    yield aws, injector
    aws.stop()


def client(aws: EmbeddedAWS, service: str, app_id: str | None = None) -> Any:
    """A client that never retries, so each fault shows."""
    return boto3.client(service, endpoint_url=aws.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1}, user_agent_appid=app_id))


def outcome(call: Any) -> str:
    try:
        call()
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    except BotoCoreError as e:
        return type(e).__name__
    return "ok"


def test_s3_faults_fire_at_their_rates_and_a_failed_put_writes_nothing(
        faulty: tuple[EmbeddedAWS, FaultInjector]) -> None:
    aws, injector = faulty
    injector.spec = FaultSpec.parse("s3.5xx=0.1,s3.slowdown=0.05,conn.reset=0.05,conn.drop=0.03,seed=11")
    s3 = client(aws, "s3")
    s3.create_bucket(Bucket="faulty")
    injector.arm()
    n = 600
    outcomes = [outcome(lambda i=i: s3.put_object(Bucket="faulty", Key=f"k{i}", Body=b"x" * 200)) for i in range(n)]
    puts = dict(injector.injected)
    reads = [outcome(lambda i=i: s3.get_object(Bucket="faulty", Key=f"k{i}")["Body"].read()) for i in range(200)]
    injector.disarm()
    seen = collections.Counter(outcomes)
    assert seen["InternalError"] == puts["s3.5xx"] and within(seen["InternalError"], n, 0.1)
    assert seen["SlowDown"] == puts["s3.slowdown"] and within(seen["SlowDown"], n, 0.05)
    closed = seen["ConnectionClosedError"]
    assert closed == puts["conn.reset"] + puts["conn.drop"]
    assert within(puts["conn.reset"], n, 0.05) and within(puts["conn.drop"], n, 0.03) and puts["conn.drop"]
    assert seen["ok"] + sum(puts.values()) == n
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="faulty")
    written = {o["Key"] for p in pages for o in p.get("Contents", [])}
    ok = {f"k{i}" for i, o in enumerate(outcomes) if o == "ok"}
    lost_answer = {f"k{i}" for i, o in enumerate(outcomes) if o == "ConnectionClosedError"}
    # a reset or an error wrote nothing; a dropped answer's put was written all the same
    assert ok <= written <= ok | lost_answer and len(written) == len(ok) + puts["conn.drop"]
    assert injector.eligible["s3.5xx"] == n + 200 and {"InternalError", "SlowDown", "ok"} <= set(reads)


def test_kinesis_partial_failures_and_throttling_fire_at_their_rates(faulty: tuple[EmbeddedAWS, FaultInjector]) -> None:
    aws, injector = faulty
    injector.spec = FaultSpec.parse("kinesis.partial=0.1,kinesis.throttle=0.1,seed=5")
    kinesis = client(aws, "kinesis")
    kinesis.create_stream(StreamName="faulty", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="faulty", WaiterConfig={"Delay": 0.1})
    injector.arm()
    calls, failed_entries, written, codes = 200, 0, 0, collections.Counter()
    throttled = 0
    for i in range(calls):
        try:
            resp = kinesis.put_records(StreamName="faulty", Records=[
                {"Data": f"{i}-{j}".encode(), "PartitionKey": f"k{j}"} for j in range(10)])
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            throttled += 1
            continue
        failed_entries += resp["FailedRecordCount"]
        codes.update(r["ErrorCode"] for r in resp["Records"] if "ErrorCode" in r)
        written += sum(1 for r in resp["Records"] if "SequenceNumber" in r)
    injector.disarm()
    assert throttled == injector.injected["kinesis.throttle"] and within(throttled, calls, 0.1)
    entries = (calls - throttled) * 10
    assert failed_entries == injector.injected["kinesis.partial"] and within(failed_entries, entries, 0.1)
    assert set(codes) == {"ProvisionedThroughputExceededException", "InternalFailure"}
    shard = kinesis.list_shards(StreamName="faulty")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="faulty", ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert len(kinesis.get_records(ShardIterator=it, Limit=10_000)["Records"]) == written  # failed entries not written


def test_connection_faults_hit_kinesis_and_dynamodb_streams_too(
        faulty: tuple[EmbeddedAWS, FaultInjector], clients: Clients) -> None:
    aws, injector = faulty
    arn = make_table(clients)
    put_items(clients, 1)
    kinesis, streams = client(aws, "kinesis"), client(aws, "dynamodbstreams")
    kinesis.create_stream(StreamName="dropped", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="dropped", WaiterConfig={"Delay": 0.1})
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    injector.spec = FaultSpec.parse("conn.drop=1")
    injector.arm()
    dropped = [outcome(lambda i=i: kinesis.put_record(StreamName="dropped", Data=b"%d" % i, PartitionKey="k"))
               for i in range(3)]
    injector.spec = FaultSpec.parse("conn.reset=1")
    read = outcome(lambda: streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"))
    injector.disarm()
    assert dropped == ["ConnectionClosedError"] * 3 and read == "ConnectionClosedError"
    kshard = kinesis.list_shards(StreamName="dropped")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="dropped", ShardId=kshard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert len(kinesis.get_records(ShardIterator=it)["Records"]) == 3  # put, though the answer was lost
    assert injector.injected["conn.drop"] == 3 and injector.injected["conn.reset"] == 1


def test_counts_add_up_across_restarts_of_the_same_state_directory(tmp_path: Path) -> None:
    path = faults_path(tmp_path)
    first = FaultInjector("handler.error=1,seed=1", path)
    first.arm()
    first.wrap(lambda e, c: None, None)
    first.disarm()
    assert json.loads(path.read_text())["injected"]["handler.error"] == 1
    second = FaultInjector("handler.error=1,seed=1", path)
    second.arm()
    second.wrap(lambda e, c: None, None)
    second.disarm()
    counts = json.loads(path.read_text())
    assert counts["injected"]["handler.error"] == 2 and counts["eligible"]["handler.error"] == 2
    assert counts["sessions"] == 2


def test_a_poisoned_record_is_listed_at_once_not_at_the_next_tick(tmp_path: Path) -> None:
    # a kill -9 right after the record reached the dead-letter queue must not leave it unlisted
    path = faults_path(tmp_path)
    injector = FaultInjector("poison=1,seed=3", path, write_interval_s=3600)
    injector.arm()
    try:
        assert injector.is_poison("ev-1", {"sequence_number": "100", "stream_arn": "arn:s"})
        listed = json.loads(path.read_text())["poisoned"]
        assert listed == [{"event_id": "ev-1", "sequence_number": "100", "stream_arn": "arn:s"}]
    finally:
        injector.disarm()


def test_the_same_seed_injects_the_same_faults(faulty: tuple[EmbeddedAWS, FaultInjector]) -> None:
    aws, injector = faulty
    s3 = client(aws, "s3")
    s3.create_bucket(Bucket="seeded")

    def run(seed: int) -> list[str]:
        injector.__init__(f"s3.5xx=0.2,s3.slowdown=0.1,seed={seed}")  # a fresh injector: nothing seen yet
        injector.arm()
        try:
            return [outcome(lambda i=i: s3.put_object(Bucket="seeded", Key=f"k{i % 20}", Body=b"x"))
                    for i in range(120)]
        finally:
            injector.disarm()

    first = run(3)
    assert first == run(3) and first != run(4)
    assert "InternalError" in first and "SlowDown" in first


def test_outside_writers_and_exempt_clients_are_never_faulted(faulty: tuple[EmbeddedAWS, FaultInjector],
                                                               clients: Clients) -> None:
    aws, injector = faulty
    make_table(clients)
    injector.spec = FaultSpec.parse("s3.5xx=0.5,conn.reset=0.5,kinesis.throttle=0.5,seed=1")
    ddb, s3 = client(aws, "dynamodb"), client(aws, "s3", app_id=EXEMPT_APP_ID)
    s3.create_bucket(Bucket="exempt")
    injector.arm()
    for i in range(50):
        ddb.put_item(TableName="orders", Item={"pk": {"S": f"w{i}"}, "sk": {"S": "0"}})
        s3.put_object(Bucket="exempt", Key=f"k{i}", Body=b"x")
    injector.disarm()
    assert sum(injector.injected.values()) == 0 and sum(injector.eligible.values()) == 0


# -- handler faults -----------------------------------------------------------------------------

def test_handler_errors_and_crashes_fire_at_their_rates_and_every_record_is_delivered(
        clients: Clients, tmp_path: Path) -> None:
    arn = make_table(clients)
    put_items(clients, 150)
    injector = FaultInjector("handler.error=0.15,handler.crash=0.1,seed=2")
    rec = Recorder()
    rt = LocalRuntime(clients, [EventSourceMapping(rec, arn, batch_size=1, name="flaky")], tmp_path,
                      poll_interval_s=0.001, max_retry_backoff_s=0.01)
    install(injector)
    injector.arm()
    try:
        assert rt.run_until_idle(60)
    finally:
        injector.disarm()
        install(None)
        rt.stop()
    stats = rt.stats["flaky"]
    invocations = injector.eligible["handler.error"]
    assert invocations == stats.invocations
    assert injector.injected["handler.error"] + injector.injected["handler.crash"] == stats.function_errors
    assert within(injector.injected["handler.error"], invocations, 0.15)
    assert within(injector.injected["handler.crash"], invocations, 0.1)
    seqs = stream_seqs(clients, arn)
    # a crashed invocation ran its handler (its work may be done) and is retried: at least once, in order
    delivered = rec.delivered()
    assert set(delivered) == set(seqs) and sorted(set(delivered), key=int) == seqs
    assert len(delivered) == len(seqs) + injector.injected["handler.crash"]
    assert stats.records_to_destination == 0


# -- the pipeline under faults -------------------------------------------------------------------

EVERY_FAULT = ("s3.5xx=0.03,s3.slowdown=0.02,conn.reset=0.01,conn.drop=0.01,kinesis.partial=0.1,kinesis.throttle=0.03,"
               "handler.error=0.08,handler.crash=0.08,seed=4")


def raw_event_ids(settings: Settings, clients: Clients, table: str = "orders") -> list[str]:
    """Event IDs in the raw zone, deduplicated as a reader would (the zone is at-least-once)."""
    store = clients.store(settings.bucket)
    selection = Selection(tables=(table,))
    return [c.id for c in iter_changes(store, select_objects(store, settings.prefix, selection), selection)]


def curated_event_ids(settings: Settings, clients: Clients) -> collections.Counter[str]:
    table = LocalEngine(settings, clients).query("SELECT event_id FROM changes")
    return collections.Counter(table.column("event_id").to_pylist())


def source_event_ids(clients: Clients, arn: str) -> list[str]:
    st = clients.dynamodbstreams
    shard = st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = st.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [r["eventID"] for r in st.get_records(ShardIterator=it, Limit=1000)["Records"]]


def test_the_pipeline_under_every_fault_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    s = settings.replace(state_dir=str(tmp_path / "state"))
    with EmbeddedLake(s, port=0, ttl_interval_s=None, poll_interval_s=0.01, status_interval_s=None,
                      faults=EVERY_FAULT) as lake:
        assert lake.clients is not None and lake.provisioned is not None and lake.faults is not None
        for start in range(0, 300, 50):
            put_items(lake.clients, 50, start=start)
        assert lake.wait_idle(120)
        lake.faults.disarm()  # what follows reads the lake: no more faults
        counts = json.loads(faults_path(s.state_dir).read_text())
        source = source_event_ids(lake.clients, lake.provisioned.stream_arns["orders"])
        raw = raw_event_ids(s, lake.clients)
        curated = curated_event_ids(s, lake.clients)
        dead = drain_queue(lake.clients, lake.provisioned.dlq_url, timeout=0.5)
    assert len(source) == 300
    assert sorted(raw) == sorted(source)  # every change archived, once after dedup
    assert set(curated) == set(source) and max(curated.values()) == 1  # every change curated, once
    assert dead == []  # transient faults hold the shard: nothing dead-lettered
    injected = counts["injected"]
    # every kind of fault was there (each one's rate is tested above; here a few invocations may draw none)
    assert injected["kinesis.partial"] > 0, injected
    assert injected["s3.5xx"] + injected["s3.slowdown"] + injected["conn.reset"] + injected["conn.drop"] > 0, injected
    assert injected["handler.error"] + injected["handler.crash"] > 0, injected
    assert counts["total_injected"] == sum(injected.values()) and counts["spec"].endswith("seed=4")


def test_poison_records_end_in_the_dead_letter_queue_with_their_record_and_reason(
        settings: Settings, tmp_path: Path) -> None:
    s = settings.replace(state_dir=str(tmp_path / "state"))
    with EmbeddedLake(s, port=0, ttl_interval_s=None, poll_interval_s=0.01, status_interval_s=None,
                      faults="poison=0.05,seed=9") as lake:
        assert lake.clients is not None and lake.provisioned is not None and lake.faults is not None
        put_items(lake.clients, 200)
        assert lake.wait_idle(60)
        lake.faults.disarm()
        poisoned = {p["event_id"]: p for p in json.loads(faults_path(s.state_dir).read_text())["poisoned"]}
        arn = lake.provisioned.stream_arns["orders"]
        source = source_event_ids(lake.clients, arn)
        dead = drain_queue(lake.clients, lake.provisioned.dlq_url, expect=2 * len(poisoned), timeout=10)
        raw = raw_event_ids(s, lake.clients)
        curated = curated_event_ids(s, lake.clients)
    assert within(len(poisoned), 200, 0.05) and poisoned
    assert all(p["stream_arn"] == arn for p in poisoned.values())  # where each poisoned record is
    # each poisoned record is dead-lettered by both stages that read the stream, alone, with its reason
    by_stage: dict[str, set[str]] = collections.defaultdict(set)
    for msg in dead:
        assert msg["requestContext"]["condition"] == "PoisonRecord" and "serialise" in msg["reason"]
        [record] = msg["records"]
        assert POISON_ATTRIBUTE in record["dynamodb"]["NewImage"]
        assert msg["DDBStreamBatchInfo"]["startSequenceNumber"] == record["dynamodb"]["SequenceNumber"]
        by_stage[msg["requestContext"]["functionArn"].rsplit(":", 1)[-1]].add(record["eventID"])
    assert by_stage == {"stream-archiver": set(poisoned), "fanout": set(poisoned)}
    assert sorted(raw) == sorted(e for e in source if e not in poisoned)  # the others went on
    assert set(curated) == set(source) - set(poisoned)


def test_handler_faults_reach_handlers_in_worker_processes(clients: Clients, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`lake up` runs handlers in worker processes: an injected error fails the invocation before it
    is sent, an injected crash kills the process after the handler ran; nothing is lost."""
    sink = tmp_path / "sink.jsonl"
    monkeypatch.setenv("LAKE_TEST_SINK", str(sink))
    arn = make_table(clients)
    put_items(clients, 40)
    injector = FaultInjector("handler.error=0.15,handler.crash=0.15,seed=4")
    rt = LocalRuntime(clients, [EventSourceMapping("tests.process_handlers:record", arn, batch_size=2,
                                                   name="flaky-process")],
                      tmp_path / "rt", poll_interval_s=0.001, max_retry_backoff_s=0.01, handler_processes=True)
    install(injector)
    injector.arm()
    try:
        assert rt.run_until_idle(120)
    finally:
        injector.disarm()
        install(None)
        rt.stop()
    stats = rt.stats["flaky-process"]
    assert injector.injected["handler.error"] > 0 and injector.injected["handler.crash"] > 0
    assert injector.injected["handler.error"] + injector.injected["handler.crash"] == stats.function_errors
    runs = [json.loads(line) for line in sink.read_text().splitlines()]
    ran = [s for r in runs for s in r["seqs"]]
    # errors never reach the handler; crashes ran it and are retried in a new process
    assert len(runs) == stats.invocations - injector.injected["handler.error"]
    assert set(ran) == set(stream_seqs(clients, arn)) and stats.records_to_destination == 0
    assert len({r["pid"] for r in runs}) >= injector.injected["handler.crash"] + 1
