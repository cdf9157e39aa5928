"""Issue 12's jobs against a naive baseline, side by side in one run, on the embedded AWS.

* **compact**: ``lake glue compact`` (bin-packs the small files of each partition, streaming
  one input file at a time into each new file, one atomic swap per bin) vs the naive way
  (``table.scan().to_arrow()`` then ``table.overwrite(...)``: the whole table in memory,
  every file rewritten). Same table (``--files`` commits of ``--rows`` rows, one day), built
  twice under two prefixes. Reported: input MB/s, files out, and the peak RSS of the process
  that ran it (each variant runs in a fresh child process, so the peaks are its own).
* **bootstrap**: ``lake bootstrap`` (``ExportTableToPointInTime``, the export read and loaded
  20,000 items per commit) vs the naive way (a paginated ``Scan`` of the live table, one
  commit per 1 MB page). Same table of ``--items`` items. Reported: items/s.
* **backfill**: ``lake glue backfill`` from a raw zone of ``--changes`` changes into empty
  tables, streamed in chunks of 20,000 changes vs the whole range held at once (a chunk as
  large as the range: what backfill did before). Reported: changes/s and the peak RSS of the
  child process that ran it (bounded memory shows as an RSS that does not grow with the range).

    .venv/bin/python benchmarks/bench_glue.py [--files 60] [--rows 2000] [--items 20000] [--changes 60000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root

from lake.aws.catalog import IcebergMaintenance, IcebergTables
from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket, ensure_glue_database
from lake.curate.commit import commit_rows
from lake.curate.consumer import RecordRows
from lake.curate.decode import Coordinates, decode
from lake.settings import Settings

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2024-01-01T00:00:00.000"


def _settings(endpoint: str, prefix: str) -> Settings:
    return Settings.resolve({"endpoint_url": endpoint, "prefix": prefix, "glue_database": f"lake_{prefix}"},
                            environ={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
                            config_path=None)


def _record(i: int, rng: random.Random) -> dict[str, Any]:
    keys = {"pk": {"S": f"CUSTOMER#{i % 5000:05d}"}, "sk": {"S": f"ORDER#{i:08d}"}}
    new = {**keys, "status": {"S": rng.choice(["paid", "packed", "shipped"])},
           "amount": {"N": f"{rng.randint(100, 999999) / 100}"}, "version": {"N": str(rng.randint(1, 9))},
           "note": {"S": "x" * rng.randint(10, 80)}}
    return {"eventID": f"ev-{i:09d}", "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "eventSourceARN": ARN.format("orders"),
            "dynamodb": {"ApproximateCreationDateTime": 1_700_000_000 + i // 10, "Keys": keys, "NewImage": new,
                         "SequenceNumber": str(10**20 + i), "SizeBytes": 120, "StreamViewType": "NEW_AND_OLD_IMAGES"}}


def fill(settings: Settings, files: int, rows: int) -> None:
    """``files`` commits of ``rows`` changes each: the small files a stream makes."""
    clients = Clients(settings)
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_glue_database(clients, settings.glue_database)
    tables = IcebergTables(settings, clients)
    rng = random.Random(7)
    for f in range(files):
        changes = [decode("orders", _record(f * rows + i, rng), Coordinates("shardId-0", str(10**9 + f * rows + i)))
                   for i in range(rows)]
        commit_rows(tables, RecordRows("orders", changes))


def child(variant: str, endpoint: str, prefix: str, table: str) -> dict[str, Any]:
    """Run one variant here and say how long it took and this process's peak RSS."""
    settings = _settings(endpoint, prefix)
    clients = Clients(settings)
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    if variant == "compact":
        from lake.glue.compact import CompactOptions, compact

        report = compact(settings, CompactOptions(tables=("changes",)), clients)
        out.update(bytes_in=report.total("bytes_in"), files_out=report.total("files_out"))
    elif variant == "naive-compact":
        tables = IcebergTables(settings, clients)
        t = tables.load("changes")
        size = sum(f.size for f in IcebergMaintenance(tables).data_files(t))
        rows = t.scan().to_arrow()
        t.overwrite(rows)
        out.update(bytes_in=size, files_out=len(IcebergMaintenance(tables).data_files(tables.load("changes"))))
    elif variant == "bootstrap":
        from lake.glue.bootstrap import BootstrapOptions, bootstrap

        report = bootstrap(settings, BootstrapOptions(table), clients)
        out.update(items=report.tables[0].rows_out)
    elif variant == "backfill":
        from lake.glue.backfill import BackfillOptions, backfill

        chunk = int(table)
        report = backfill(settings, BackfillOptions("orders", chunk_rows=chunk), clients)
        out.update(changes=report.tables[0].rows_out)
    elif variant == "naive-scan":
        from lake.glue.export import ExportLayout, stream_record

        tables = IcebergTables(settings, clients)
        export = ExportLayout("scan", (), "FULL_EXPORT", int(time.time() * 1e6))
        n = 0
        for page in clients.dynamodb.get_paginator("scan").paginate(TableName=table):
            changes = []
            for item in page["Items"]:
                record, shard = stream_record({"Item": item}, ["pk", "sk"], export, ARN.format(table))
                changes.append(decode(table, record, Coordinates(shard, "0")))
            n += commit_rows(tables, RecordRows(table, changes)).rows
        out.update(items=n)
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def raw_zone(settings: Settings, n: int) -> None:
    """``n`` changes archived in the raw zone as the archiver writes them (batches of 1,000)."""
    from lake.archive.writer import archive_records

    clients = Clients(settings)
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_glue_database(clients, settings.glue_database)
    rng = random.Random(11)
    for start in range(0, n, 1000):
        archive_records([_record(i, rng) for i in range(start, min(n, start + 1000))], settings, clients)


