"""Throughput of `lake up`: external boto3 BatchWriteItem writers → raw zone and curated zone complete,
side by side with the same writers against the embedded DynamoDB alone (the upper bound).

Two runs in one invocation, each a fresh subprocess:

1. **DynamoDB alone**: the embedded AWS with the source table (stream on, as in the lake) and
   nothing reading it. The writers' rate there is the most `lake up` could ever ingest.
2. **`lake up --port 0`**: the same writers, the same changes; the time from the first write until
   the raw zone holds every change (records counted from the objects' ``record-count``) and the
   curated ``changes`` table holds every change (its current snapshot's ``total-records``).

The workload is :func:`lake.local.workload.generate`'s (inserts, updates, deletes over many keys,
items of varied shape), one slice per writer process with its own keys, no TTL expiries (every
change is one stream record, so the expected count is exact). Reported: changes/s to the curated
zone end to end, the slowest window of ``--window`` changes, the ratio to DynamoDB alone, and the
peak RSS of `lake up`'s process tree. Target (issue 11): >= 1,000 changes/s sustained for 100k.

    .venv/bin/python benchmarks/bench_lake_up.py [--changes 100000] [--writers 2] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = 1000.0
REGION = "us-east-1"
TABLE = "orders"
SERVE_DDB = """
import sys, threading
sys.path.insert(0, {repo!r})
import boto3
from lake.local.embedded import EmbeddedAWS
aws = EmbeddedAWS(port=0)
url = aws.start()
ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{{"AttributeName": "pk", "AttributeType": "S"}},
                                       {{"AttributeName": "sk", "AttributeType": "S"}}],
                 KeySchema=[{{"AttributeName": "pk", "KeyType": "HASH"}},
                            {{"AttributeName": "sk", "KeyType": "RANGE"}}],
                 StreamSpecification={{"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}})
print("LAKE_ENDPOINT=" + url, flush=True)
sys.stdin.read()
aws.stop()
"""


def client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def writer_requests(writer: int, changes: int) -> list[list[dict[str, Any]]]:
    """This writer's BatchWriteItem request lists: its slice of a generated workload, keys of its own."""
    from lake.local.workload import generate, write_batches
    from lake.settings import TableSpec

    wl = generate([TableSpec(TABLE, "pk", "sk")], changes, seed=1000 + writer, now=time.time(), ttl_share=0.0)
    prefix = f"W{writer}#"
    batches = []
    for _, ops in write_batches(wl.ops):
        reqs: list[dict[str, Any]] = []
        for op in ops:
            key = {k: {"S": prefix + v["S"]} for k, v in op.key.items()}
            if op.kind == "put":
                assert op.item is not None
                reqs.append({"PutRequest": {"Item": {**op.item, **key}}})
            else:
                reqs.append({"DeleteRequest": {"Key": key}})
        batches.append(reqs)
    return batches


def _writer(endpoint: str, writer: int, changes: int, ready: Any, go: Any, out: Any) -> None:
    batches = writer_requests(writer, changes)
    ddb = client(endpoint, "dynamodb")
    ready.release()
    go.wait()
    t0 = time.time()
    written = 0
    for reqs in batches:
        pending: dict[str, Any] = {TABLE: reqs}
        for attempt in range(20):
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
        else:
            raise RuntimeError("items stayed unprocessed")
        written += len(reqs)
    out.put((writer, written, t0, time.time()))


def write_all(endpoint: str, changes: int, writers: int) -> tuple[int, float, float]:
    """Run the writers at once; (changes written, first start, last end) in epoch seconds."""
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    shares = [changes // writers + (1 if w < changes % writers else 0) for w in range(writers)]
    procs = [ctx.Process(target=_writer, args=(endpoint, w, n, ready, go, out), daemon=True)
             for w, n in enumerate(shares)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    go.set()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(r[1] for r in results), min(r[2] for r in results), max(r[3] for r in results)


def start(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("LAKE_ENDPOINT="):
            # Keep draining its output, or a chatty process blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
            return proc, line.strip().split("=", 1)[1]
    raise RuntimeError(f"{cmd} did not start (exit {proc.wait()})")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


@dataclass
class Progress:
    """What the zones hold, polled; raw objects are headed once each (their record counts)."""

    endpoint: str
    raw_seen: dict[str, int] = field(default_factory=dict)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, raw, curated)

    def poll(self) -> tuple[int, int]:
        from lake.archive.keys import zone_prefix
        from lake.aws.clients import Clients
        from lake.curate.summary import curated_summary
        from lake.settings import Settings

        settings = Settings(endpoint_url=self.endpoint)
        clients = getattr(self, "_clients", None) or Clients(settings)
        self._clients = clients
        store = clients.store(settings.bucket)
        for obj in store.list_info(zone_prefix(settings.prefix)):
            if obj.key not in self.raw_seen:
                self.raw_seen[obj.key] = int(store.head(obj.key).metadata.get("record-count", "0") or 0)
        raw = sum(self.raw_seen.values())
        curated = curated_summary(settings, clients).changes_rows
        self.samples.append((time.time(), raw, curated))
        return raw, curated


def slowest_window(samples: list[tuple[float, int, int]], t0: float, window: int) -> float:
    """The lowest curated rate over any stretch of ``window`` changes (changes/s)."""
    points = [(t0, 0)] + [(t, c) for t, _, c in samples]
    worst = float("inf")
    j = 0
    for i in range(len(points)):
        while j < len(points) and points[j][1] - points[i][1] < window:
            j += 1
        if j == len(points):
            break
        worst = min(worst, (points[j][1] - points[i][1]) / max(points[j][0] - points[i][0], 1e-9))
    return worst if worst != float("inf") else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=100_000)
    ap.add_argument("--writers", type=int, default=2, help="writer processes (default 2)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the zones")
    ap.add_argument("--window", type=int, default=10_000, help="changes per window of the sustained rate")
    ap.add_argument("--skip-alone", action="store_true", help="don't measure DynamoDB alone")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
    py = sys.executable

    def dynamodb_alone(when: str) -> float:
        proc, endpoint = start([py, "-c", SERVE_DDB.format(repo=str(REPO))], env)
        try:
            n, t0, t1 = write_all(endpoint, args.changes, args.writers)
            print(f"DynamoDB alone ({when}): {n} changes written in {t1 - t0:.1f} s = {n / (t1 - t0):,.0f} "
                  f"changes/s (RSS {tree_rss_mb(proc.pid):.0f} MB)", flush=True)
            return n / (t1 - t0)
        finally:
            proc.kill()  # no graceful stop: freeing 100k items' objects takes long, and nothing is kept
            proc.wait()

    # Measured before and after `lake up` (the machine is shared: the mean of both is the bound).
    alone = [] if args.skip_alone else [dynamodb_alone("before")]
    with tempfile.TemporaryDirectory(prefix="bench-lake-up-") as tmp:
        proc, endpoint = start([py, "-m", "lake.cli", "up", "--port", "0", "--state-dir", f"{tmp}/state"], env)
        peak = [tree_rss_mb(proc.pid)]
        stop = threading.Event()

        def sample_rss() -> None:
            while not stop.wait(0.5):
                peak.append(tree_rss_mb(proc.pid))

        threading.Thread(target=sample_rss, daemon=True).start()
        progress = Progress(endpoint)
        try:
            print(f"lake up at {endpoint}, RSS {peak[0]:.0f} MB at start", flush=True)
            box: dict[str, Any] = {}
            writing = threading.Thread(target=lambda: box.update(r=write_all(endpoint, args.changes, args.writers)))
            writing.start()
            raw = curated = 0
            raw_done = curated_done = None
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                time.sleep(1.0)
                raw, curated = progress.poll()
                now = time.time()
                if raw_done is None and raw >= args.changes:
                    raw_done = now
                if curated >= args.changes:
                    curated_done = now
                    break
            writing.join()
            n, t0, t1 = box["r"]
            assert n == args.changes, (n, args.changes)
        finally:
            stop.set()
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    if alone:
        alone.append(dynamodb_alone("after"))
    write_rate = n / (t1 - t0)
    print(f"lake up: writers wrote {n} changes in {t1 - t0:.1f} s = {write_rate:,.0f} changes/s")
    if raw_done is None or curated_done is None:
        print(f"NOT COMPLETE after {args.timeout:.0f} s: raw {raw}, curated {curated} of {n}")
        return 1
    raw_rate, cur_rate = n / (raw_done - t0), n / (curated_done - t0)
    sustained = slowest_window(progress.samples, t0, min(args.window, n))
    print(f"raw zone complete after {raw_done - t0:.1f} s = {raw_rate:,.0f} changes/s "
          f"({progress.samples[-1][1]} records, at-least-once)")
    print(f"curated zone complete after {curated_done - t0:.1f} s = {cur_rate:,.0f} changes/s; "
          f"slowest {min(args.window, n)}-change window {sustained:,.0f} changes/s")
    if alone:
        bound = sum(alone) / len(alone)
        print(f"ratio to DynamoDB alone ({bound:,.0f} changes/s, mean of before and after): curated "
              f"{cur_rate / bound:.2f}, raw {raw_rate / bound:.2f}, lake-up writes {write_rate / bound:.2f}")
    print(f"lake up RSS: peak {max(peak):.0f} MB (process tree), start {peak[0]:.0f} MB")
    print(f"target >= {TARGET:,.0f} changes/s sustained: {'met' if sustained >= TARGET else 'MISSED'} "
          f"(sustained/target = {sustained / TARGET:.2f})")
    return 0 if sustained >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
