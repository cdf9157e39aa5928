"""Replay throughput: archived raw objects → serialised Lambda event payloads.

Input: gzip JSON-lines objects written by the real encoder (``lake.archive.encode``), held
as **in-memory bytes** (``MemoryObjectStore``), so neither S3 nor a disk is what is measured.
Output: a no-op target (``null:``) that receives each batch's serialised payload.

Side by side on the same objects in one run:

* ``lake.replay``: envelope-only selection (table/key/time/event; the envelopes read by one
  regex pass per object and selected column-wise, records never parsed), record bytes
  spliced into the payload, stream ordering/dedupe, checkpointing off;
* naive baseline: ``json.loads`` every line, filter on the parsed record, ``json.dumps`` per
  batch (no ordering work at all, so the comparison flatters the baseline);
* and, for the record, both with a Lambda filter pattern (which needs the parsed record).

Targets: >= 100k events/s and >= 10x the baseline for the envelope-only selection.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lake.archive.encode import plan_batch
from lake.archive.keys import RawObjectKey
from lake.aws.storage import MemoryObjectStore
from lake.replay import ReplayOptions, Selection, replay
from lake.replay.targets import NullSender, Target
from lake.settings import Settings
from tests.replay_handlers import history

TARGET_EPS, TARGET_RATIO = 100_000, 10.0


def build_archive(n: int) -> MemoryObjectStore:
    items = max(1, n // 20)
    records = history("orders", items=items, changes=n // items, seed=1, step_s=2)
    store: dict[str, bytes] = {}
    for i in range(0, len(records), 1000):  # Lambda batches of 1000
        for obj in plan_batch(records[i:i + 1000]).objects:
            store[obj.key.render()] = obj.body
    return MemoryObjectStore(store)


def naive(store: MemoryObjectStore, batch_size: int, keep: Callable[[dict], bool]) -> tuple[int, int]:
    """The obvious implementation: parse every line, filter, dump each batch."""
    events = nbytes = 0
    batch: list[dict] = []
    for key in sorted(store.objects):
        RawObjectKey.parse(key)
        for line in gzip.decompress(store.objects[key]).splitlines():
            doc = json.loads(line)
            if keep(doc):
                batch.append(doc["record"])
                if len(batch) == batch_size:
                    nbytes += len(json.dumps({"Records": batch}).encode())
                    events += len(batch)
                    batch = []
    if batch:
        nbytes += len(json.dumps({"Records": batch}).encode())
        events += len(batch)
    return events, nbytes


def ours(store: MemoryObjectStore, batch_size: int, selection: Selection) -> tuple[int, int]:
    sink = NullSender()
    replay(Settings(), selection, Target("null", ""), ReplayOptions(batch_size=batch_size, checkpoint=False),
           store=store, sender=sink)
    return sink.events, sink.bytes


def best_of_interleaved(fns: list[Callable[[], tuple[int, int]]], repeat: int) -> list[tuple[float, int]]:
    """Best time of each contender over ``repeat`` rounds, the contenders taking turns within a
    round, so a load spike on a shared machine hits both sides rather than one."""
    best = [float("inf")] * len(fns)
    events = [0] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            events[i], _ = fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return list(zip(best, events, strict=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="archived changes (default 100000)")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t = time.perf_counter()
    store = build_archive(args.n)
    total = sum(len(gzip.decompress(b).splitlines()) for b in store.objects.values())
    print(f"archive: {total} changes in {len(store.objects)} gzip objects, in memory "
          f"({sum(map(len, store.objects.values())) / 1e6:.1f} MB) built in {time.perf_counter() - t:.1f}s")

    since = "2024-05-01T00:00:00Z"
    sel_env = Selection.build(tables=["orders"], event_names=["MODIFY", "REMOVE"], since=since)
    since_us = sel_env.since_us or 0

    def keep_env(doc: dict) -> bool:
        lake = doc["lake"]
        return lake["table"] == "orders" and lake["event"] in ("MODIFY", "REMOVE") and lake["t"] >= since_us

    pattern = {"dynamodb": {"NewImage": {"status": {"S": ["paid", "late"]}}}}
    sel_pat = Selection.build(tables=["orders"], filters=[pattern])

    def keep_pat(doc: dict) -> bool:
        img = doc["record"]["dynamodb"].get("NewImage") or {}
        return img.get("status", {}).get("S") in ("paid", "late")

    rows = []
    failed = False
    for label, sel, keep, gated in (("envelope selection (table+event+time)", sel_env, keep_env, True),
                                    ("Lambda filter pattern (parses records)", sel_pat, keep_pat, False)):
        (t_ours, n_ours), (t_base, n_base) = best_of_interleaved(
            [functools.partial(ours, store, args.batch_size, sel),
             functools.partial(naive, store, args.batch_size, keep)], args.repeat)
        if n_ours != n_base:
            print(f"MISMATCH {label}: replay selected {n_ours}, baseline {n_base}")
            failed = True
        eps, base_eps = total / t_ours, total / t_base
        ratio = eps / base_eps
        rows.append((label, n_ours, eps, base_eps, ratio))
        if gated and (eps < TARGET_EPS or ratio < TARGET_RATIO):
            failed = True
    print(f"{'case':42} {'selected':>9} {'replay ev/s':>12} {'naive ev/s':>12} {'ratio':>7}")
    for label, n, eps, base_eps, ratio in rows:
        print(f"{label:42} {n:>9} {eps:>12,.0f} {base_eps:>12,.0f} {ratio:>6.1f}x")
    print(f"(events/s = archived changes scanned per second, best of {args.repeat}; "
          f"target >= {TARGET_EPS:,} ev/s and >= {TARGET_RATIO:.0f}x on the envelope selection)")
    print("PASS" if not failed else "FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
