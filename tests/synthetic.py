"""A generated change workload and a curated lake built straight from the contract.

Test-only (the query tests and ``benchmarks/bench_views.py``): DynamoDB stream records
(Lambda's shape, with the Kinesis coordinates the fan-out would give them) over every
DynamoDB type, and the ``changes`` table of docs/CONTRACTS.md built from them with
pyarrow, written as hive partitions and registered through the catalog door. Pure
except :func:`write_lake`/:func:`register_changes`.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from lake.aws.catalog import GlueCatalog, glue_type
from lake.records import canonical_keys, event_time_us, is_ttl_delete, key_string, table_from_arn

SEQ_WIDTH = 64
ACTORS = ("alice", "bob", "carol", "billing-service")
STATUSES = ("pending", "paid", "shipped", "delivered")

CHANGES_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("event_name", pa.string()), ("event_time", pa.timestamp("us", "UTC")),
    ("sequence_number", pa.string()), ("shard_id", pa.string()), ("source_sequence_number", pa.string()),
    ("keys", pa.string()), ("key", pa.string()), ("old_image", pa.string()), ("new_image", pa.string()),
    ("changed_attributes", pa.list_(pa.string())), ("is_ttl_delete", pa.bool_()),
    ("user_identity", pa.string()), ("size_bytes", pa.int64()),
])
GLUE_COLUMNS = [(f.name, glue_type(f.type)) for f in CHANGES_SCHEMA]


@dataclass(frozen=True)
class Delivered:
    """A stream record as delivered on Kinesis: shard and (Kinesis) sequence number."""

    record: Mapping[str, Any]
    shard_id: str
    sequence_number: str


def _value(rng: random.Random, i: int) -> dict[str, Any]:
    """An item body touching every DynamoDB type, numbers included at 38 digits."""
    item: dict[str, Any] = {
        "status": {"S": rng.choice(STATUSES)},
        "qty": {"N": str(rng.randint(1, 50))},
        "amount": {"N": rng.choice([f"{rng.randint(0, 99999)}.{rng.randint(0, 99):02d}",
                                    "0.12345678901234567890123456789012345678",
                                    "99999999999999999999999999999999999999", str(rng.randint(1, 9))])},
        "updated_by": {"S": rng.choice(ACTORS)},
    }
    roll = rng.random()
    if roll < 0.3:
        item["tags"] = {"SS": sorted(rng.sample(["a", "b", "c", "gift"], 2))}
    if roll < 0.2:
        item["dims"] = {"M": {"w": {"N": str(rng.randint(1, 9))}, "fragile": {"BOOL": rng.random() < 0.5}}}
    if 0.2 < roll < 0.3:
        item["history"] = {"L": [{"S": "created"}, {"N": "1.50"}, {"NULL": True}]}
    if 0.3 < roll < 0.35:
        item["note"] = {"NULL": True}
    if 0.35 < roll < 0.4:
        item["blob"] = {"B": base64.b64encode(bytes([i % 256, 7])).decode()}
        item["sizes"] = {"NS": ["1", "2.5"]}
    return item


def generate(
    n_changes: int,
    tables: Sequence[str] = ("orders", "users"),
    keys_per_table: int | None = None,
    shards: int = 2,
    seed: int = 7,
    start: datetime = datetime(2024, 5, 1, 22, 0, tzinfo=UTC),
    steps: Sequence[int] = (0, 1, 1, 2, 5, 30, 600, 3600),
) -> list[Delivered]:
    """``n_changes`` unique changes over a few days, each with its Kinesis coordinates.

    Inserts, updates of 1-3 attributes (some removed), user deletes, TTL expiries and
    re-inserts of deleted keys; several changes of one key in the same second.
    """
    rng = random.Random(seed)
    keys_per_table = keys_per_table or max(4, n_changes // 6)
    state: dict[tuple[str, str], dict[str, Any]] = {}
    seq_by_shard = [10**20] * shards
    out: list[Delivered] = []
    t = int(start.timestamp())
    for i in range(n_changes):
        table = rng.choice(tables)
        pk = f"K{rng.randrange(keys_per_table):06d}"
        keys = {"pk": {"S": pk}, "sk": {"N": str(rng.randrange(2))}}
        k = (table, key_string(keys))
        old = state.get(k)
        identity: dict[str, str] | None = None
        if old is None:
            name = "INSERT"
            new: dict[str, Any] | None = {**keys, **_value(rng, i)}
        elif rng.random() < 0.12:
            name, new = "REMOVE", None
            if rng.random() < 0.5:
                identity = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        else:
            name = "MODIFY"
            new = dict(old)
            fresh = _value(rng, i)
            for attr in rng.sample(sorted(fresh), rng.randint(1, 3)):
                new[attr] = fresh[attr]
            for attr in ("tags", "note", "dims"):
                if attr in new and rng.random() < 0.15:
                    del new[attr]
            if rng.random() < 0.2:
                new.pop("updated_by", None)
        if new is None:
            state.pop(k, None)
        else:
            state[k] = new
        # mostly one change per second, sometimes several in the same second
        t += rng.choice(steps)  # seconds between changes
        shard = sum(map(ord, f"{table}|{k[1]}")) % shards
        seq_by_shard[shard] += rng.randint(1, 1000)
        ddb: dict[str, Any] = {
            "ApproximateCreationDateTime": t, "Keys": keys,
            "SequenceNumber": str(10**25 + i * 100), "SizeBytes": 50 + i % 400,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if old is not None:
            ddb["OldImage"] = old
        if new is not None:
            ddb["NewImage"] = new
        record: dict[str, Any] = {
            "eventID": f"ev-{seed}-{i:08d}", "eventName": name, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": ddb,
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2024-05-01T00:00:00.000",
        }
        if identity:
            record["userIdentity"] = identity
        out.append(Delivered(record, f"shardId-{shard:012d}", str(seq_by_shard[shard])))
    return out


def redeliver(changes: Sequence[Delivered], fraction: float = 0.1, seed: int = 3) -> list[Delivered]:
    """At-least-once: a copy of some changes, as a retried fan-out puts them again
    (same event, later Kinesis sequence number)."""
    rng = random.Random(seed)
    top: dict[str, int] = {}
    for d in changes:
        top[d.shard_id] = max(top.get(d.shard_id, 0), int(d.sequence_number))
    out = []
    for d in changes:
        if rng.random() < fraction:
            top[d.shard_id] += 1
            out.append(Delivered(d.record, d.shard_id, str(top[d.shard_id])))
    return out


# -- the curated rows, built from the contract ---------------------------------------

def _plain(value: Mapping[str, Any]) -> Any:
    (tag, inner), = value.items()
    if tag == "N":
        return orjson.Fragment(inner)
    if tag == "NS":
        return [orjson.Fragment(v) for v in inner]
    if tag == "M":
        return {k: _plain(v) for k, v in inner.items()}
    if tag == "L":
        return [_plain(v) for v in inner]
    if tag == "NULL":
        return None
    return inner  # S, B (base64 text), BOOL, SS, BS


def plain_json(image: Mapping[str, Any] | None) -> str | None:
    """DynamoDB JSON → plain JSON text, numbers as their exact literals."""
    if image is None:
        return None
    return orjson.dumps({k: _plain(v) for k, v in image.items()}).decode()


def changed(record: Mapping[str, Any]) -> list[str]:
    """Top-level attributes whose value differs (all of them for INSERT/REMOVE)."""
    ddb = record["dynamodb"]
    old, new = ddb.get("OldImage") or {}, ddb.get("NewImage") or {}
    if record["eventName"] != "MODIFY":
        return sorted(old or new)
    return sorted(a for a in set(old) | set(new) if old.get(a) != new.get(a))


def curated_table(changes: Iterable[Delivered]) -> pa.Table:
    """The ``changes`` rows (without the partition columns' directories) for ``changes``."""
    cols: dict[str, list[Any]] = {name: [] for name in CHANGES_SCHEMA.names}
    tables, days = [], []
    for d in changes:
        r, ddb = d.record, d.record["dynamodb"]
        us = event_time_us(r)
        cols["event_id"].append(r["eventID"])
        cols["event_name"].append(r["eventName"])
        cols["event_time"].append(us)
        cols["sequence_number"].append(d.sequence_number.zfill(SEQ_WIDTH))
        cols["shard_id"].append(d.shard_id)
        cols["source_sequence_number"].append(ddb.get("SequenceNumber"))
        cols["keys"].append(canonical_keys(ddb["Keys"]))
        cols["key"].append(key_string(ddb["Keys"]))
        cols["old_image"].append(plain_json(ddb.get("OldImage")))
        cols["new_image"].append(plain_json(ddb.get("NewImage")))
        cols["changed_attributes"].append(changed(r))
        cols["is_ttl_delete"].append(is_ttl_delete(r))
        ident = r.get("userIdentity")
        cols["user_identity"].append(ident.get("principalId") if ident else None)
        cols["size_bytes"].append(ddb.get("SizeBytes"))
        tables.append(table_from_arn(r["eventSourceARN"]))
        days.append(datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d"))
    arrays = [pa.array(cols[f.name], f.type) for f in CHANGES_SCHEMA]
    arrays += [pa.array(tables, pa.string()), pa.array(days, pa.string())]
    return pa.Table.from_arrays(arrays, schema=CHANGES_SCHEMA.append(
        pa.field("table_name", pa.string())).append(pa.field("dt", pa.string())))


def write_lake(table: pa.Table, filesystem: pafs.FileSystem, base: str, file_name: str,
               rows_per_file: int | None = None) -> list[str]:
    """Write ``table`` as ``base/table_name=…/dt=…/<file_name>-N.parquet``; returns the partition dirs."""
    parts: list[str] = []
    for (tname, day), group in _groups(table.sort_by([("table_name", "ascending"), ("dt", "ascending")])):
        directory = f"{base.rstrip('/')}/table_name={tname}/dt={day}"
        filesystem.create_dir(directory, recursive=True)
        body = group.drop_columns(["table_name", "dt"])
        step = rows_per_file or max(1, body.num_rows)
        for n, offset in enumerate(range(0, body.num_rows, step)):
            pq.write_table(body.slice(offset, step), f"{directory}/{file_name}-{n}.parquet",
                           filesystem=filesystem, compression="zstd")
        parts.append(directory)
    return parts


def _groups(table: pa.Table) -> list[tuple[tuple[str, str], pa.Table]]:
    """Runs of equal (table_name, dt) in a table sorted by them."""
    names, days = table.column("table_name").to_pylist(), table.column("dt").to_pylist()
    out, start = [], 0
    for i in range(1, len(names) + 1):
        if i == len(names) or (names[i], days[i]) != (names[start], days[start]):
            out.append(((names[start], days[start]), table.slice(start, i - start)))
            start = i
    return out


def register_changes(catalog: GlueCatalog, location: str, partitions: Sequence[tuple[str, str]]) -> None:
    """Register ``changes`` (and its partitions) in the catalog, as the curate stage does."""
    storage = {
        "Columns": [{"Name": n, "Type": t} for n, t in GLUE_COLUMNS],
        "Location": location,
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
    }
    catalog.ensure_database()
    catalog.put_table({
        "Name": "changes", "TableType": "EXTERNAL_TABLE", "StorageDescriptor": storage,
        "PartitionKeys": [{"Name": "table_name", "Type": "string"}, {"Name": "dt", "Type": "string"}],
    })
    catalog.add_partitions("changes", [{
        "Values": [tname, day],
        "StorageDescriptor": {**storage, "Location": f"{location.rstrip('/')}/table_name={tname}/dt={day}/"},
    } for tname, day in partitions])
