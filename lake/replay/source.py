"""Reading the raw zone for replay: list only the partitions a selection needs, read the
envelope of each line (never the record, unless a filter pattern needs it), and yield the
selected changes in stream order, deduplicated.

Order (DESIGN.md "Order"): within one shard token (one DynamoDB stream of one table)
changes come out in ascending sequence number, compared numerically. Objects of a token
whose sequence ranges overlap (concurrent shards, a retried batch) are read together and
sorted, so memory holds one cluster of overlapping objects, not the whole selection.
Across tokens (tables, or a table whose stream was re-enabled) the per-token streams are
merged by event time; a merge only ever takes the head of each stream, so each token's
order, hence each item's order, is kept.

Dedupe: the raw zone is at-least-once (a retried batch may land in a second object with a
different sequence range). Copies share a sequence number and so sit next to each other
after the sort; the second copy of an eventID is dropped.

The only AWS call here is in :class:`S3Store`; :class:`LocalStore` and :class:`MemoryStore`
read the same layout from files or bytes (tests, benchmarks, a copied archive).
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import orjson

from lake.archive.keys import ForeignKeyError, RawObjectKey, iter_object_lines, partition_prefix, zone_prefix
from lake.errors import MalformedRecordError
from lake.replay.selection import Selection

_LAKE_HEAD = b'{"lake":'
_RECORD_SEP = b',"record":'


class ObjectStore(Protocol):
    """Where raw objects are read from: list keys under a prefix, get an object's bytes."""

    def list(self, prefix: str, delimiter: str | None = None) -> Iterator[str]: ...

    def get(self, key: str) -> bytes: ...


