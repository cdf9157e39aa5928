"""Reading the raw zone for replay: list only the partitions a selection needs, read the
envelope of each line (never the record, unless a filter pattern needs it), and yield the
selected changes in stream order, deduplicated.

Order (DESIGN.md "Order"): within one shard token (one DynamoDB stream of one table)
changes come out in ascending sequence number, compared numerically. Objects of a token
whose sequence ranges overlap (concurrent shards, a retried batch) are read together and
sorted, so memory holds one cluster of overlapping objects, not the whole selection.
Across tokens (tables, or a table whose stream was re-enabled) the streams are replayed
one after the other, in (table, token) order — a token is a stream label, which sorts
chronologically — so each token's order, hence each item's order, is kept, and no
batch mixes two streams (Lambda's batches are always one shard's).

Dedupe: the raw zone is at-least-once (a retried batch may land in a second object with a
different sequence range). Copies share a sequence number and so sit next to each other
after the sort; the second copy of an eventID is dropped.

Objects are read through the storage door (:class:`lake.aws.storage.ObjectReader`): S3,
or the same layout in files or bytes (tests, benchmarks, a copied archive).
"""

from __future__ import annotations

import gc
import gzip
import operator
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, compress, islice, repeat
from typing import Any, NamedTuple

import orjson

from lake.archive.keys import ForeignKeyError, RawObjectKey, partition_prefix, zone_prefix
from lake.archive.line import MalformedLineError, fast_reader, split

# replay only reads: any store of the door with list() and get() will do
from lake.aws.storage import ObjectReader as ObjectStore
from lake.errors import MalformedRecordError
from lake.records import EVENT_NAMES
from lake.replay.selection import Selection

# The envelope fields a Change needs, read from every line of an object in one regex pass
# (the table and shard come from the object's key).
_LINES = fast_reader(("key", "seq", "t", "event", "id"))


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
    pos: str  # position_key(table, shard): the checkpoint's name for this stream
    record: bytes  # the stream record's JSON, never re-serialised

    def coordinates(self) -> dict[str, Any]:
        return {"table": self.table, "shard": self.shard, "sequence_number": str(self.seq),
                "event_id": self.id, "key": self.key, "event_name": self.event}


def select_objects(store: ObjectStore, prefix: str, selection: Selection) -> list[RawObjectKey]:
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


def fetch(store: ObjectStore, obj: RawObjectKey) -> bytes:
    """An object's JSON lines, un-gzipped (zlib releases the GIL: this runs in prefetch threads)."""
    body = store.get(obj.render())
    if body[:2] == b"\x1f\x8b":
        try:
            # The archiver writes one gzip member: one inflate, no copy (gzip.decompress joins
            # its members' outputs, copying the text again); several members go the long way.
            inflate = zlib.decompressobj(31)
            text = inflate.decompress(body)
            if inflate.unused_data or not inflate.eof:
                text = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as e:
            raise MalformedRecordError(f"{obj.render()}: not valid gzip: {e}") from None
        return text
    return body


def _prefetched(pool: ThreadPoolExecutor, store: ObjectStore, objs: Iterable[RawObjectKey],
                depth: int) -> Iterator[tuple[RawObjectKey, bytes]]:
    """``(object, lines)`` in order, with up to ``depth`` objects fetched and unzipped ahead
    (S3 GETs are latency-bound; locally, unzipping overlaps the parsing)."""
    it = iter(objs)
    ahead: deque[tuple[RawObjectKey, Future[bytes]]] = deque(
        (o, pool.submit(fetch, store, o)) for o in islice(it, depth))
    while ahead:
        obj, fut = ahead.popleft()
        nxt = next(it, None)
        if nxt is not None:
            ahead.append((nxt, pool.submit(fetch, store, nxt)))
        yield obj, fut.result()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic GC around a loop that builds many small tuples and no cycles,
    restoring it (if it was on) afterwards. Collections triggered by those allocations would
    only walk them; measured, about a tenth of reading an object (benchmarks/bench_replay.py)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def read_object(
    store: ObjectStore, obj: RawObjectKey, selection: Selection,
    after: Mapping[str, int] | None = None, body: bytes | None = None,
) -> list[Change]:
    """The selected changes of one object, in the object's order. ``after`` maps
    :func:`position_key` → the last sequence number already replayed (a checkpoint):
    those and older are skipped.

    This is the replay's hot path (benchmarks/bench_replay.py). Lines as the archiver
    writes them are read column-wise, every per-line step a C loop: one regex pass over the
    object (:func:`lake.archive.line.fast_reader`) yields each envelope's fields and the
    record's bytes (never parsed, unless a filter pattern needs it), ``map``/``compress``
    convert and select, and ``Change`` tuples are built by ``tuple.__new__`` over ``zip``.
    Anything else goes line by line (:func:`lake.archive.line.split`)."""
    if body is None:
        body = fetch(store, obj)
    with gc_paused():  # many small tuples, no cycles: collections would only slow this down
        out = _read_columns(obj, body, selection, after)
        return out if out is not None else _read_lines(obj, body, selection, after)


