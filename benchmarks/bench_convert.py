"""DynamoDB stream records → Parquet: the curate converter against its baselines, side by side.

    .venv/bin/python benchmarks/bench_convert.py [--records N] [--batch B] [--rss]

Same input for all (JSON lines of DynamoDB stream records, in memory):
  ours      the consumer's conversion (lake.curate.columnar): both tables, ``changes``
            and ``<table>_history``, to Parquet bytes per partition (columnar.convert +
            parquet.encode, as lake.curate.curate does between the Kinesis payloads and S3)
  ours history-only
            the history table alone (convert without the image texts of ``changes``):
            like for like with (a), which builds one table of the new images; information
  per-rec   the per-record reference path (orjson → decode → column builders), same output
  (a)       boto3 TypeDeserializer per value → pandas DataFrame → pyarrow Parquet
  (b)       pyarrow.json.read_json on the same bytes (raw parse rate, no Parquet)
Targets: ours (both tables) ≥ 10× (a) and ≥ 0.5× (b) in records/s. Both (a) and ours parse
the JSON, so ours/(a) cannot exceed (b)/(a), which is 6-12x on a 2-core machine depending on
load: ≥ 10× (a) means converting nearly as fast as read_json alone parses. ours, its
history-only variant and (b) are timed in turns (best of 5, after one warm-up call each), so
that load elsewhere on a shared machine hits them alike. ``--rss`` runs a dedicated
subprocess converting ``--records`` (default 1,000,000) in streamed batches and checks
peak RSS ≤ 512 MB. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lake.curate import columnar, parquet
from lake.curate.decode import Coordinates, decode, paused_gc
from lake.curate.tables import HistorySchema, changes_table, history_table, parquet_bytes

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
RSS_LIMIT_MB = 512


def make_lines(n: int, seed: int = 1) -> list[bytes]:
    """Realistic order-change records: strings, ints, decimals, bool, set, map, list, binary."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        keys = {"pk": {"S": f"CUSTOMER#{i % 5000}"}, "sk": {"S": f"ORDER#{i}"}}
        img = {**keys,
               "status": {"S": rng.choice(["NEW", "PAID", "SHIPPED"])},
               "qty": {"N": str(rng.randint(1, 50))},
               "amount": {"N": f"{rng.randint(0, 99999)}.{rng.randint(0, 99):02d}"},
               "paid": {"BOOL": rng.random() < 0.5},
               "tags": {"SS": ["gift", "prime"][: rng.randint(1, 2)]},
               "address": {"M": {"city": {"S": "Lyon"}, "zip": {"S": "69001"}}},
               "lines": {"L": [{"M": {"sku": {"S": "A1"}, "n": {"N": "2"}}}]},
               "sig": {"B": base64.b64encode(rng.randbytes(8)).decode()},
               "updated_by": {"S": "svc-orders"}}
        rec = {"eventID": f"{i:032x}", "eventName": "MODIFY", "eventVersion": "1.1",
               "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
               "dynamodb": {"ApproximateCreationDateTime": 1_700_000_000 + i // 100, "Keys": keys,
                            "NewImage": img, "SequenceNumber": str(10**20 + i), "SizeBytes": 300,
                            "StreamViewType": "NEW_IMAGE"},
               "eventSourceARN": ARN}
        out.append(orjson.dumps(rec))
    return out


def ours(lines: list[bytes]) -> int:
    """What lake.curate.curate does with a batch's payloads, minus the S3/Glue calls."""
    n = len(lines)
    with paused_gc():
        converted = columnar.convert(lines, [None] * n, ["shardId-000000000000"] * n, [str(i) for i in range(n)])
        return sum(len(p.changes) + len(p.history)
                   for part in converted.tables for p in parquet.encode(part, HistorySchema()).partitions)


def ours_history(lines: list[bytes]) -> int:
    """Like for like with (a), which builds one table of the new images: our history table
    alone (convert without the image texts of ``changes``, history columns, Parquet)."""
    n = len(lines)
    with paused_gc():
        converted = columnar.convert(lines, [None] * n, ["shardId-000000000000"] * n, [str(i) for i in range(n)],
                                     images=False)
        size = 0
        for part in converted.tables:
            size += len(parquet_bytes(part.history(HistorySchema()).table))
    return size


def per_record(lines: list[bytes]) -> int:
    coords = Coordinates("shardId-000000000000", "0")
    with paused_gc():  # as lake.curate.curate does around a batch
        changes = [decode("orders", orjson.loads(line), coords) for line in lines]
        size = len(parquet_bytes(history_table(changes, HistorySchema()).table))
        size += len(parquet_bytes(changes_table(changes)))
    return size


