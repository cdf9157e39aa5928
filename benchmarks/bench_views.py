"""audit_trail and current_state over N changes: the local engine (DuckDB over pyarrow
datasets on the embedded S3, same Athena SQL) vs an awswrangler read + pandas baseline
computing the same results, on the same curated lake, in two layouts measured side by side:

- streamed: the layout the consumer really writes, one small file per batch and partition
  (batches of 160 to 500 changes, as Kinesis delivers them);
- compacted: after the Glue jobs' compaction, files of up to 100,000 rows.

Target: the local engine >= 5x the baseline on both layouts. Also reported: ``count(*)``
over the table (the cost of opening every file).

    .venv/bin/python benchmarks/bench_views.py [--changes N] [--layout streamed|compacted|both] [--target 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: lake and tests.synthetic

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from lake.aws.clients import Clients
from lake.aws.storage import s3_filesystem
from lake.local.embedded import EmbeddedAWS
from lake.query.jsontext import members
from lake.query.local import LocalEngine
from lake.settings import Settings
from tests.synthetic import curated_table, generate, redeliver, register_changes, write_lake

LAYOUTS = ("streamed", "compacted")


def baseline(settings: Settings, clients: Clients, path: str) -> tuple[int, int, int]:
    """awswrangler read + pandas: dedupe, attribute diffs (exact JSON text), latest state."""
    import awswrangler as wr

    wr.config.s3_endpoint_url = settings.endpoint_url
    df = wr.s3.read_parquet(path, dataset=True, boto3_session=clients.session)
    df = df.sort_values(["shard_id", "sequence_number"]).drop_duplicates("event_id", keep="first")
    # audit trail: one row per changed attribute
    old = df["old_image"].map(lambda d: members(d) if isinstance(d, str) else {})
    new = df["new_image"].map(lambda d: members(d) if isinstance(d, str) else {})
    ex = df[["table_name", "key", "event_time", "event_name", "is_ttl_delete", "user_identity"]].assign(
        attribute=df["changed_attributes"], _old=old, _new=new).explode("attribute")
    ex = ex[ex["attribute"].notna()]
    ex["old_value"] = [o.get(a) for o, a in zip(ex["_old"], ex["attribute"], strict=True)]
    ex["new_value"] = [n.get(a) for n, a in zip(ex["_new"], ex["attribute"], strict=True)]
    actor = [(n.get(settings.actor_attribute) or "").strip('"') or None for n in ex["_new"]]
    ex["actor"] = pd.Series(actor, index=ex.index).fillna(ex["user_identity"])
    audit = ex.drop(columns=["_old", "_new"])
    # current state: newest shard per key, then highest sequence number; deleted keys dropped
    df["shard_last_time"] = df.groupby(["table_name", "key", "shard_id"])["event_time"].transform("max")
    latest = df.sort_values(["shard_last_time", "shard_id", "sequence_number"]).groupby(
        ["table_name", "key"], sort=False).tail(1)
    current = latest[latest["event_name"] != "REMOVE"]
    checksum = int(audit["new_value"].fillna("").str.len().sum())
    return len(audit), len(current), checksum


def local(settings: Settings, clients: Clients) -> tuple[int, int, int]:
    engine = LocalEngine(settings, clients)
    audit = engine.query("SELECT * FROM audit_trail")
    current = engine.query("SELECT * FROM current_state")
    checksum = sum(len(v) for v in audit.column("new_value").to_pylist() if v is not None)
    engine.close()
    return audit.num_rows, current.num_rows, checksum


def write_streamed(table: pa.Table, filesystem: pafs.FileSystem, base: str, seed: int = 5) -> tuple[list[str], int]:
    """The consumer's layout: the deliveries in arrival order, cut into batches of 160-500
    changes; each batch writes one file per (table_name, dt) partition it touches."""
    rng = random.Random(seed)
    parts: set[str] = set()
    files = 0
    offset = 0
    while offset < table.num_rows:
        size = rng.randint(160, 500)
        batch = table.slice(offset, size)
        keys = pc.binary_join_element_wise(batch.column("table_name"), batch.column("dt"), "/")
        for key in pc.unique(keys).to_pylist():
            tname, day = key.split("/")
            group = batch.filter(pc.equal(keys, key))
            directory = f"{base}/table_name={tname}/dt={day}"
            if directory not in parts:
                filesystem.create_dir(directory, recursive=True)
                parts.add(directory)
            pq.write_table(group.drop_columns(["table_name", "dt"]), f"{directory}/batch-{offset:09d}.parquet",
                           filesystem=filesystem, compression="zstd")
            files += 1
        offset += size
    return sorted(parts), files


@dataclass
class Figures:
    layout: str
    files: int
    t_local: float
    t_base: float
    t_count: float
    ok: bool

    @property
    def ratio(self) -> float:
        return self.t_base / self.t_local


def measure(aws: EmbeddedAWS, layout: str, table: pa.Table, n_changes: int) -> Figures:
    settings = Settings.resolve({"endpoint_url": aws.endpoint_url, "prefix": layout,
                                 "glue_database": f"lake_{layout}"}, environ={}, config_path=None)
    clients = Clients(settings)
    base = f"{settings.bucket}/{settings.zone_prefix('curated')}changes"
    filesystem = s3_filesystem(settings)
    t0 = time.perf_counter()
    if layout == "streamed":
        parts, files = write_streamed(table, filesystem, base)
    else:
        parts = write_lake(table, filesystem, base, "compacted", rows_per_file=100_000)
        files = sum(1 for info in filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
                    if info.path.endswith(".parquet"))
    pairs = sorted({(p.rsplit("/", 2)[-2].split("=", 1)[1], p.rsplit("/", 1)[-1].split("=", 1)[1]) for p in parts})
    register_changes(clients.catalog(settings.glue_database), f"s3://{base}/", pairs)
    print(f"[{layout}] {files:,} files in {len(pairs)} partitions (written in {time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    engine = LocalEngine(settings, clients)
    counted = engine.query("SELECT count(*) AS n FROM changes").column("n")[0].as_py()
    t_count = time.perf_counter() - t0
    engine.close()
    t0 = time.perf_counter()
    got = local(settings, clients)
    t_local = time.perf_counter() - t0
    t0 = time.perf_counter()
    want = baseline(settings, clients, f"s3://{base}/")
    t_base = time.perf_counter() - t0
    ok = got == want and counted == table.num_rows
    print(f"[{layout}] count(*):                  {t_count:7.2f} s  ({counted:,} rows; "
          f"{1000 * t_count / max(files, 1):.2f} ms per file)")
    print(f"[{layout}] local engine (DuckDB):      {t_local:7.2f} s  audit rows {got[0]:,}  current {got[1]:,}")
    print(f"[{layout}] awswrangler + pandas:       {t_base:7.2f} s  audit rows {want[0]:,}  current {want[1]:,}")
    print(f"[{layout}] speed-up: {t_base / t_local:.1f}x; {n_changes / t_local:,.0f} changes/s locally")
    if not ok:
        print(f"[{layout}] MISMATCH: local {got} (count {counted:,}) != baseline {want} ({table.num_rows:,} rows)")
    return Figures(layout, files, t_local, t_base, t_count, ok)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=1_000_000)
    ap.add_argument("--layout", choices=(*LAYOUTS, "both"), default="both")
    ap.add_argument("--target", type=float, default=5.0)
    args = ap.parse_args()
    layouts = LAYOUTS if args.layout == "both" else (args.layout,)

    t0 = time.perf_counter()
    unique = generate(args.changes, keys_per_table=max(100, args.changes // 8), seed=1, steps=(0, 1, 2, 5))
    dupes = redeliver(unique, fraction=0.05)
    # arrival order: the redelivered copies come in later batches, as in the pipeline
    table = pa.concat_tables([curated_table(unique), curated_table(dupes)])
    print(f"lake: {len(unique):,} changes + {len(dupes):,} duplicates (generated in {time.perf_counter() - t0:.1f} s)")

    figures = []
    with EmbeddedAWS(port=0) as aws:
        Clients(Settings.resolve({"endpoint_url": aws.endpoint_url}, environ={}, config_path=None)).s3.create_bucket(
            Bucket=Settings().bucket)
        for layout in layouts:
            figures.append(measure(aws, layout, table, args.changes))

    print()
    print(f"{'layout':10} {'files':>8} {'count(*)':>9} {'local':>8} {'baseline':>9} {'ratio':>6}")
    for f in figures:
        print(f"{f.layout:10} {f.files:8,} {f.t_count:8.2f}s {f.t_local:7.2f}s {f.t_base:8.2f}s {f.ratio:5.1f}x")
    failed = [f for f in figures if not f.ok]
    missed = [f for f in figures if f.ratio < args.target]
    if failed:
        print("MISMATCH on " + ", ".join(f.layout for f in failed))
    if missed:
        print(f"TARGET {args.target:.1f}x MISSED on " + ", ".join(f.layout for f in missed))
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
