"""One TTL sweeper pass of the embedded AWS: the expiry index vs listing every item (the sweeper
before issue 11), side by side on the same table, with a few items due each pass.

For each table size, each pass first writes ``--due`` items whose TTL has passed (the rest of the
table expires in an hour), then times one pass of each sweeper. Target: the indexed pass does not
grow with the table (its time at the largest size within 3x of the smallest) and is >= 10x faster
than the listing pass at 20k items.

    .venv/bin/python benchmarks/bench_ttl.py [--sizes 20000,100000] [--due 10] [--passes 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root

from lake.local.embedded import ACCOUNT_ID, EmbeddedAWS, sweep_ttl

REGION = "us-east-1"


def listing_pass(table: Any, backend: Any, now: float) -> int:
    """The sweeper before the index: every item of the table, sorted by moto, each pass."""
    attr = table.ttl["AttributeName"]
    expired = 0
    for item in list(table.all_items()):
        value = item.attrs.get(attr)
        if value is None or value.type != "N":
            continue
        try:
            expires = Decimal(value.value)
        except InvalidOperation:
            continue
        if expires > Decimal(str(now)):
            continue
        key = {table.hash_key_attr: item.hash_key.to_json()}
        if table.range_key_attr is not None and item.range_key is not None:
            key[table.range_key_attr] = item.range_key.to_json()
        backend.delete_item(table.name, key)
        expired += 1
    return expired


def make_table(aws: EmbeddedAWS, name: str, size: int, now: float) -> Any:
    import boto3
    from moto.dynamodb.models import dynamodb_backends

    ddb = boto3.client("dynamodb", endpoint_url=aws.endpoint_url, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    backend = dynamodb_backends[ACCOUNT_ID][REGION]
    for i in range(size):
        backend.put_item(name, {"pk": {"S": f"k#{i % 1000}"}, "sk": {"S": str(i)},
                                "ttl": {"N": str(int(now) + 3600)}, "v": {"S": "x" * 40}})
    return backend.get_table(name), backend


def add_due(backend: Any, name: str, n: int, tag: str, now: float) -> None:
    for i in range(n):
        backend.put_item(name, {"pk": {"S": f"due#{tag}"}, "sk": {"S": str(i)}, "ttl": {"N": str(int(now) - 1)}})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--due", type=int, default=10)
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with EmbeddedAWS(port=0) as aws:
        for size in sizes:
            now = time.time()
            name = f"ttl_{size}"
            table, backend = make_table(aws, name, size, now)
            sweep_ttl(REGION, now=now)  # the index's one listing, at start
            listing, indexed = [], []
            for p in range(args.passes):
                add_due(backend, name, args.due, f"l{p}", now)
                t0 = time.perf_counter()
                assert listing_pass(table, backend, now) == args.due
                listing.append(time.perf_counter() - t0)
                add_due(backend, name, args.due, f"i{p}", now)
                t0 = time.perf_counter()
                (r,) = [r for r in sweep_ttl(REGION, now=now) if r.table == name]
                indexed.append(time.perf_counter() - t0)
                assert r.expired == args.due, r
            backend.delete_table(name)
            rows.append((size, statistics.median(listing), statistics.median(indexed), r.examined))
    print(f"{'items':>8} {'listing pass':>14} {'indexed pass':>14} {'examined':>9} {'speed-up':>9}")
    for size, lst, idx, examined in rows:
        print(f"{size:>8} {lst * 1000:>12.1f}ms {idx * 1000:>12.3f}ms {examined:>9} {lst / idx:>8.0f}x")
    small, large = rows[0], rows[-1]
    flat = large[2] <= 3 * small[2] + 0.001
    fast = small[1] / small[2] >= 10
    print(f"indexed pass at {large[0]} items / at {small[0]}: {large[2] / small[2]:.2f}x "
          f"({'flat' if flat else 'GROWS'}); speed-up at {small[0]}: {small[1] / small[2]:.0f}x")
    return 0 if flat and fast else 1


if __name__ == "__main__":
    sys.exit(main())
