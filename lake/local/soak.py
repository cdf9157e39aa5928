"""``make soak``: the local lake under load and faults, checked from the lake itself.

N changes (``SOAK_CHANGES``, default 100k) over K keys are written by an external boto3 writer
(BatchWriteItem: inserts, updates, deletes of varied items, a few poison items) to ``lake up``
running as its own process with ``--faults``; midway the process is killed with SIGKILL and
started again on the same state directory, and the lake's Kinesis stream is split. Then, with
the faults off (the cause fixed), ``lake redrive`` runs, and the lake is checked:

* every change of the source stream is in the curated zone exactly once (``lost``, ``duplicates``),
  and in the raw zone (``raw_missing``);
* per key, the curated zone's order (Kinesis shard lineage, sequence number) is the source's
  order (``order_violations``);
* the poison records are in the dead-letter queue, with their record and reason;
* a replay of the raw zone into an empty table reproduces the source table item by item.

It prints a table and writes it as JSON (``soak-report.json``); the exit status is 1 when any
check fails. ``python -m lake.local.soak --help`` lists the knobs.
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lake.local.embedded import free_port
from lake.local.faults import EXEMPT_APP_ID

SOURCE = "orders"
REPLICA = "orders_replica"
DEFAULT_FAULTS = ("s3.5xx=0.02,s3.slowdown=0.01,conn.reset=0.005,conn.drop=0.002,kinesis.partial=0.05,"
                  "kinesis.throttle=0.02,handler.error=0.01,handler.crash=0.01,poison=0.0005,seed=7")
POISON_DEPTH = 150  # nesting the embedded DynamoDB accepts and no stage can serialise


@dataclass
class SoakReport:
    changes_in: int = 0          # writes acknowledged by the source table
    stream_records: int = 0      # records in the source table's stream (all shards)
    poison_written: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    restore_seconds: float | None = None
    shard_split: bool = False
    lost: int = 0                # stream records (not poison) missing from the curated zone
    duplicates: int = 0          # curated rows beyond the first for one source record
    unexpected: int = 0          # curated rows for no source record
    raw_missing: int = 0         # stream records (not poison) missing from the raw zone
    order_violations: int = 0    # per key, curated order differing from the source order
    redriven_out_of_order: int = 0  # the same, caused by a record re-driven after its key's later changes
    dead_lettered: int = 0       # records in the dead-letter queue at the end
    poison_in_dlq: int = 0       # distinct poison records found there, with record and reason
    unexplained_dead_letters: int = 0  # records dead-lettered that were neither poisoned nor written as poison
    redriven: int = 0            # records `lake redrive` brought back
    replica_mismatches: int = 0  # items differing between the source and its replay from raw
    seconds: float = 0.0
    changes_per_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.lost == self.duplicates == self.unexpected == self.raw_missing == self.order_violations
                == self.replica_mismatches == self.unexplained_dead_letters == 0
                and self.poison_in_dlq == self.poison_written)


# -- lake up as a process ---------------------------------------------------------------------------
class LakeProcess:
    """``lake up`` in its own process, on a fixed port, with a state directory that outlives it."""

    def __init__(self, state_dir: Path, port: int, bucket: str, log: Path) -> None:
        self.state_dir, self.port, self.bucket, self.log = state_dir, port, bucket, log
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = f"http://127.0.0.1:{port}"
        self.lines: queue.Queue[str] = queue.Queue()

    def start(self, faults: str | None, timeout: float = 120) -> list[str]:
        cmd = [sys.executable, "-m", "lake.cli", "up", "--port", str(self.port), "--state-dir", str(self.state_dir),
               "--bucket", self.bucket]
        if faults:
            cmd += ["--faults", faults]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     stdin=subprocess.DEVNULL)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if line.startswith("LAKE_ENDPOINT="):
                return seen
        raise RuntimeError("lake up did not start:\n" + "".join(seen))

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with open(self.log, "a") as out:
            for line in proc.stdout:
                out.write(line)
                self.lines.put(line)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the writer -----------------------------------------------------------------------------------
def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2,
                                      read_timeout=60, user_agent_appid=EXEMPT_APP_ID))  # the harness is not under test


def _poison(i: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": f"bottom-{i}"}
    for _ in range(POISON_DEPTH):
        value = {"M": {"n": value}}
    return {"pk": {"S": f"poison#{i}"}, "sk": {"S": "v"}, "deep": value}


def _item(rng: random.Random, key: int, version: int) -> dict[str, Any]:
    """A varied item: the attributes present, their types and sizes change from write to write."""
    item: dict[str, Any] = {"pk": {"S": f"user#{key}"}, "sk": {"S": "v"}, "version": {"N": str(version)}}
    if rng.random() < 0.8:
        item["balance"] = {"N": str(Decimal(rng.randint(-10**9, 10**9)) / 100)}
    if rng.random() < 0.7:
        item["name"] = {"S": "".join(rng.choice("abcdefghijklmnopqrstuvwxyzåé ") for _ in range(rng.randint(1, 40)))}
    if rng.random() < 0.3:
        item["tags"] = {"SS": sorted({f"t{rng.randint(0, 50)}" for _ in range(rng.randint(1, 5))})}
    if rng.random() < 0.3:
        item["history"] = {"L": [{"N": str(rng.randint(0, 99))} for _ in range(rng.randint(0, 8))]}
    if rng.random() < 0.2:
        item["address"] = {"M": {"city": {"S": rng.choice(["Lyon", "Oslo", "Quito"])},
                                 "zip": {"N": str(rng.randint(1000, 99999))}}}
    if rng.random() < 0.1:
        item["active"] = {"BOOL": rng.random() < 0.5}
    if rng.random() < 0.05:
        item["blob"] = {"B": rng.randbytes(rng.randint(1, 64))}
    return item


class Writer:
    """Writes ``changes`` changes over ``keys`` keys in BatchWriteItem calls of distinct keys,
    retrying through outages (the lake being killed and restarted) until acknowledged."""

    def __init__(self, endpoint: str, changes: int, keys: int, poison: int, seed: int) -> None:
        self.ddb = _client(endpoint, "dynamodb")
        self.changes, self.keys, self.poison = changes, keys, poison
        self.rng = random.Random(seed)
        self.written = 0
        self.poison_written = 0
        self.live: dict[int, int] = {}  # key -> version

    def _send(self, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {SOURCE: requests}
        pause = 0.05
        while pending:
            try:
                pending = self.ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            except (BotoCoreError, ClientError):
                time.sleep(pause)  # the lake is down or restarting: the same batch again
                pause = min(pause * 2, 2.0)

    def run(self, on_progress: Callable[[float], None]) -> None:
        poison_at = {int(self.changes * (i + 1) / (self.poison + 1)) for i in range(self.poison)}
        while self.written < self.changes:
            n = min(25, self.changes - self.written)
            requests = []
            for key in self.rng.sample(range(self.keys), n):
                if key in self.live and self.rng.random() < 0.15:
                    del self.live[key]
                    requests.append({"DeleteRequest": {"Key": {"pk": {"S": f"user#{key}"}, "sk": {"S": "v"}}}})
                else:
                    self.live[key] = self.live.get(key, 0) + 1
                    requests.append({"PutRequest": {"Item": _item(self.rng, key, self.live[key])}})
            if any(self.written < p <= self.written + n for p in poison_at):
                requests[-1] = {"PutRequest": {"Item": _poison(self.poison_written)}}
                self.poison_written += 1
            self._send(requests)
            self.written += n
            on_progress(self.written / self.changes)


# -- reading the lake back ------------------------------------------------------------------------
def stream_records(endpoint: str, table: str = SOURCE) -> list[dict[str, Any]]:
    ddb, st = _client(endpoint, "dynamodb"), _client(endpoint, "dynamodbstreams")
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    out: list[dict[str, Any]] = []
    for shard in st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = st.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            resp = st.get_records(ShardIterator=it, Limit=1000)
            out += resp["Records"]
            if not resp["Records"]:
                break
            it = resp.get("NextShardIterator")
    return out


def _is_poison(record: dict[str, Any]) -> bool:
    return str(record["dynamodb"]["Keys"]["pk"]["S"]).startswith("poison#")


def _settings(endpoint: str, bucket: str) -> Any:
    from lake.settings import Settings

    return Settings().replace(endpoint_url=endpoint, bucket=bucket, region="us-east-1")


def _patiently(read: Callable[[], Any], attempts: int = 30) -> Any:
    """A read of the lake while ``--faults`` hits it (pyarrow's S3 client cannot be exempted): again, as
    any consumer of a flaky store would."""
    from lake.errors import TransientError

    for attempt in range(attempts):
        try:
            return read()
        except (TransientError, OSError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def curated_rows(endpoint: str, bucket: str) -> list[dict[str, Any]]:
    return list(_patiently(lambda: _curated_rows(endpoint, bucket)))


def _curated_rows(endpoint: str, bucket: str) -> list[dict[str, Any]]:
    from lake.aws.catalog import IcebergTables
    from lake.aws.clients import Clients

    settings = _settings(endpoint, bucket)
    tables = IcebergTables(settings, Clients(settings))
    if tables.find("changes") is None:
        return []
    cols = ["key", "source_sequence_number", "shard_id", "sequence_number"]
    return list(tables.scan("changes", row_filter=f"table_name == '{SOURCE}'", columns=cols).to_pylist())


def raw_sequences(endpoint: str, bucket: str) -> set[int]:
    from lake.aws.clients import Clients
    from lake.replay.selection import Selection
    from lake.replay.source import iter_changes, select_objects

    settings = _settings(endpoint, bucket)
    store = Clients(settings).store(bucket)
    selection = Selection(tables=(SOURCE,))
    return {c.seq for c in iter_changes(store, select_objects(store, settings.prefix, selection), selection)}


def dead_letters(endpoint: str) -> list[dict[str, Any]]:
    """Every message of the lake's dead-letter queue, left in the queue (read, then made visible)."""
    sqs = _client(endpoint, "sqs")
    url = sqs.get_queue_url(QueueName="lake-dlq")["QueueUrl"]
    seen: dict[str, dict[str, Any]] = {}
    receipts = []
    for _ in range(200):
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0)
        msgs = resp.get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            seen[m["MessageId"]] = json.loads(m["Body"])
            receipts.append(m["ReceiptHandle"])
    for r in receipts:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=r, VisibilityTimeout=0)
    return list(seen.values())