def baseline_boto3_pandas(lines: list[bytes]) -> int:
    import pandas as pd
    from boto3.dynamodb.types import Binary, TypeDeserializer

    de = TypeDeserializer()
    rows = []
    for line in lines:
        rec = orjson.loads(line)
        img = rec["dynamodb"]["NewImage"]
        # Lambda's JSON carries B as base64 text; the deserializer wants bytes
        item = {k: de.deserialize({"B": base64.b64decode(v["B"])} if "B" in v else v) for k, v in img.items()}
        # pandas/pyarrow cannot store Decimal sets, Binary or nested Decimals as is: stringify
        # what Parquet cannot take, as such a pipeline has to
        for k, v in item.items():
            if isinstance(v, (set, dict, list)):
                item[k] = str(v)
            elif isinstance(v, Binary):
                item[k] = v.value
        item["event_id"] = rec["eventID"]
        item["event_name"] = rec["eventName"]
        rows.append(item)
    df = pd.DataFrame(rows)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df), sink, compression="zstd")
    return sink.tell()


def baseline_read_json(blob: bytes) -> int:
    return int(pajson.read_json(io.BytesIO(blob)).num_rows)


def rate(fn: Callable[[], object], n: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def interleaved(fns: dict[str, Callable[[], object]], n: int, rounds: int = 5) -> dict[str, float]:
    """Best rate of each over ``rounds``, taking turns so that a burst of load elsewhere on a
    shared machine hits all of them alike; one untimed warm-up call each (thread pools start,
    a long-lived consumer process pays that once)."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return {name: n / secs for name, secs in best.items()}


def batches(total: int, size: int) -> Iterator[list[bytes]]:
    done = 0
    template = make_lines(size)
    while done < total:
        k = min(size, total - done)
        yield template[:k]  # same shapes; a real consumer sees one Lambda batch at a time
        done += k


def rss_run(total: int, batch: int) -> int:
    t = time.perf_counter()
    for b in batches(total, batch):
        ours(b)
    secs = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"converted {total:,} records in batches of {batch:,}: {total / secs:,.0f} rec/s, "
          f"peak RSS {peak_mb} MB (limit {RSS_LIMIT_MB} MB)")
    return 0 if peak_mb <= RSS_LIMIT_MB else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", "--n", type=int, default=None)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--rss", action="store_true", help="dedicated peak-RSS run (subprocess)")
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        return rss_run(args.records or 1_000_000, args.batch)
    if args.rss:
        cmd = [sys.executable, __file__, "--rss-child", "--records", str(args.records or 1_000_000),
               "--batch", str(args.batch)]
        return subprocess.call(cmd)

    n = args.records or 20_000
    lines = make_lines(n)
    blob = b"\n".join(lines) + b"\n"
    print(f"{n:,} stream records, {len(blob) / n:.0f} bytes each")
    r_ref = rate(lambda: per_record(lines), n, repeat=1)
    r_a = rate(lambda: baseline_boto3_pandas(lines), n, repeat=2)
    fast = interleaved({"ours": lambda: ours(lines), "hist": lambda: ours_history(lines),
                        "b": lambda: baseline_read_json(blob)}, n)
    r_ours, r_hist, r_b = fast["ours"], fast["hist"], fast["b"]
    print(f"  ours     both tables, Parquet    {r_ours:>12,.0f} rec/s")
    print(f"  ours     history table only      {r_hist:>12,.0f} rec/s  (like for like with (a))")
    print(f"  per-rec  reference path          {r_ref:>12,.0f} rec/s  (information)")
    print(f"  (a)      TypeDeserializer→pandas {r_a:>12,.0f} rec/s")
    print(f"  (b)      pyarrow.json.read_json  {r_b:>12,.0f} rec/s")
    ra, rb = r_ours / r_a, r_ours / r_b
    print(f"  ratio ours/(a) = {ra:.1f}x (target ≥ 10x)   ours/(b) = {rb:.2f}x (target ≥ 0.5x)")
    print(f"  history only: /(a) = {r_hist / r_a:.1f}x   /(b) = {r_hist / r_b:.2f}x   (information)")
    # (a) parses too: ours/(a) ≥ 10x needs ours within (b)/(a)/10 of read_json's own rate
    print(f"  (b)/(a) = {r_b / r_a:.1f}x: the most any reader of the JSON can be over (a) "
          f"without beating read_json itself")
    ok = ra >= 10 and rb >= 0.5
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
