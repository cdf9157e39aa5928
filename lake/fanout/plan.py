"""Pure planning of the fan-out: entries (payload and partition key) and order-safe send waves.

No boto3 here. The publisher (``lake.fanout.publisher``) drives these with a Kinesis client;
the payloads' format (envelope, claim check) is :mod:`lake.fanout.wire`.

Order argument (documented in the package docstring): a PutRecords request carries at
most one record per item key, and a key's next record is sent only after the previous
one succeeded. A failed entry inside a response therefore can never be overtaken by a
later record of the same key, neither in the same request nor in a later one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lake.fanout.wire import envelope
from lake.records import partition_key, sequence_number, table_name

MAX_RECORD_BYTES = 1_048_576  # Kinesis: data + partition key of one record
MAX_REQUEST_BYTES = 5 * 1_048_576  # Kinesis: one PutRecords request
MAX_REQUEST_RECORDS = 500


@dataclass(frozen=True)
class Entry:
    """One stream record ready for Kinesis: its batch position, ids and payload."""

    index: int  # position in the Lambda batch (the DynamoDB stream order)
    sequence_number: str  # DynamoDB SequenceNumber: the batch item failure identifier
    partition_key: str
    data: bytes
    table: str
    event_id: str

    @property
    def size(self) -> int:
        return len(self.data) + len(self.partition_key.encode())


def make_entry(index: int, record: Mapping[str, Any]) -> Entry:
    """Build the entry of one DynamoDB stream record (raises MalformedRecordError)."""
    from lake.errors import MalformedRecordError

    table = table_name(record)
    ddb = record.get("dynamodb")
    keys = ddb.get("Keys") if isinstance(ddb, Mapping) else None
    if not isinstance(keys, Mapping):
        raise MalformedRecordError("record has no dynamodb.Keys")
    return Entry(index, sequence_number(record), partition_key(table, keys), envelope(record, table),
                 table, str(record.get("eventID", "")))


@dataclass
class SendPlan:
    """Per-key queues in batch order; hands out waves with at most one record per key."""

    queues: dict[str, deque[Entry]] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    delivered: list[Entry] = field(default_factory=list)
    given_up: list[Entry] = field(default_factory=list)
    last_put: dict[str, int] = field(default_factory=dict)  # per key, the index of its last delivered record

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> SendPlan:
        plan = cls()
        for e in entries:
            plan.queues.setdefault(e.partition_key, deque()).append(e)
        return plan

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def first_given_up(self) -> int | None:
        return min((e.index for e in self.given_up), default=None)

    def wave(self, prefix_safe: bool = False) -> list[Entry]:
        """The head record of every key, in batch order.

        Once a record has been given up, nothing after it is sent: Lambda redelivers
        from the lowest failed sequence number anyway, so sending more would only add
        duplicates to the stream.

        ``prefix_safe``: a key's head only once every record up to the key's previous one
        is delivered. A retry from the first failure then sends again at most one delivered
        record per key, right before its successors: a duplicate, never an older record
        after a newer one (replay retries that way).
        """
        stop = self.first_given_up()
        heads = [q[0] for q in self.queues.values() if q]
        if stop is not None:
            heads = [e for e in heads if e.index < stop]
        if prefix_safe and heads:
            # The lowest head is the first record not delivered (the given-up ones are past it),
            # and it always qualifies: a wave is empty only when nothing before ``stop`` is left.
            undelivered = min(e.index for e in heads)
            heads = [e for e in heads if self.last_put.get(e.partition_key, -1) < undelivered]
        return sorted(heads, key=lambda e: e.index)

    def succeeded(self, entry: Entry) -> None:
        q = self.queues[entry.partition_key]
        assert q[0] is entry
        q.popleft()
        self.delivered.append(entry)
        self.last_put[entry.partition_key] = entry.index

    def failed(self, entry: Entry, max_attempts: int) -> bool:
        """Count a failed attempt; after ``max_attempts`` give the key's rest up. True if given up."""
        n = self.attempts[entry.index] = self.attempts.get(entry.index, 0) + 1
        if n < max_attempts:
            return False
        q = self.queues.pop(entry.partition_key)
        self.given_up.extend(q)  # the failed head and every later record of its key
        return True

    def abandon_rest(self) -> None:
        """Stop: whatever is still queued counts as not delivered."""
        for q in self.queues.values():
            self.given_up.extend(q)
        self.queues.clear()

    def failure_identifiers(self) -> list[str]:
        """SequenceNumbers to report as batch item failures, in batch order.

        Every record from the first undelivered one on that was not put: the given-up
        records, the later records of their keys, and the records never sent because
        sending stopped. Lambda resumes at the lowest reported sequence number, so it
        redelivers from the first failure regardless; reporting the whole undelivered
        tail keeps the report truthful if the runtime's semantics ever differ.
        """
        # After abandon_rest() every undelivered record is in given_up, all at or after
        # the first give-up (waves never send past it).
        return [e.sequence_number for e in sorted(self.given_up, key=lambda e: e.index)]


def chunks(entries: list[Entry]) -> list[list[Entry]]:
    """Split into PutRecords requests of at most 500 records and 5 MiB."""
    out: list[list[Entry]] = []
    cur: list[Entry] = []
    size = 0
    for e in entries:
        if cur and (len(cur) >= MAX_REQUEST_RECORDS or size + e.size > MAX_REQUEST_BYTES):
            out.append(cur)
            cur, size = [], 0
        cur.append(e)
        size += e.size
    if cur:
        out.append(cur)
    return out