def _dlq_records(messages: list[dict[str, Any]]) -> list[tuple[dict[str, Any] | None, str]]:
    """(record, reason) of every record the messages carry (None when only coordinates are there)."""
    out: list[tuple[dict[str, Any] | None, str]] = []
    for body in messages:
        reason = str(body.get("reason") or body.get("requestContext", {}).get("condition") or "")
        records = body.get("records") or body.get("Records")
        if isinstance(records, list) and records:
            out += [(r if isinstance(r, dict) else None, reason) for r in records]
        else:
            out.append((None, reason))
    return out


def order_violations(rows: list[dict[str, Any]], redriven: Collection[int] = (),
                     examples: list[str] | None = None) -> tuple[int, int]:
    """Per key, the curated rows sorted by source sequence number must also be sorted by their
    Kinesis position (shard lineage — children's ids follow their parent's — then sequence).

    Returns (violations, late): a record dead-lettered and re-driven later (``redriven``) arrives
    after the key's later changes by design, as on AWS; such pairs are counted apart (``late``).
    The first few violations are described in ``examples``, when given."""
    by_key: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for r in rows:
        by_key[r["key"]].append((int(r["source_sequence_number"]), r["shard_id"], r["sequence_number"]))
    bad = late = 0
    for key, entries in by_key.items():
        entries.sort()
        for (sa, *a), (sb, *b) in itertools.pairwise(entries):
            if a > b:
                if sa in redriven or sb in redriven:
                    late += 1
                else:
                    bad += 1
                    if examples is not None and len(examples) < 5:
                        examples.append(f"key {key}: source {sa} at {a}, then source {sb} at {b}")
    return bad, late


