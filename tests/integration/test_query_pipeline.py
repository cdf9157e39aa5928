"""The views on a lake produced by the pipeline's own code: stream records → fan-out
envelope on Kinesis events → lake.curate (the parquet_consumer's library) → Iceberg
tables in Glue; and the raw zone written by lake.archive, looked up by the replay query."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from lake.archive.writer import archive_records
from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket, ensure_glue_database
from lake.curate import curate
from lake.fanout import envelope
from lake.query.local import LocalEngine, demo_tables
from lake.query.sqlfiles import load_query
from lake.records import partition_key, table_from_arn
from lake.settings import Settings
from tests.integration.test_query_views import assert_views_match, naive
from tests.synthetic import Delivered, generate, redeliver

ROOT = Path(__file__).resolve().parents[2]


def kinesis_event(batch: Sequence[Delivered]) -> list[dict[str, object]]:
    """Lambda's Kinesis event records for ``batch``, carrying the fan-out envelope."""
    out: list[dict[str, object]] = []
    for d in batch:
        table = table_from_arn(str(d.record["eventSourceARN"]))
        out.append({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": partition_key(table, d.record["dynamodb"]["Keys"]),
                "sequenceNumber": d.sequence_number,
                "data": base64.b64encode(envelope(d.record, table)).decode(),
                "approximateArrivalTimestamp": 1714600000.0,
            },
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": f"{d.shard_id}:{d.sequence_number}", "eventName": "aws:kinesis:record",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/lake-changes",
        })
    return out


def build_through_pipeline(settings: Settings, clients: Clients, unique: Sequence[Delivered],
                           dupes: Sequence[Delivered], batch_size: int = 100) -> None:
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_glue_database(clients, settings.glue_database)
    deliveries = list(unique) + list(dupes)  # the redelivered copies come in later batches
    for start in range(0, len(deliveries), batch_size):
        result = curate(settings, kinesis_event(deliveries[start:start + batch_size]), clients)
        assert result.response() == {"batchItemFailures": []}


def test_views_on_a_pipeline_lake_match_ground_truth(settings: Settings, clients: Clients) -> None:
    unique = generate(300, seed=5)
    dupes = redeliver(unique, fraction=0.2, seed=9)
    assert dupes
    build_through_pipeline(settings, clients, unique, dupes)
    engine = LocalEngine(settings, clients)
    n = engine.query("SELECT count(*) AS n FROM changes").column("n")[0].as_py()
    assert n == len(unique)  # the redelivered copies were never committed (docs/adr/0003)
    assert_views_match(engine, unique)
    demo = demo_tables(settings, clients, limit=3)
    assert demo["audit_trail"].num_rows == 3
    assert sum(demo["change_volume"].column("changes").to_pylist()) == len(unique)


def test_current_state_as_of(settings: Settings, clients: Clients) -> None:
    unique = generate(200, seed=21)
    build_through_pipeline(settings, clients, unique, [])
    engine = LocalEngine(settings, clients)
    cut = len(unique) // 2
    instant = naive(int(unique[cut].record["dynamodb"]["ApproximateCreationDateTime"]) * 1_000_000)
    # everything at or before the instant, in true order
    state: dict[tuple[str, str], object] = {}
    for d in unique:
        t = naive(int(d.record["dynamodb"]["ApproximateCreationDateTime"]) * 1_000_000)
        if t > instant:
            break
        k = (table_from_arn(d.record["eventSourceARN"]), "|".join(
            f"{a}={next(iter(v.values()))}" for a, v in sorted(d.record["dynamodb"]["Keys"].items())))
        new = d.record["dynamodb"].get("NewImage")
        if new is None:
            state.pop(k, None)
        else:
            state[k] = new["status"]["S"]
    rows = engine.query(load_query("current_state_as_of", settings), [instant.isoformat(sep=" ")]).to_pylist()
    got = {(r["table_name"], r["key"]): json.loads(r["item"])["status"] for r in rows}
    assert got == state and len(got) > 0


def test_raw_lookup_finds_the_objects_of_a_key(settings: Settings, clients: Clients) -> None:
    ensure_bucket(clients, settings.bucket, settings.region)
    unique = generate(120, tables=("orders",), seed=8)
    for start in range(0, len(unique), 30):
        archive_records([d.record for d in unique[start:start + 30]], settings, clients)
    target = unique[5].record
    key = "|".join(f"{a}={next(iter(v.values()))}" for a, v in sorted(target["dynamodb"]["Keys"].items()))
    mine = [d.record for d in unique if d.record["dynamodb"]["Keys"] == target["dynamodb"]["Keys"]]
    times = [naive(int(r["dynamodb"]["ApproximateCreationDateTime"]) * 1_000_000) for r in mine]
    lo, hi = min(times).isoformat(sep=" "), max(times).isoformat(sep=" ")
    engine = LocalEngine(settings, clients)
    rows = engine.query(load_query("raw_objects_for_key", settings),
                        ["orders", key, lo, hi, lo, hi]).to_pylist()
    assert sum(r["records"] for r in rows) == len(mine)
    listed = {f"s3://{settings.bucket}/{o['Key']}" for o in
              clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix="raw/")["Contents"]}
    assert {r["object"] for r in rows} <= listed


def test_lake_query_cli_from_a_fresh_process(settings: Settings, clients: Clients) -> None:
    unique = generate(120, seed=4)
    build_through_pipeline(settings, clients, unique, [])
    base = [sys.executable, "-m", "lake.cli", "query", "--endpoint-url", str(settings.endpoint_url)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(settings.state_dir)}
    out = subprocess.run(
        [*base, "--format", "json", "SELECT event_name, sum(changes) AS n FROM change_volume GROUP BY 1 ORDER BY 1"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    got = {r["event_name"]: r["n"] for r in map(json.loads, out.stdout.splitlines())}
    expected: dict[str, int] = {}
    for d in unique:
        expected[d.record["eventName"]] = expected.get(d.record["eventName"], 0) + 1
    assert got == expected

    bad = subprocess.run([*base, "SELECT *\nFROM   no_such_table"], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=120)
    assert bad.returncode == 2
    assert "no_such_table" in bad.stderr and "line 2, column 8" in bad.stderr

    syntax = subprocess.run([*base, "SELECT FROM WHERE ("], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=120)
    assert syntax.returncode == 2 and "line 1, column" in syntax.stderr

    table = subprocess.run([*base, "--format", "table", "SELECT table_name, key FROM current_state LIMIT 3"],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "table_name" in table.stdout and "3 row(s)" in table.stdout
