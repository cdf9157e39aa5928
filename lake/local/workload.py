"""A realistic, reproducible workload for a source table. Pure: no boto3.

Inserts, updates, user deletes and TTL-style expiries over many keys, as
DynamoDB-typed items, plus the ground truth (expected stream records and the
final state) computed independently of the pipeline.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from lake.settings import TableSpec
from lake.wiring import TTL_ATTRIBUTE

OpKind = Literal["put", "delete"]
STATUSES = ("pending", "paid", "packed", "shipped", "delivered", "returned")
ACTORS = ("alice", "bob", "carol", "order-service", "billing-service")


@dataclass(frozen=True)
class Op:
    """One write: a put (insert or update) or a delete, of a DynamoDB-typed item."""

    kind: OpKind
    table: str
    key: dict[str, Any]
    item: dict[str, Any] | None = None


@dataclass
class Workload:
    ops: list[Op]
    now: float  # items with expires_at <= now are due for TTL expiry
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    final: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (table, key) -> item

    @property
    def ttl_due(self) -> list[tuple[str, dict[str, Any]]]:
        """Items that exist at the end with an expiry in the past: the TTL sweeper removes them."""
        out = []
        for (table, _), item in self.final.items():
            ttl = item.get(TTL_ATTRIBUTE)
            if ttl is not None and Decimal(ttl["N"]) <= Decimal(str(self.now)):
                out.append((table, item))
        return out

    @property
    def expected_records(self) -> int:
        """Stream records the workload produces once the TTL sweeper has run."""
        return self.inserts + self.updates + self.deletes + len(self.ttl_due)


def _key_text(key: dict[str, Any]) -> str:
    return "|".join(f"{k}={next(iter(v.values()))}" for k, v in sorted(key.items()))


def _money(rng: random.Random) -> str:
    return str(Decimal(rng.randint(100, 10_000_000)) / 100)


def _item(rng: random.Random, spec: TableSpec, key: dict[str, Any], version: int, now: float,
          expire: bool) -> dict[str, Any]:
    lines = [
        {"M": {"sku": {"S": f"SKU-{rng.randint(1, 500):04d}"}, "qty": {"N": str(rng.randint(1, 9))},
               "price": {"N": _money(rng)}}}
        for _ in range(rng.randint(1, 4))
    ]
    item: dict[str, Any] = dict(key)
    item.update({
        "status": {"S": rng.choice(STATUSES)},
        "amount": {"N": _money(rng)},
        "version": {"N": str(version)},
        "updated_by": {"S": rng.choice(ACTORS)},
        "lines": {"L": lines},
        "gift": {"BOOL": rng.random() < 0.2},
    })
    if rng.random() < 0.5:
        item["tags"] = {"SS": sorted(rng.sample(["priority", "fragile", "b2b", "promo", "eu"], rng.randint(1, 3)))}
    if rng.random() < 0.1:
        item["note"] = {"NULL": True}
    if rng.random() < 0.05:
        item["signature"] = {"B": "c2lnbmVk"}
    if expire:
        item[TTL_ATTRIBUTE] = {"N": str(int(now) - rng.randint(1, 3600))}
    elif rng.random() < 0.3:
        item[TTL_ATTRIBUTE] = {"N": str(int(now) + 30 * 86400)}
    return item


def _new_key(rng: random.Random, spec: TableSpec, n: int) -> dict[str, Any]:
    def value(typ: str, text: str, num: int) -> dict[str, str]:
        return {"N": str(num)} if typ == "N" else {"B": ""} if typ == "B" else {"S": text}

    key = {spec.hash_key: value(spec.hash_type, f"CUSTOMER#{n // 3:05d}", n // 3)}
    if spec.range_key:
        key[spec.range_key] = value(spec.range_type, f"ORDER#{n:06d}", n)
    return key


def generate(tables: Sequence[TableSpec], changes: int, seed: int = 7, now: float = 1_700_000_000.0,
             ttl_share: float = 0.08, delete_share: float = 0.12) -> Workload:
    """``changes`` writes spread over ``tables``: roughly 1 key per 4 changes.

    A share of updates sets ``expires_at`` in the past (the TTL sweeper then
    removes the item) and a share deletes; the rest insert or update.
    """
    if changes < 0:
        raise ValueError("changes must be >= 0")
    rng = random.Random(seed)
    wl = Workload(ops=[], now=now)
    live: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tables}
    next_id = 0
    versions: dict[tuple[str, str], int] = {}
    for _ in range(changes):
        spec = rng.choice(tables)
        keys = live[spec.name]
        r = rng.random()
        if not keys or r < 0.25:
            key = _new_key(rng, spec, next_id)
            next_id += 1
            kt = (spec.name, _key_text(key))
            if kt in wl.final:
                continue
            versions[kt] = 1
            item = _item(rng, spec, key, 1, now, expire=False)
            wl.ops.append(Op("put", spec.name, key, item))
            wl.final[kt] = item
            keys.append(key)
            wl.inserts += 1
            continue
        key = rng.choice(keys)
        kt = (spec.name, _key_text(key))
        if r < 0.25 + delete_share:
            wl.ops.append(Op("delete", spec.name, key))
            del wl.final[kt]
            keys.remove(key)
            wl.deletes += 1
            continue
        versions[kt] += 1
        item = _item(rng, spec, key, versions[kt], now, expire=r > 1 - ttl_share)
        wl.ops.append(Op("put", spec.name, key, item))
        wl.final[kt] = item
        wl.updates += 1
    return wl


def write_batches(ops: Sequence[Op], size: int = 25) -> Iterator[tuple[str, list[Op]]]:
    """Group ops into BatchWriteItem requests: one table, ≤25 ops, no key twice (DynamoDB refuses that).

    Order is kept: a batch is flushed as soon as the next op can't join it.
    """
    table: str | None = None
    batch: list[Op] = []
    seen: set[str] = set()
    for op in ops:
        kt = _key_text(op.key)
        if batch and (op.table != table or kt in seen or len(batch) >= size):
            yield table or "", batch
            batch, seen = [], set()
        table = op.table
        batch.append(op)
        seen.add(kt)
    if batch:
        yield table or "", batch