# -- replay into an empty table -------------------------------------------------------------------
def _sdk_value(value: dict[str, Any]) -> dict[str, Any]:
    """A stream record's attribute value (JSON: binaries in base64) as boto3 takes it (bytes)."""
    (tag, v), = value.items()
    if tag == "B":
        return {"B": base64.b64decode(v)}
    if tag == "BS":
        return {"BS": [base64.b64decode(b) for b in v]}
    if tag == "M":
        return {"M": {k: _sdk_value(x) for k, x in v.items()}}
    if tag == "L":
        return {"L": [_sdk_value(x) for x in v]}
    return value


def apply_to_replica(event: dict[str, Any], context: Any) -> None:
    """A replay target: apply DynamoDB-stream records to ``LAKE_SOAK_REPLICA`` (puts and deletes)."""
    ddb = boto3.client("dynamodb")
    table = os.environ["LAKE_SOAK_REPLICA"]
    for record in event["Records"]:
        d = record["dynamodb"]
        if record["eventName"] == "REMOVE":
            ddb.delete_item(TableName=table, Key={k: _sdk_value(v) for k, v in d["Keys"].items()})
        else:
            ddb.put_item(TableName=table, Item={k: _sdk_value(v) for k, v in d["NewImage"].items()})


def _scan(endpoint: str, table: str) -> dict[str, dict[str, Any]]:
    ddb = _client(endpoint, "dynamodb")
    items: dict[str, dict[str, Any]] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            items[f"{item['pk']['S']}|{item['sk']['S']}"] = item
    return items