class S3Store:
    """The raw zone in S3 (the client is injected; see :class:`lake.aws.clients.Clients`)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def list(self, prefix: str, delimiter: str | None = None) -> Iterator[str]:
        from lake.aws.clients import translate

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(**kwargs):
                if delimiter:
                    yield from (p["Prefix"] for p in page.get("CommonPrefixes", []))
                else:
                    yield from (o["Key"] for o in page.get("Contents", []))
        except Exception as e:
            raise translate(e, "S3 bucket", self.bucket) from e

    def get(self, key: str) -> bytes:
        from lake.aws.clients import translate

        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as e:
            raise translate(e, "S3 object", f"s3://{self.bucket}/{key}") from e


class LocalStore:
    """The raw zone as files under a directory (the bucket's root)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def list(self, prefix: str, delimiter: str | None = None) -> Iterator[str]:
        base = self.root / prefix
        if delimiter:
            if base.is_dir():
                yield from sorted(f"{prefix}{p.name}/" for p in base.iterdir() if p.is_dir())
            return
        if base.is_dir():
            yield from sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


class MemoryStore:
    """The raw zone as a dict of key → bytes (benchmarks, unit tests)."""

    def __init__(self, objects: Mapping[str, bytes]) -> None:
        self.objects = dict(objects)

    def list(self, prefix: str, delimiter: str | None = None) -> Iterator[str]:
        keys = sorted(k for k in self.objects if k.startswith(prefix))
        if not delimiter:
            yield from keys
            return
        seen: list[str] = []
        for k in keys:
            head, sep, _ = k[len(prefix):].partition(delimiter)
            if sep and (not seen or seen[-1] != head):
                seen.append(head)
        yield from (f"{prefix}{h}{delimiter}" for h in seen)

    def get(self, key: str) -> bytes:
        return self.objects[key]


def position_key(table: str, shard: str) -> str:
    """A checkpoint position's name: stream labels are times, so two tables may share one."""
    return f"{table}/{shard}"


class Change(NamedTuple):
    """One selected change: envelope coordinates and the record's bytes, exactly as archived."""

    t: int  # event time, epoch microseconds
    seq: int  # DynamoDB stream SequenceNumber as a number
    id: str  # eventID
    key: str  # canonical item key (lake.records.key_string)
    event: str  # INSERT | MODIFY | REMOVE
    table: str
    shard: str  # the raw zone's shard token (stream label)
    record: bytes  # the stream record's JSON, never re-serialised

    def coordinates(self) -> dict[str, Any]:
        return {"table": self.table, "shard": self.shard, "sequence_number": str(self.seq),
                "event_id": self.id, "key": self.key, "event_name": self.event}


def list_objects(store: ObjectStore, prefix: str, selection: Selection) -> list[RawObjectKey]:
    """The raw objects a selection needs, only from its tables' and time range's partitions."""
    tables = selection.tables or tuple(_discover_tables(store, prefix))
    days = selection.days()
    out: list[RawObjectKey] = []
    for table in tables:
        prefixes = [partition_prefix(prefix, table)] if days is None else \
            [partition_prefix(prefix, table, d) for d in days]
        for p in prefixes:
            for key in store.list(p):
                try:
                    obj = RawObjectKey.parse(key)
                except ForeignKeyError:
                    continue  # not an archive object (a marker, a manifest): not ours to replay
                if obj.table == table and selection.hour_in_range(obj.dt, obj.hour):
                    out.append(obj)
    return out


def _discover_tables(store: ObjectStore, prefix: str) -> Iterator[str]:
    root = zone_prefix(prefix)
    for p in store.list(root, delimiter="/"):
        name = p[len(root):].rstrip("/")
        if name.startswith("table="):
            yield name[len("table="):]


def split_line(line: bytes) -> tuple[dict[str, Any], bytes]:
    """``(envelope, record bytes)`` of one raw line; the record is sliced, not parsed.

    The contract (docs/CONTRACTS.md) puts the envelope first and guarantees that
    ``,"record":`` first occurs where the record starts.
    """
    line = line.rstrip()
    at = line.find(_RECORD_SEP)
    if at < 0 or not line.startswith(_LAKE_HEAD) or not line.endswith(b"}"):
        raise MalformedRecordError('raw line is not {"lake":{...},"record":{...}}')
    return orjson.loads(line[8:at]), line[at + 10:-1]


def read_object(
    store: ObjectStore, obj: RawObjectKey, selection: Selection,
    after: Mapping[str, int] | None = None,
) -> list[Change]:
    """The selected changes of one object. ``after`` maps :func:`position_key` → last sequence
    number already replayed (a checkpoint): those and older are skipped."""
    floor = after.get(position_key(obj.table, obj.shard), -1) if after else -1
    table, shard = obj.table, obj.shard
    match_env = selection.envelope_matches
    need_record = selection.needs_record
    out: list[Change] = []
    append = out.append
    loads = orjson.loads
    for line in iter_object_lines(store.get(obj.render())):
        # split_line, inlined: this loop is the replay's hot path (benchmarks/bench_replay.py)
        if line[-1] != 125:  # b"}"
            line = line.rstrip()
        at = line.find(_RECORD_SEP)
        if at < 0 or line[-1] != 125 or not line.startswith(_LAKE_HEAD):
            raise MalformedRecordError(f"{obj.render()}: a line is not {{\"lake\":{{...}},\"record\":{{...}}}}")
        env = loads(line[8:at])
        try:
            seq = int(env["seq"])
            key, event, t = env["key"], env["event"], env["t"]
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedRecordError(f"{obj.render()}: envelope {env!r} lacks {e}") from None
        if seq <= floor or not match_env(key, event, t):
            continue
        rec = line[at + 10:-1]
        if need_record and not selection.record_matches(loads(rec)):
            continue
        append(Change(t, seq, env.get("id") or "", key, event, table, shard, rec))
    return out


@dataclass
class ReadStats:
    objects_total: int = 0
    objects_read: int = 0
    duplicates: int = 0


def iter_changes(
    store: ObjectStore,
    objects: Iterable[RawObjectKey],
    selection: Selection,
    after: Mapping[str, int] | None = None,
    stats: ReadStats | None = None,
    on_object: Callable[[RawObjectKey], None] | None = None,
) -> Iterator[Change]:
    """Selected changes of ``objects`` in stream order, deduplicated (see the module doc)."""
    stats = stats if stats is not None else ReadStats()
    by_shard: dict[tuple[str, str], list[RawObjectKey]] = {}
    for obj in objects:
        by_shard.setdefault((obj.table, obj.shard), []).append(obj)
    stats.objects_total += sum(len(v) for v in by_shard.values())

    def shard_stream(objs: list[RawObjectKey]) -> Iterator[Change]:
        objs.sort(key=lambda o: (int(o.first_seq), int(o.last_seq)))
        i = 0
        prev_seq, prev_id = -1, ""
        while i < len(objs):
            # a cluster: objects whose sequence ranges overlap must be sorted together
            cluster_end = int(objs[i].last_seq)
            j = i + 1
            while j < len(objs) and int(objs[j].first_seq) <= cluster_end:
                cluster_end = max(cluster_end, int(objs[j].last_seq))
                j += 1
            changes: list[Change] = []
            for obj in objs[i:j]:
                changes.extend(read_object(store, obj, selection, after))
                stats.objects_read += 1
                if on_object:
                    on_object(obj)
            changes.sort(key=_SEQ)  # stable, and linear on the usual already-sorted input
            for c in changes:
                if c.seq == prev_seq and c.id == prev_id:
                    stats.duplicates += 1
                    continue
                prev_seq, prev_id = c.seq, c.id
                yield c
            i = j

    streams = [shard_stream(objs) for _, objs in sorted(by_shard.items())]
    if len(streams) == 1:
        yield from streams[0]
    elif streams:
        yield from heapq.merge(*streams, key=_TIME)


_SEQ = operator.itemgetter(1)
_TIME = operator.itemgetter(0)
