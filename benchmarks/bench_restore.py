"""Restoring a saved local lake (issue 11: a lake of 100k changes restores in < 10 s).

Runs the whole pipeline on a persistent embedded lake (``lake up``'s state directory) for
``--changes`` changes of the demo workload (varied items, inserts, updates, deletes), stops it
(the final snapshot), then starts the embedded AWS again on the same directory and times the
restore, side by side with starting an empty embedded AWS (the floor). Reports the snapshot's
size and time too, and checks that the restored lake holds every item and stream record.

    .venv/bin/python benchmarks/bench_restore.py [--changes 100000] [--target 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root

from lake.aws.clients import Clients
from lake.local.demo import count_stream_records, write_workload
from lake.local.embedded import EmbeddedAWS
from lake.local.persist import StateStore
from lake.local.up import EmbeddedLake
from lake.local.workload import generate
from lake.settings import Settings


def _count_items(clients: Clients, tables: list[str]) -> int:
    n = 0
    for t in tables:
        for page in clients.dynamodb.get_paginator("scan").paginate(TableName=t, Select="COUNT"):
            n += page["Count"]
    return n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=100_000)
    p.add_argument("--target", type=float, default=10.0, help="restore seconds not to exceed")
    p.add_argument("--timeout", type=float, default=7200)
    args = p.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    base = Settings().replace(state_dir=str(state), endpoint_url=None)

    t0 = time.perf_counter()
    lake = EmbeddedLake(base, port=0, ttl_interval_s=None, persist=True, status_interval_s=None)
    s = lake.start()
    assert lake.clients is not None and lake.provisioned is not None and lake.state is not None
    wl = generate(s.tables, args.changes, seed=17, now=time.time())
    write_workload(lake.clients, wl)
    written = time.perf_counter() - t0
    drained = lake.wait_idle(args.timeout)
    built = time.perf_counter() - t0
    tables = list(lake.provisioned.stream_arns)
    items = _count_items(lake.clients, tables)
    records = sum(count_stream_records(lake.clients, arn) for arn in lake.provisioned.stream_arns.values())
    lake.stop()
    snap = lake.state.last
    print(f"built a lake of {len(wl.ops)} changes in {built:.0f} s (written in {written:.0f} s, drained: {drained}); "
          f"final snapshot {snap.size / 2**20:.1f} MiB in {snap.seconds:.2f} s")

    t1 = time.perf_counter()
    empty = EmbeddedAWS(port=0)
    empty.start()
    floor = time.perf_counter() - t1
    empty.stop()

    t1 = time.perf_counter()
    aws = EmbeddedAWS(port=0, state=StateStore(state / "aws", co_saved=[state / "runtime"]))
    aws.start()
    restore = time.perf_counter() - t1
    clients = Clients(base.replace(endpoint_url=aws.endpoint_url))
    same_items = _count_items(clients, tables) == items
    arns = [clients.dynamodb.describe_table(TableName=t)["Table"]["LatestStreamArn"] for t in tables]
    same_records = sum(count_stream_records(clients, arn) for arn in arns) == records
    aws.state = None  # no final snapshot of a lake we only looked at
    aws.stop()

    print(f"restore: {restore:.2f} s (an empty embedded AWS starts in {floor:.2f} s; "
          f"ratio {restore / floor if floor else float('inf'):.1f}x); "
          f"items {items} {'identical' if same_items else 'DIFFER'}, stream records {records} "
          f"{'identical' if same_records else 'DIFFER'}")
    ok = restore < args.target and same_items and same_records
    print(f"target: restore < {args.target:.0f} s — {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