def _spawn(variant: str, endpoint: str, prefix: str, table: str = "") -> dict[str, Any]:
    got = subprocess.run([sys.executable, __file__, "--child", variant, endpoint, prefix, table],
                         capture_output=True, text=True, check=False)
    if got.returncode:
        raise SystemExit(f"{variant} failed:\n{got.stderr}")
    return dict(json.loads(got.stdout.strip().splitlines()[-1]))


def _items(clients: Clients, table: str, n: int) -> None:
    ddb = clients.dynamodb
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])
    ddb.update_continuous_backups(TableName=table,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    rng = random.Random(3)
    for start in range(0, n, 25):
        items = [_record(i, rng)["dynamodb"]["NewImage"] for i in range(start, min(n, start + 25))]
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}} for it in items]})


def backfill_section(endpoint: str, changes: int) -> None:
    t0 = time.perf_counter()
    for prefix in ("chunked", "whole"):
        raw_zone(_settings(endpoint, prefix), changes)
    print(f"\nbackfill: {changes} changes archived twice in {time.perf_counter() - t0:.1f} s")
    chunked = _spawn("backfill", endpoint, "chunked", "20000")
    whole = _spawn("backfill", endpoint, "whole", str(changes))
    print(f"{'':36} {'changes':>8} {'s':>7} {'changes/s':>9} {'peak RSS MB':>11}")
    for name, r in (("lake glue backfill (chunks of 20,000)", chunked), ("the whole range at once", whole)):
        print(f"{name:36} {r['changes']:8d} {r['seconds']:7.2f} {r['changes'] / r['seconds']:9.0f} "
              f"{r['peak_rss_mb']:11.0f}")
    speed = (chunked["changes"] / chunked["seconds"]) / (whole["changes"] / whole["seconds"])
    print(f"ratio (chunked / whole): changes/s {speed:.2f}x, "
          f"peak RSS {chunked['peak_rss_mb'] / whole['peak_rss_mb']:.2f}x")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(*sys.argv[2:6])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=60, help="small files (commits) to compact")
    ap.add_argument("--rows", type=int, default=2000, help="rows per small file")
    ap.add_argument("--items", type=int, default=20000, help="items in the table to bootstrap")
    ap.add_argument("--changes", type=int, default=60000, help="changes in the raw zone to backfill (0: skip)")
    args = ap.parse_args()

    from lake.local.embedded import EmbeddedAWS

    aws = EmbeddedAWS(port=0)
    aws.start()
    try:
        endpoint = aws.endpoint_url
        t0 = time.perf_counter()
        for prefix in ("ours", "naive"):
            fill(_settings(endpoint, prefix), args.files, args.rows)
        print(f"compaction: {args.files} files x {args.rows} rows, built twice in {time.perf_counter() - t0:.1f} s")
        ours, naive = _spawn("compact", endpoint, "ours"), _spawn("naive-compact", endpoint, "naive")
        rows = [("lake glue compact", ours), ("scan + overwrite (naive)", naive)]
        print(f"{'':28} {'MB in':>8} {'s':>7} {'MB/s':>7} {'files out':>9} {'peak RSS MB':>11}")
        for name, r in rows:
            mb = r["bytes_in"] / 2**20
            print(f"{name:28} {mb:8.1f} {r['seconds']:7.2f} {mb / r['seconds']:7.2f} {r['files_out']:9d} "
                  f"{r['peak_rss_mb']:11.0f}")
        speed = (ours["bytes_in"] / ours["seconds"]) / (naive["bytes_in"] / naive["seconds"])
        print(f"ratio (ours / naive): MB/s {speed:.2f}x, "
              f"peak RSS {ours['peak_rss_mb'] / naive['peak_rss_mb']:.2f}x")

        s = _settings(endpoint, "boot")
        clients = Clients(s)
        ensure_bucket(clients, s.bucket, s.region)
        ensure_glue_database(clients, s.glue_database)
        ensure_glue_database(clients, _settings(endpoint, "scan").glue_database)
        for table in ("legacy_export", "legacy_scan"):
            _items(clients, table, args.items)
        b = _spawn("bootstrap", endpoint, "boot", "legacy_export")
        n = _spawn("naive-scan", endpoint, "scan", "legacy_scan")
        print(f"\nbootstrap: {args.items} items")
        print(f"{'':28} {'items':>8} {'s':>7} {'items/s':>9} {'peak RSS MB':>11}")
        for name, r in (("lake bootstrap (export)", b), ("Scan + commit per page", n)):
            print(f"{name:28} {r['items']:8d} {r['seconds']:7.2f} {r['items'] / r['seconds']:9.0f} "
                  f"{r['peak_rss_mb']:11.0f}")
        print(f"ratio (ours / naive): items/s {(b['items'] / b['seconds']) / (n['items'] / n['seconds']):.2f}x")
        if args.changes:
            backfill_section(endpoint, args.changes)
    finally:
        aws.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
