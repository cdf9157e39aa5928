"""`lake up` killed with SIGKILL while an external writer writes and the pipeline runs, then started
again on the same state directory: nothing acknowledged is lost, and every change of the source
stream reaches the curated zone exactly once (issue 11, persistent local state)."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

from lake.aws.catalog import IcebergTables
from lake.aws.clients import Clients
from lake.settings import Settings
from tests.e2e.conftest import LakeUp, start_lake_up


def _write(up: LakeUp, rng: random.Random, keys: range, rounds: int) -> dict[str, dict[str, Any]]:
    """BatchWriteItem puts and deletes over ``keys``, as an application would; returns the last
    acknowledged state of each key (None: deleted)."""
    ddb = up.client("dynamodb")
    last: dict[str, Any] = {}
    for _ in range(rounds):
        batch: dict[str, Any] = {}
        for k in rng.sample(list(keys), 25):
            key = {"pk": {"S": f"user#{k}"}, "sk": {"S": "profile"}}
            if rng.random() < 0.15:
                batch[f"user#{k}"] = {"DeleteRequest": {"Key": key}}
            else:
                item = {**key, "score": {"N": str(rng.randint(-10**6, 10**6))},
                        "name": {"S": rng.choice(["ana", "bo", "chen", "dara"]) * rng.randint(1, 4)}}
                batch[f"user#{k}"] = {"PutRequest": {"Item": item}}
        pending = {"orders": list(batch.values())}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        for k, req in batch.items():
            last[k] = req["PutRequest"]["Item"] if "PutRequest" in req else None
    return last


def _stream_seqs(up: LakeUp) -> set[str]:
    ddb, st = up.client("dynamodb"), up.client("dynamodbstreams")
    arn = ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
    seqs: set[str] = set()
    for shard in st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = st.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            resp = st.get_records(ShardIterator=it, Limit=1000)
            seqs |= {r["dynamodb"]["SequenceNumber"] for r in resp["Records"]}
            if not resp["Records"]:
                break
            it = resp.get("NextShardIterator")
    return seqs


def _curated(up: LakeUp) -> list[str]:
    settings = Settings().replace(endpoint_url=up.endpoint, bucket="e2e-lake", region="us-east-1")
    tables = IcebergTables(settings, Clients(settings))
    if not tables.find("changes"):
        return []
    rows = tables.scan("changes", row_filter="table_name == 'orders'").to_pylist()
    return [r["source_sequence_number"] for r in rows]


def test_lake_up_killed_mid_run_comes_back_consistent_and_catches_up(tmp_path: Path, monkeypatch: Any) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    rng = random.Random(11)
    up = start_lake_up(tmp_path)
    try:
        state = _write(up, rng, range(400), 16)
        time.sleep(3)  # a snapshot or two while the pipeline is busy
        state |= _write(up, rng, range(400), 8)
        up.proc.send_signal(signal.SIGKILL)
        up.proc.wait(timeout=10)

        up = start_lake_up(tmp_path)
        assert any(line.startswith("restored the lake") for line in up.output), "".join(up.output)
        items = {i["pk"]["S"]: i for i in up.client("dynamodb").scan(TableName="orders")["Items"]}
        expected = {k: v for k, v in state.items() if v is not None}
        assert set(items) == set(expected), "acknowledged writes lost or resurrected by the crash"
        assert all(items[k] == v for k, v in expected.items())

        state |= _write(up, rng, range(400), 6)  # and the restarted lake keeps working
        seqs = _stream_seqs(up)
        deadline = time.monotonic() + 180
        curated: list[str] = []
        while time.monotonic() < deadline:
            curated = _curated(up)
            if set(curated) >= seqs:
                break
            time.sleep(1)
        assert set(curated) == seqs, f"{len(seqs - set(curated))} change(s) never reached the curated zone"
        assert len(curated) == len(set(curated)), "a change reached the curated zone twice"
    finally:
        if up.proc.poll() is None:
            up.stop()
