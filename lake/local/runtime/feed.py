"""Each shard read once for every mapping of its stream: a shared, read-through shard feed.

Two mappings on one stream (the archiver and the fan-out on every source table) used to read
it twice: twice the GetRecords, twice the records parsed, converted and serialised. Now every
mapping of a stream reads through one :class:`StreamFeeds`: per shard, a :class:`ShardFeed` holds
the records read so far, and the first mapping to need records past its end fetches the next
page (one GetRecords for everyone); the others find them there.

Each mapping keeps its own position, batching, retries and checkpoints: it reads the feed at
its own pace, through iterators that name a position in the feed (no GetShardIterator call).
A mapping held by a failing batch stops reading; the feed keeps its records for it (up to
:data:`MAX_BUFFERED` beyond it), and the others go on. A mapping whose position is not in the
feed (behind what the feed still holds, or ahead of it) reads the stream itself, as before,
and joins the feed again when its position is covered.

Records are converted and serialised once, when fetched; each mapping gets its own copy of the
record's coordinates (its filter verdict, its failure count), sharing the event and its JSON.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from datetime import datetime

from lake.local.runtime.events import SourceKind, StreamRecord, serialise
from lake.local.runtime.sources import IteratorExpired, ReadResult, ShardInfo, StreamSource

KEEP_READ = 2_000
"""Records a feed keeps after every mapping read them: a mapping that joins late or restarts
from its checkpoint finds the recent ones there."""
MAX_BUFFERED = 20_000
"""Records a feed keeps for a mapping that does not read (a batch held by retries); past that,
the oldest go and that mapping reads the stream itself when it moves again."""
LISTING_TTL_S = 1.0
"""How long one shard listing answers every mapping of the stream."""
_TOKEN = "lake-feed|"
_TRIM_HORIZON = -1  # "after -1": from the start of the shard


class _NotCovered(Exception):
    pass


def _token(after: int) -> str:
    return f"{_TOKEN}{after}"


class ShardFeed:
    """The records of one shard read so far, from position ``head`` (exclusive) to ``tail``."""

    def __init__(self, source: StreamSource, shard_id: str) -> None:
        self.source, self.shard_id = source, shard_id
        self.lock = threading.Lock()  # the buffer and positions
        self.fetching = threading.Lock()  # one GetRecords at a time
        self.started = False
        self.head = self.tail = 0  # covered: every record with head < seq, up to the one numbered tail
        self.records: deque[StreamRecord] = deque()
        self.iterator: str | None = None  # the real iterator after tail
        self.ended = False  # the shard returned no next iterator: closed and read to its end
        self.readers: dict[int, int] = {}  # reader id -> the position it read up to

    def covers(self, after: int) -> bool:
        return self.started and self.head <= after <= self.tail

    def start(self, after: int, iterator: str) -> None:
        """Begin at ``after`` (call with ``lock`` held), with the real iterator that reads from there."""
        self.started, self.head, self.tail, self.iterator = True, after, after, iterator
        self.records.clear()
        self.ended = False

    def read(self, reader: int, after: int, limit: int) -> tuple[list[StreamRecord], int | None]:
        """Up to ``limit`` records after position ``after`` and the position after them (None at the
        end of a closed shard). Raises :class:`_NotCovered` if ``after`` is not in the feed."""
        out = self._take(reader, after, limit)
        if out is not None:
            return out
        with self.fetching:
            out = self._take(reader, after, limit)  # fetched by another reader meanwhile
            if out is not None:
                return out
            self._fetch()
        out = self._take(reader, after, limit, at_end=True)
        assert out is not None
        return out

    def _take(self, reader: int, after: int, limit: int,
              at_end: bool = False) -> tuple[list[StreamRecord], int | None] | None:
        with self.lock:
            if not self.covers(after):
                self.readers.pop(reader, None)
                raise _NotCovered
            if after == self.tail and not at_end and not self.ended:
                return None  # caught up: fetch
            taken: list[StreamRecord] = []
            if after < self.tail:
                skip = 0
                for rec in self.records:  # the records at the front are usually the ones wanted
                    if rec.seq_int > after:
                        break
                    skip += 1
                for i in range(skip, min(skip + limit, len(self.records))):
                    taken.append(dataclasses.replace(self.records[i]))
            position = taken[-1].seq_int if taken else after
            self.readers[reader] = position
            self._trim()
            if not taken and self.ended:
                return [], None
            return taken, position

    def _fetch(self) -> None:
        """One GetRecords past the tail (called with ``fetching`` held)."""
        with self.lock:
            iterator, tail, ended = self.iterator, self.tail, self.ended
        if ended:
            return
        if iterator is None:
            try:
                iterator = self.source.iterator(self.shard_id, "AFTER_SEQUENCE_NUMBER", seq=str(tail)) \
                    if tail != _TRIM_HORIZON else self.source.iterator(self.shard_id, "TRIM_HORIZON")
            except IteratorExpired:
                self._reset()
                raise _NotCovered from None
        try:
            res = self.source.read(self.shard_id, iterator, self.source.max_limit)
        except IteratorExpired:
            with self.lock:
                self.iterator = None  # a new one from the tail, next time
            return
        for rec in res.records:
            serialise(rec)
        with self.lock:
            if self.tail != tail:  # reset meanwhile
                return
            self.records.extend(res.records)
            if res.records:
                self.tail = res.records[-1].seq_int
            self.iterator = res.next_iterator
            self.ended = res.next_iterator is None
            self._trim()

    def _reset(self) -> None:
        with self.lock:
            self.started = False
            self.records.clear()
            self.readers.clear()
            self.iterator = None

    def _trim(self) -> None:
        """Drop what every reader has read beyond :data:`KEEP_READ`, and beyond :data:`MAX_BUFFERED`
        the oldest (call with ``lock``)."""
        slowest = min(self.readers.values(), default=self.tail)
        records = self.records
        while records and ((records[0].seq_int <= slowest and len(records) > KEEP_READ)
                           or len(records) > MAX_BUFFERED):
            self.head = records.popleft().seq_int

    def leave(self, reader: int) -> None:
        with self.lock:
            self.readers.pop(reader, None)


class StreamFeeds:
    """The feeds of one stream's shards, and its shard listing, shared by the mappings of the stream."""

    def __init__(self, source: StreamSource) -> None:
        self.source = source
        self.lock = threading.Lock()
        self.shards: dict[str, ShardFeed] = {}
        self._listing: tuple[float, list[ShardInfo]] | None = None
        self._listing_lock = threading.Lock()
        self._identity: str | None = None

    def feed(self, shard_id: str) -> ShardFeed:
        with self.lock:
            feed = self.shards.get(shard_id)
            if feed is None:
                feed = self.shards[shard_id] = ShardFeed(self.source, shard_id)
            return feed

    def listing(self) -> list[ShardInfo]:
        with self._listing_lock:
            now = time.monotonic()
            if self._listing is None or now - self._listing[0] >= LISTING_TTL_S:
                self._listing = (now, self.source.shards())
                present = {s.shard_id for s in self._listing[1]}
                with self.lock:
                    for gone in [s for s in self.shards if s not in present]:
                        del self.shards[gone]
            return list(self._listing[1])

    def identity(self) -> str:
        if self._identity is None:
            self._identity = self.source.identity()
        return self._identity


