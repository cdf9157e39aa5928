"""Archiver encode + compress throughput, side by side with a naive baseline.

Ours: ``lake.archive.encode.plan_batch`` — the archiver's whole pure path (structural
checks of every record: coordinates, Keys rendered into the envelope key, images are
objects; build the envelope, orjson each line, group by partition, one zlib compressobj
per object at level 1, sha256 of the content). Attribute values inside images are not
interpreted: the archive keeps records verbatim (the curated consumer checks them).
Baseline: stdlib ``json.dumps`` per record, lines joined, ``gzip.compress(level=9)``
(no checks, no envelope: the naive thing, and strictly less work).

Throughput is in MB/s of record JSON (the records' own orjson size) and records/s,
best of ``--repeat`` runs, single thread. Targets: >= 100 MB/s and >= 3x the baseline.

    .venv/bin/python benchmarks/bench_archiver.py [--n 20000] [--batch 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: lake and tests

import orjson

from lake.archive.encode import gzip_lines, plan_batch
from tests.raw_zone import decode_line, iter_object_lines

TARGET_MBPS = 100.0
TARGET_RATIO = 3.0
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-05-01T00:00:00.000"


def make_item(rng: random.Random, i: int) -> dict[str, Any]:
    """A realistic ~0.5 KB order item: strings, numbers (one 38-digit), a map, a list, sets, binary."""
    return {
        "pk": {"S": f"CUSTOMER#{rng.randrange(10_000):05d}"},
        "sk": {"S": f"ORDER#{i:010d}"},
        "status": {"S": rng.choice(["NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"])},
        "amount": {"N": f"{rng.randrange(1, 100_000)}.{rng.randrange(100):02d}"},
        "ledger": {"N": "".join(rng.choice("0123456789") for _ in range(38))},
        "quantity": {"N": str(rng.randrange(1, 20))},
        "gift": {"BOOL": rng.random() < 0.1},
        "coupon": {"NULL": True},
        "tags": {"SS": rng.sample(["fragile", "express", "promo", "b2b", "eu", "us"], 3)},
        "scores": {"NS": [str(rng.randrange(100)) for _ in range(3)]},
        "thumb": {"B": base64.b64encode(rng.randbytes(24)).decode()},
        "address": {"M": {
            "street": {"S": f"{rng.randrange(1, 999)} Main Street"},
            "city": {"S": rng.choice(["Lisbon", "Oslo", "Lyon", "Austin"])},
            "zip": {"S": f"{rng.randrange(10_000, 99_999)}"},
            "geo": {"L": [{"N": f"{rng.uniform(-90, 90):.6f}"}, {"N": f"{rng.uniform(-180, 180):.6f}"}]},
        }},
        "lines": {"L": [
            {"M": {"sku": {"S": f"SKU-{rng.randrange(1000)}"}, "qty": {"N": str(rng.randrange(1, 5))}}}
            for _ in range(2)
        ]},
        "updated_by": {"S": rng.choice(["alice", "bob", "svc-import"])},
    }


def make_records(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """MODIFY records with old and new images (~1.2 KB of JSON each), one hour of changes."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        new = make_item(rng, i)
        old = dict(new, status={"S": "NEW"})
        out.append({
            "eventID": f"{rng.getrandbits(128):032x}", "eventName": "MODIFY", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1714521600 + i * 3600 // n,
                "Keys": {"pk": new["pk"], "sk": new["sk"]},
                "NewImage": new, "OldImage": old,
                "SequenceNumber": str(4421584500000000017450439091 + i),
                "SizeBytes": 900, "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": ARN,
        })
    # Through JSON and back, as Lambda hands them over: no sub-object shared between images.
    return list(orjson.loads(orjson.dumps(out)))


def ours(batch: list[dict[str, Any]]) -> int:
    plan = plan_batch(batch)
    assert not plan.rejected, plan.rejected[:1]
    return sum(len(o.body) for o in plan.objects)


def baseline(batch: list[dict[str, Any]]) -> int:
    text = "\n".join(json.dumps(r) for r in batch) + "\n"
    return len(gzip.compress(text.encode(), compresslevel=9))


def measure(fn: Callable[[list[dict[str, Any]]], int], batches: list[list[dict[str, Any]]],
            repeat: int) -> tuple[float, int]:
    best = float("inf")
    out = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = sum(fn(b) for b in batches)
        best = min(best, time.perf_counter() - t0)
    return best, out


def check_round_trip(batch: list[dict[str, Any]]) -> None:
    plan = plan_batch(batch)
    back = [decode_line(x)[1] for o in plan.objects for x in iter_object_lines(o.body)]
    assert back == batch, "archived lines do not parse back to the input records"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="records (default 20000)")
    ap.add_argument("--batch", type=int, default=1_000, help="records per Lambda batch (default 1000)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per contender; the best counts")
    args = ap.parse_args(argv)

    records = make_records(args.n)
    batches = [records[i:i + args.batch] for i in range(0, len(records), args.batch)]
    check_round_trip(batches[0])
    json_mb = sum(len(orjson.dumps(r)) for r in records) / 1e6
    print(f"{args.n} records in batches of {args.batch}, {json_mb:.1f} MB of record JSON "
          f"({json_mb * 1e6 / args.n:.0f} B/record)")

    rows = {}
    for name, fn in (("lake: check + encode + gzip L1", ours),
                     ("baseline: json.dumps + gzip L9", baseline)):
        secs, size = measure(fn, batches, args.repeat)
        rows[name] = secs
        print(f"  {name:38s} {json_mb / secs:8.1f} MB/s  {args.n / secs:10.0f} rec/s  "
              f"{size / 1e6:6.2f} MB gz ({size / (json_mb * 1e6):.1%})")

    # For the breakdown: compression alone, on the same JSON (the floor under the lake path).
    text = b"\n".join(orjson.dumps(r) for r in records[: args.batch * 5])
    for level in (1, 6):
        t0 = time.perf_counter()
        size = len(gzip_lines([text], level)[0])
        secs = time.perf_counter() - t0
        print(f"  gzip level {level}: {len(text) / secs / 1e6:7.1f} MB/s, {size / len(text):.1%} of the JSON")

    mbps = json_mb / rows["lake: check + encode + gzip L1"]
    ratio = rows["baseline: json.dumps + gzip L9"] / rows["lake: check + encode + gzip L1"]
    print(f"  ratio lake/baseline: {ratio:.1f}x   "
          f"targets: >= {TARGET_MBPS:.0f} MB/s and >= {TARGET_RATIO:.0f}x, on the full lake path")
    ok = mbps >= TARGET_MBPS and ratio >= TARGET_RATIO
    print("  PASS" if ok else f"  FAIL: target missed ({mbps:.1f} MB/s, {ratio:.1f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