def replica_mismatches(endpoint: str, bucket: str) -> int:
    ddb = _client(endpoint, "dynamodb")
    ddb.create_table(TableName=REPLICA, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "LAKE_SOAK_REPLICA": REPLICA}
    subprocess.run([sys.executable, "-m", "lake.cli", "replay", "python:lake.local.soak:apply_to_replica",
                    "--table", SOURCE, "--endpoint-url", endpoint, "--bucket", bucket, "--no-progress", "--yes",
                    "--state-dir", tempfile.mkdtemp(prefix="soak-replay-")],
                   env=env, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    source = {k: v for k, v in _scan(endpoint, SOURCE).items() if not k.startswith("poison#")}
    replica = _scan(endpoint, REPLICA)
    return sum(1 for k in source.keys() | replica.keys() if source.get(k) != replica.get(k))


# -- the run --------------------------------------------------------------------------------------
def _faults_seen(state_dir: Path) -> dict[str, int]:
    for name in ("faults.json", "status.json"):
        path = state_dir / name
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        counts = data.get("faults", data) if isinstance(data, dict) else None
        if isinstance(counts, dict) and "injected" in counts:
            counts = counts["injected"]
        if isinstance(counts, dict) and all(isinstance(v, int) for v in counts.values()) and counts:
            return {str(k): int(v) for k, v in counts.items()}
    return {}


def _poisoned_by_faults(state_dir: Path) -> set[int]:
    """Sequence numbers of the records ``--faults poison`` corrupted: they wait in the dead-letter
    queue until ``lake redrive`` runs."""
    try:
        data = json.loads((state_dir / "faults.json").read_text())
        return {int(p["sequence_number"]) for p in data.get("poisoned", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _wait_drained(endpoint: str, bucket: str, expected: set[int], timeout: float, say: Callable[[str], None],
                  excused: Callable[[], set[int]] = set) -> None:
    """Until every expected change is curated, except ``excused`` ones (dead-lettered by design)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        have = {int(r["source_sequence_number"]) for r in curated_rows(endpoint, bucket)}
        missing = expected - have
        if not missing - excused():
            return
        if len(missing) != last:
            say(f"  waiting for the curated zone: {len(missing)} change(s) to go")
            last = len(missing)
        time.sleep(2)
    say(f"  gave up waiting after {timeout:.0f} s")


def _redrive_available() -> bool:
    return subprocess.run([sys.executable, "-m", "lake.cli", "redrive", "--help"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL).returncode == 0


def run_soak(changes: int, keys: int, faults: str | None, poison: int, seed: int, workdir: Path,
             timeout_s: float, say: Callable[[str], None] = print) -> SoakReport:
    report = SoakReport()
    t0 = time.perf_counter()
    state_dir = workdir / "state"
    bucket = "soak-lake"
    lake = LakeProcess(state_dir, free_port(), bucket, workdir / "lake-up.log")
    lake.start(faults)
    say(f"lake up at {lake.endpoint} (faults: {faults or 'none'}); writing {changes} changes over {keys} keys")
    writer = Writer(lake.endpoint, changes, keys, poison, seed)
    events = {"kill": 0.4, "split": 0.6}

    def on_progress(done: float) -> None:
        if "kill" in events and done >= events["kill"]:
            del events["kill"]
            say(f"  {writer.written} written: kill -9 of lake up, and a restart on the same state directory")
            lake.kill()
            report.kills += 1
            lines = lake.start(faults)
            restored = [ln for ln in lines if ln.startswith("restored the lake")]
            if restored:
                say("  " + restored[0].strip())
                try:
                    report.restore_seconds = float(restored[0].split(" in ")[1].split(" s")[0])
                except (IndexError, ValueError):
                    pass
        if "split" in events and done >= events["split"]:
            del events["split"]
            kinesis = _client(lake.endpoint, "kinesis")
            shard = next(s for s in kinesis.list_shards(StreamName="lake-changes")["Shards"]
                         if "EndingSequenceNumber" not in s["SequenceNumberRange"])
            lo, hi = (int(shard["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
            kinesis.split_shard(StreamName="lake-changes", ShardToSplit=shard["ShardId"],
                                NewStartingHashKey=str((lo + hi) // 2))
            report.shard_split = True
            say(f"  {writer.written} written: the lake's Kinesis shard {shard['ShardId']} split in two")

    try:
        writer.run(on_progress)
        report.changes_in = writer.written
        report.poison_written = writer.poison_written
        records = stream_records(lake.endpoint)
        report.stream_records = len(records)
        poison_seqs = {int(r["dynamodb"]["SequenceNumber"]) for r in records if _is_poison(r)}
        expected = {int(r["dynamodb"]["SequenceNumber"]) for r in records} - poison_seqs
        say(f"wrote {writer.written} changes ({report.stream_records} stream records) in "
            f"{time.perf_counter() - t0:.0f} s; draining under faults")
        _wait_drained(lake.endpoint, bucket, expected, timeout_s, say, lambda: _poisoned_by_faults(state_dir))
        lake.stop()
        redriven_seqs = _poisoned_by_faults(state_dir)  # dead-lettered in transit: re-driven below
        report.faults = _faults_seen(state_dir)  # counted across the restarts by lake up itself
        lake.start(None)  # the cause fixed: no faults
        in_dlq = {int(rec["dynamodb"]["SequenceNumber"]) for rec, _ in _dlq_records(dead_letters(lake.endpoint))
                  if rec is not None and "SequenceNumber" in rec.get("dynamodb", {})}
        unexplained = in_dlq - redriven_seqs - poison_seqs
        report.unexplained_dead_letters = len(unexplained)
        if unexplained:
            report.notes.append(f"dead-lettered though neither poisoned nor poison: {sorted(unexplained)[:10]}")
        redriven_seqs |= in_dlq  # whatever `lake redrive` brings back arrives late by design
        if _redrive_available():
            out = subprocess.run([sys.executable, "-m", "lake.cli", "redrive", "--endpoint-url", lake.endpoint,
                                  "--bucket", bucket, "--json", "--yes"], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL)
            try:
                total = json.loads(out.stdout)["total"]
                report.redriven = int(total["succeeded"])
                if total["failing"]:
                    report.notes.append(f"lake redrive: {total['failing']} record(s) still failing (poison stays)")
            except (ValueError, KeyError, TypeError):
                report.notes.append(f"lake redrive said: {(out.stdout + out.stderr).strip()[:300]}")
        else:
            report.notes.append("lake redrive is not available: nothing re-driven")
        _wait_drained(lake.endpoint, bucket, expected, min(timeout_s, 120), say)
        say("checking the lake")
        rows = curated_rows(lake.endpoint, bucket)
        seen = [int(r["source_sequence_number"]) for r in rows]
        report.lost = len(expected - set(seen))
        report.duplicates = len(seen) - len(set(seen))
        report.unexpected = len(set(seen) - expected - poison_seqs)
        report.raw_missing = len(expected - raw_sequences(lake.endpoint, bucket))
        examples: list[str] = []
        report.order_violations, report.redriven_out_of_order = order_violations(rows, redriven_seqs, examples)
        report.notes += [f"out of order: {e}" for e in examples]
        dlq = _dlq_records(dead_letters(lake.endpoint))
        report.dead_lettered = len(dlq)
        report.poison_in_dlq = len({int(rec["dynamodb"]["SequenceNumber"]) for rec, reason in dlq
                                    if rec is not None and reason and "dynamodb" in rec
                                    and int(rec["dynamodb"].get("SequenceNumber", -1)) in poison_seqs})
        report.replica_mismatches = replica_mismatches(lake.endpoint, bucket)
    finally:
        lake.stop()
    report.seconds = round(time.perf_counter() - t0, 1)
    report.changes_per_s = round(report.changes_in / report.seconds, 1) if report.seconds else 0.0
    return report


def render(report: SoakReport) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="soak", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in asdict(report).items():
        if k == "faults":
            for fk, fv in sorted(v.items()):
                table.add_row(f"faults injected: {fk}", str(fv))
            if not v:
                table.add_row("faults injected", "none counted")
        elif k != "notes":
            table.add_row(k, str(v))
    table.add_row("verdict", "PASS" if report.ok else "FAIL")
    console = Console(record=True, width=80, file=io.StringIO())
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    return console.export_text()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lake.local.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=int(os.environ.get("SOAK_CHANGES", 100_000)))
    p.add_argument("--keys", type=int, default=int(os.environ.get("SOAK_KEYS", 5_000)))
    p.add_argument("--faults", default=os.environ.get("SOAK_FAULTS", DEFAULT_FAULTS),
                   help="lake up --faults SPEC ('' for none)")
    p.add_argument("--poison", type=int, default=5, help="poison items written (they must end in the DLQ)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the lake to drain")
    p.add_argument("--workdir", type=Path, default=None, help="where the state and logs go (default: a temp dir)")
    p.add_argument("--report", type=Path, default=Path("soak-report.json"))
    args = p.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lake-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = run_soak(args.changes, args.keys, args.faults or None, args.poison, args.seed, workdir, args.timeout)
    print(render(report))
    args.report.write_text(json.dumps(asdict(report) | {"ok": report.ok}, indent=1) + "\n")
    print(f"report: {args.report}; logs and state: {workdir}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