# The event names as shared str objects rather than one new str per line.
_EVENT_TEXT = {name.encode(): name for name in EVENT_NAMES}


def _unescaped(values: list[str], raw: tuple[bytes, ...]) -> list[str]:
    """JSON-string contents → str, for the rare column with an escape (a backslash) in it."""
    return [orjson.loads(b'"' + r + b'"') if b"\\" in r else v for v, r in zip(values, raw, strict=True)]


def _read_columns(obj: RawObjectKey, body: bytes, selection: Selection,
                  after: Mapping[str, int] | None) -> list[Change] | None:
    """:func:`read_object` column-wise, or None when the object is not all archiver-shaped lines."""
    read = _LINES.columns(body)
    if read is None:
        return None
    columns, records = read
    if not records:
        return []  # blank lines at most
    raw_keys, raw_seqs, raw_ts, raw_ids = columns["key"], columns["seq"], columns["t"], columns["id"]
    try:
        keys = list(map(bytes.decode, raw_keys))
        ids = list(map(bytes.decode, raw_ids))
    except UnicodeDecodeError:
        return None  # the line-by-line path names the problem
    events = list(map(_EVENT_TEXT.__getitem__, columns["event"]))  # (the reader matches only these names)
    try:
        if b"\\" in b"".join(raw_keys):
            keys = _unescaped(keys, raw_keys)
        if b"\\" in b"".join(raw_ids):
            ids = _unescaped(ids, raw_ids)
    except orjson.JSONDecodeError:
        return None  # not JSON after all (a bad escape): the line reader names the problem
    seqs = list(map(int, raw_seqs))  # beyond 64 bits: int() it is
    # Event times are JSON integers of at most 18 digits (year 9999 is 2.5e17 us): one orjson
    # call parses them all, about three times faster than int() per line.
    try:
        ts = orjson.loads(b"[" + b",".join(raw_ts) + b"]") if max(map(len, raw_ts)) <= 18 \
            else list(map(int, raw_ts))
    except orjson.JSONDecodeError:  # e.g. a leading zero: not JSON, and the line reader says so
        return None

    # Per-line selection as masks; a bound every line already satisfies costs nothing.
    pos = position_key(obj.table, obj.shard)
    floor = after.get(pos, -1) if after else -1
    since, until = selection.since_us, selection.until_us
    n = len(records)
    masks: list[Iterator[bool]] = []
    if floor >= 0 and min(seqs) <= floor:
        masks.append(map(operator.lt, repeat(floor, n), seqs))
    if since is not None and min(ts) < since:
        masks.append(map(operator.le, repeat(since, n), ts))
    if until is not None and max(ts) >= until:
        masks.append(map(operator.gt, repeat(until, n), ts))
    if selection.keys:
        masks.append(map(selection.keys.__contains__, keys))
    if selection.event_names:
        masks.append(map(selection.event_names.__contains__, events))
    changes: Iterator[tuple[Any, ...]] = zip(ts, seqs, ids, keys, events, repeat(obj.table, n),
                                             repeat(obj.shard, n), repeat(pos, n), records, strict=True)
    if masks:
        changes = compress(changes, masks[0] if len(masks) == 1 else map(all, zip(*masks, strict=True)))
    if selection.needs_record:
        record_ok, loads = selection.record_matches, orjson.loads
        changes = (c for c in changes if record_ok(loads(c[8])))
    # NamedTuple's own __new__ is a Python function: tuple.__new__ over map stays in C
    return list(map(tuple.__new__, repeat(Change), changes))


