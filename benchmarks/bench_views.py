"""audit_trail and current_state over N changes: the local engine (DuckDB over pyarrow
datasets on the embedded S3, same Athena SQL) vs an awswrangler read + pandas baseline
computing the same results, on the same curated lake. Target: >= 5x.

    .venv/bin/python benchmarks/bench_views.py [--changes N] [--target 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: lake and tests.synthetic

import pandas as pd

from lake.aws.clients import Clients
from lake.aws.storage import s3_filesystem
from lake.local.embedded import EmbeddedAWS
from lake.query.jsontext import members
from lake.query.local import LocalEngine
from lake.settings import Settings
from tests.synthetic import curated_table, generate, redeliver, register_changes, write_lake


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
    return audit.num_rows, current.num_rows, checksum


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--changes", type=int, default=100_000)
    ap.add_argument("--target", type=float, default=5.0)
    args = ap.parse_args()

    with EmbeddedAWS(port=0) as aws:
        settings = Settings.resolve({"endpoint_url": aws.endpoint_url}, environ={}, config_path=None)
        clients = Clients(settings)
        clients.s3.create_bucket(Bucket=settings.bucket)
        t0 = time.perf_counter()
        unique = generate(args.changes, keys_per_table=max(100, args.changes // 8), seed=1, steps=(0, 1, 2, 5))
        dupes = redeliver(unique, fraction=0.05)
        base = f"{settings.bucket}/{settings.zone_prefix('curated')}changes"
        fs = s3_filesystem(settings)
        parts = write_lake(curated_table(unique), fs, base, "a", rows_per_file=100_000)
        parts += write_lake(curated_table(dupes), fs, base, "b")
        pairs = sorted({tuple(x.split("=", 1)[1] for x in p.rsplit("/", 2)[-2:]) for p in parts})
        register_changes(clients.catalog(settings.glue_database), f"s3://{base}/", pairs)  # type: ignore[arg-type]
        print(f"lake: {len(unique):,} changes + {len(dupes):,} duplicates in {len(pairs)} partitions "
              f"(built in {time.perf_counter() - t0:.1f} s)")

        t0 = time.perf_counter()
        got = local(settings, clients)
        t_local = time.perf_counter() - t0
        t0 = time.perf_counter()
        want = baseline(settings, clients, f"s3://{base}/")
        t_base = time.perf_counter() - t0

    print(f"local engine (DuckDB):      {t_local:7.2f} s  audit rows {got[0]:,}  current {got[1]:,}")
    print(f"awswrangler + pandas:       {t_base:7.2f} s  audit rows {want[0]:,}  current {want[1]:,}")
    ratio = t_base / t_local
    print(f"speed-up: {ratio:.1f}x (target {args.target:.1f}x); "
          f"{args.changes / t_local:,.0f} changes/s locally")
    if got != want:
        print(f"MISMATCH: local {got} != baseline {want}")
        return 1
    if ratio < args.target:
        print("TARGET MISSED")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