class SharedSource(StreamSource):
    """One mapping's view of a stream through its :class:`StreamFeeds` (the StreamSource interface)."""

    def __init__(self, feeds: StreamFeeds) -> None:
        self.feeds, self.real = feeds, feeds.source
        self.clients, self.arn, self.region = self.real.clients, self.real.arn, self.real.region
        self.kind: SourceKind = self.real.kind
        self.max_limit = self.real.max_limit
        self.reader = id(self)

    def shards(self) -> list[ShardInfo]:
        return self.feeds.listing()

    def identity(self) -> str:
        return self.feeds.identity()

    def iterator(self, shard_id: str, kind: str, seq: str | None = None,
                 timestamp: datetime | None = None) -> str:
        after = {"TRIM_HORIZON": _TRIM_HORIZON, "AFTER_SEQUENCE_NUMBER": int(seq or 0),
                 "AT_SEQUENCE_NUMBER": int(seq or 0) - 1}.get(kind)
        feed = self.feeds.feed(shard_id)
        if after is None:
            return self.real.iterator(shard_id, kind, seq, timestamp)
        with feed.fetching:  # mappings starting together: one starts the feed, the others join it
            with feed.lock:
                if feed.covers(after):
                    return _token(after)
                started = feed.started
            real = self.real.iterator(shard_id, kind, seq, timestamp)  # checks the position, as before
            if started:
                return real
            with feed.lock:
                feed.start(after, real)
            return _token(after)

    def read(self, shard_id: str, iterator: str, limit: int) -> ReadResult:
        feed = self.feeds.feed(shard_id)
        if iterator.startswith(_TOKEN):
            after = int(iterator[len(_TOKEN):])
            try:
                records, position = feed.read(self.reader, after, limit)
            except _NotCovered:
                # Not in the feed (any more): read the stream from there ourselves.
                real = self.real.iterator(shard_id, "AFTER_SEQUENCE_NUMBER", seq=str(after)) \
                    if after != _TRIM_HORIZON else self.real.iterator(shard_id, "TRIM_HORIZON")
                return self._direct(feed, shard_id, real, limit)
            return ReadResult(records, None if position is None else _token(position))
        return self._direct(feed, shard_id, iterator, limit)

    def _direct(self, feed: ShardFeed, shard_id: str, iterator: str, limit: int) -> ReadResult:
        res = self.real.read(shard_id, iterator, limit)
        for rec in res.records:
            serialise(rec)
        if res.records and res.next_iterator is not None:
            after = res.records[-1].seq_int
            with feed.lock:
                if feed.covers(after):
                    return ReadResult(res.records, _token(after))  # back on the feed
        return res

    def leave(self) -> None:
        """This mapping stops reading: its position no longer holds records in the feeds."""
        with self.feeds.lock:
            feeds = list(self.feeds.shards.values())
        for feed in feeds:
            feed.leave(self.reader)