def _read_lines(obj: RawObjectKey, body: bytes, selection: Selection,
                after: Mapping[str, int] | None) -> list[Change]:
    """:func:`read_object` one line at a time (:func:`lake.archive.line.split`): any line the
    contract allows (blank lines, another envelope field order), and the errors for those it does not."""
    pos = position_key(obj.table, obj.shard)
    floor = after.get(pos, -1) if after else -1
    table, shard = obj.table, obj.shard
    since, until = selection.since_us, selection.until_us
    keys = selection.keys or None
    names = selection.event_names or None
    need_record, record_ok = selection.needs_record, selection.record_matches
    out: list[Change] = []
    append = out.append
    loads = orjson.loads
    make = tuple.__new__
    for line in body.split(b"\n"):
        if not line or line[-1] != 125:  # 125 = b"}"
            line = line.rstrip()
            if not line:
                continue
        try:
            env, rec = split(line)
        except MalformedLineError as e:
            raise MalformedRecordError(f"{obj.render()}: {e}") from None
        try:
            seq = int(env["seq"])
            key, event, t = env["key"], env["event"], env["t"]
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedRecordError(f"{obj.render()}: envelope {str(env)[:200]!r}: {e}") from None
        if seq <= floor or (since is not None and t < since) or (until is not None and t >= until) \
                or (keys is not None and key not in keys) or (names is not None and event not in names):
            continue
        if need_record and not record_ok(loads(rec)):
            continue
        append(make(Change, (t, seq, env.get("id") or "", key, event, table, shard, pos, rec)))
    return out


@dataclass
class ReadStats:
    objects_total: int = 0
    objects_read: int = 0
    duplicates: int = 0


def _dedupe(changes: list[Change], stats: ReadStats) -> list[Change]:
    """Drop second copies (same sequence number and eventID, adjacent once sorted)."""
    if len(set(map(_ID, changes))) == len(changes):
        return changes  # the usual case, checked at C speed
    out: list[Change] = []
    prev_seq, prev_id = -1, None
    for c in changes:
        if c[1] == prev_seq and c[2] == prev_id:
            stats.duplicates += 1
            continue
        prev_seq, prev_id = c[1], c[2]
        out.append(c)
    return out


def iter_change_chunks(
    store: ObjectStore,
    objects: Iterable[RawObjectKey],
    selection: Selection,
    after: Mapping[str, int] | None = None,
    stats: ReadStats | None = None,
    on_object: Callable[[RawObjectKey], None] | None = None,
    prefetch: int = 4,
) -> Iterator[list[Change]]:
    """Selected changes of ``objects`` in stream order, deduplicated (see the module doc),
    as lists (one per cluster of overlapping objects) so batching can slice, not loop.
    ``prefetch`` objects per stream are fetched ahead on a small thread pool."""
    stats = stats if stats is not None else ReadStats()
    by_shard: dict[tuple[str, str], list[RawObjectKey]] = {}
    for obj in objects:
        by_shard.setdefault((obj.table, obj.shard), []).append(obj)
    stats.objects_total += sum(len(v) for v in by_shard.values())

    def shard_chunks(objs: list[RawObjectKey]) -> Iterator[list[Change]]:
        objs.sort(key=lambda o: (int(o.first_seq), int(o.last_seq)))
        bodies = _prefetched(pool, store, objs, prefetch)
        i = 0
        while i < len(objs):
            # a cluster: objects whose sequence ranges overlap must be sorted together
            cluster_end = int(objs[i].last_seq)
            j = i + 1
            while j < len(objs) and int(objs[j].first_seq) <= cluster_end:
                cluster_end = max(cluster_end, int(objs[j].last_seq))
                j += 1
            changes: list[Change] = []
            for _ in range(j - i):
                obj, body = next(bodies)
                changes.extend(read_object(store, obj, selection, after, body))
                stats.objects_read += 1
                if on_object:
                    on_object(obj)
            changes.sort(key=_SEQ)  # stable, and linear on the usual already-sorted input
            if changes:
                yield _dedupe(changes, stats)
            i = j

    pool = ThreadPoolExecutor(max_workers=max(1, prefetch), thread_name_prefix="replay-fetch")
    try:
        for _, objs in sorted(by_shard.items()):
            yield from shard_chunks(objs)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def iter_changes(
    store: ObjectStore,
    objects: Iterable[RawObjectKey],
    selection: Selection,
    after: Mapping[str, int] | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Change]:
    """:func:`iter_change_chunks`, one change at a time."""
    return chain.from_iterable(iter_change_chunks(store, objects, selection, after, stats))


_SEQ = operator.itemgetter(1)
_ID = operator.itemgetter(2)
_POS = operator.itemgetter(7)
