"""Kinesis batch → the curated zone's Iceberg tables. Composes the pure core and the doors.

Per source table of a batch: one commit to ``changes`` and one to its ``<stem>_history``
(:mod:`lake.curate.commit`), holding only what the tables do not have yet, so a redelivered
or re-split batch changes nothing twice (docs/adr/0003).
"""

from __future__ import annotations

import binascii
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from lake.aws.catalog import Committed, IcebergTables
from lake.aws.clients import Clients
from lake.curate import columnar, names
from lake.curate.arrays import Unsupported
from lake.curate.commit import Rows, commit_rows
from lake.curate.decode import Change, ClaimRef, Coordinates, coordinates, decode, paused_gc, payload, shard_id, unwrap
from lake.curate.tables import (
    HistoryBatch,
    HistorySchema,
    changes_table,
    history_table,
)
from lake.deadletter import Quarantined, quarantine
from lake.errors import LakeError, MalformedRecordError, NotFoundError, TerminalError, TransientError
from lake.fanout import wire
from lake.settings import Settings

log = logging.getLogger(__name__)

STAGE = "curate"
# A source table with fewer records than this in a batch takes the per-record path: the
# columnar one pays a fixed cost per kernel call, and its calls grow with the table's
# attributes and their nesting, not with its rows. On benchmarks/bench_convert.py's varied
# records (five tables, maps, lists, sets, NEW_AND_OLD_IMAGES; --info): batches of 500
# (~100 records per table) per-record 20k rec/s, columnar 4.6k; of 10,000 (800-3,500 per
# table) per-record 15k, columnar 20k.
COLUMNAR_MIN_RECORDS = 1000


@dataclass
class CurateResult:
    """What a batch did; ``failures`` are Kinesis sequence numbers for batchItemFailures."""

    rows: int = 0
    duplicates: int = 0
    quarantined: int = 0
    commits: list[Committed] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    added_columns: dict[str, list[str]] = field(default_factory=dict)

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failures]}


def fetch_claim(settings: Settings, clients: Clients, ref: ClaimRef) -> Mapping[str, Any]:
    """The stream record a claim check points at (the fan-out put it in the claims zone), checked
    against its digest; public for other consumers of the lake's Kinesis stream (examples/http_fanout)."""
    try:
        body = clients.store(ref.bucket).get(ref.key)
    except NotFoundError as e:
        raise MalformedRecordError(f"claim check s3://{ref.bucket}/{ref.key} is missing") from e
    if hashlib.sha256(body).hexdigest() != ref.sha256:
        raise MalformedRecordError(f"claim check s3://{ref.bucket}/{ref.key}: sha256 mismatch")
    try:
        doc = unwrap(orjson.loads(body), ref.coords)
    except orjson.JSONDecodeError as e:
        raise MalformedRecordError(f"claim check s3://{ref.bucket}/{ref.key} is not JSON: {e}") from None
    if isinstance(doc, ClaimRef):
        raise MalformedRecordError("claim check points at another claim check")
    return doc[1]


def decode_batch(settings: Settings, clients: Clients, records: Sequence[Mapping[str, Any]],
                 result: CurateResult, bad: list[Quarantined] | None = None) -> list[Change]:
    """Decode, resolve claim checks, quarantine the undecodable, dedupe by event_id.

    ``bad``: collect the undecodable there instead, for the caller to quarantine."""
    changes: list[Change] = []
    deferred = bad is not None
    bad = [] if bad is None else bad
    seen: set[str] = set()
    for rec in records:
        coords = Coordinates("shardId-unknown", "")
        doc: Any = None
        try:
            coords = coordinates(rec)
            doc = payload(rec)
            got = unwrap(doc, coords)
            if isinstance(got, ClaimRef):
                table, record = got.table, fetch_claim(settings, clients, got)
            else:
                table, record = got
            change = decode(table, record, coords)
        except MalformedRecordError as e:
            bad.append(Quarantined(STAGE, str(e), {"shard_id": coords.shard_id,
                                                    "sequence_number": coords.sequence_number},
                                   doc if doc is not None else rec))
            continue
        except TransientError:
            result.failures.append(coords.sequence_number)
            continue
        if change.event_id in seen:
            result.duplicates += 1
            continue
        seen.add(change.event_id)
        changes.append(change)
    if bad and not deferred:
        quarantine_or_retry(settings, clients, bad, result)
    return changes


def quarantine_or_retry(settings: Settings, clients: Clients, bad: list[Quarantined], result: CurateResult) -> None:
    """Quarantine ``bad``; if the quarantine itself fails, report them for retry instead."""
    try:
        quarantine(settings, clients, bad)
        result.quarantined += len(bad)
    except LakeError as e:
        log.warning("quarantine failed, reporting the records for retry: %s", e)
        result.failures.extend(str(q.coordinates["sequence_number"]) for q in bad)




@dataclass
class RecordRows:
    """Rows decoded record by record (the reference path)."""

    source: str
    rows: list[Change]

    def changes(self) -> pa.Table:
        return changes_table(self.rows)

    def history(self, existing: HistorySchema) -> HistoryBatch:
        return history_table(self.rows, existing)

    def coordinates(self) -> list[tuple[str, str, str]]:
        return [(c.coords.shard_id, c.coords.sequence_number, c.event_id) for c in self.rows]


def _payloads(settings: Settings, clients: Clients, records: Sequence[Mapping[str, Any]]
              ) -> tuple[list[bytes], list[str | None], list[str], list[str]]:
    """(stream record JSON, envelope table or None, shard id, sequence number) per record.

    The envelope is recognised by its bytes (``lake.fanout.wire.split_envelope``), so the
    record is never parsed here; claim checks are fetched. Whatever is not plainly well formed
    raises Unsupported: the per-record path then decodes and quarantines it with the reason.
    """
    bodies: list[bytes] = []
    tables: list[str | None] = []
    shards: list[str] = []
    seqs: list[str] = []
    split = wire.split_envelope
    a2b = binascii.a2b_base64  # what base64.b64decode(validate=True) calls, minus its wrapper
    for rec in records:
        try:
            kin = rec["kinesis"]
            seq = kin["sequenceNumber"]
            data = a2b(kin["data"], strict_mode=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise Unsupported("a Kinesis record without sequence number or base64 data") from None
        if type(seq) is not str:
            raise Unsupported("a Kinesis record without sequence number")
        ours = split(data)
        if ours is not None:
            tables.append(ours[0])
            bodies.append(ours[1])
        elif wire.has_envelope(data):
            table, body = _other_envelope(settings, clients, data, rec)
            bodies.append(body)
            tables.append(table)
        else:
            bodies.append(data)
            tables.append(None)
        shards.append(shard_id(rec))
        seqs.append(seq)
    return bodies, tables, shards, seqs


def _other_envelope(settings: Settings, clients: Clients, data: bytes, rec: Mapping[str, Any]
                    ) -> tuple[str, bytes]:
    """A claim check (or an envelope written differently) → (table, stream record JSON)."""
    try:
        got = unwrap(orjson.loads(data), coordinates(rec))
        if isinstance(got, ClaimRef):
            return got.table, orjson.dumps(fetch_claim(settings, clients, got))
        return got[0], orjson.dumps(got[1])
    except (orjson.JSONDecodeError, LakeError) as e:
        raise Unsupported(f"envelope: {e}") from None


def convert_batch(settings: Settings, clients: Clients, records: Sequence[Mapping[str, Any]],
                  result: CurateResult) -> list[Rows]:
    """The batch's rows per source table (in order of first appearance), both paths giving
    the same tables: columnar for each envelope table with at least COLUMNAR_MIN_RECORDS
    records in the batch (``columnar.convert_grouped``), record by record for the rest
    (which quarantines what cannot be decoded), and for the whole batch whenever the
    groups would not give the reference's result as is (an event id in two groups, one
    source table in two)."""
    if len(records) >= COLUMNAR_MIN_RECORDS:
        try:
            grouped = columnar.convert_grouped(*_payloads(settings, clients, records), COLUMNAR_MIN_RECORDS)
        except Unsupported as e:
            log.info("batch of %d records takes the per-record path: %s", len(records), e)
        else:
            part = CurateResult()
            bad: list[Quarantined] = []
            rest = [records[i] for i in grouped.rest]
            if rest:
                log.info("%d of a batch's %d records take the per-record path", len(rest), len(records))
            with paused_gc():
                changes = decode_batch(settings, clients, rest, part, bad) if rest else []
            position: dict[str, int] = {}
            for i in grouped.rest:
                position.setdefault(records[i]["kinesis"]["sequenceNumber"], i)
            by_table: dict[str, list[Change]] = {}
            for c in changes:
                by_table.setdefault(c.table, []).append(c)
            firsts = {source: position[rows[0].coords.sequence_number] for source, rows in by_table.items()}
            ids = [c.event_id for c in changes]
            for s in grouped.slices:
                ids.extend(s.table.column("event_id").to_pylist())
            sources = [s.source for s in grouped.slices] + list(by_table)
            if len(set(ids)) == len(ids) and len(set(sources)) == len(sources):
                if bad:
                    quarantine_or_retry(settings, clients, bad, part)
                result.duplicates += grouped.duplicates + part.duplicates
                result.quarantined += part.quarantined
                result.failures.extend(part.failures)
                ordered: list[tuple[int, Rows]] = [(s.first, s) for s in grouped.slices]
                ordered += [(firsts[source], RecordRows(source, rows)) for source, rows in by_table.items()]
                return [rows for _, rows in sorted(ordered, key=lambda p: p[0])]
            log.info("batch of %d records takes the per-record path: its groups overlap", len(records))
    with paused_gc():
        changes = decode_batch(settings, clients, records, result)
    by_table = {}
    for c in changes:
        by_table.setdefault(c.table, []).append(c)
    return [RecordRows(source, rows) for source, rows in by_table.items()]


def _write_table_batch(tables: IcebergTables, part: Rows, result: CurateResult) -> None:
    done = commit_rows(tables, part)
    result.rows += done.rows
    result.duplicates += done.duplicates
    result.commits.extend(done.commits)
    if done.added_columns:
        result.added_columns.setdefault(names.history_table(part.source), []).extend(done.added_columns)


def _bodies(records: Sequence[Any]) -> dict[str, Any]:
    """Kinesis sequence number → the record's decoded payload (its raw form if it does not
    decode): what a quarantine object keeps of a record."""
    out: dict[str, Any] = {}
    for rec in records:
        try:
            seq = coordinates(rec).sequence_number
        except (LakeError, AttributeError, TypeError):
            continue
        try:
            out[seq] = payload(rec)
        except LakeError:
            out[seq] = rec
    return out


def _isolate(part: Rows) -> tuple[list[Change], list[tuple[Change, str]]]:
    """The records of a part whose values the tables can take, and the others with the reason.
    Only the per-record path's parts are split: the columnar path refuses (``Unsupported``)
    any batch holding a value it cannot convert, so such a batch arrives here record by record."""
    if not isinstance(part, RecordRows):
        raise TerminalError(f"{part.source}: a value the curated tables cannot take")
    good: list[Change] = []
    bad: list[tuple[Change, str]] = []
    for change in part.rows:
        try:
            RecordRows(part.source, [change]).changes()
            RecordRows(part.source, [change]).history(HistorySchema())
        except MalformedRecordError as e:
            bad.append((change, str(e)))
        else:
            good.append(change)
    return good, bad


def _well_formed(settings: Settings, clients: Clients, records: Any, result: CurateResult) -> list[Any]:
    """The event's records that are objects; anything else quarantined with the reason (AWS
    never sends such events, but a hand-made or replayed one must not crash the consumer)."""
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        quarantine(settings, clients, [Quarantined(STAGE, "the event's Records is not a list", {}, records)])
        result.quarantined += 1
        return []
    def fit(rec: Any) -> bool:
        return isinstance(rec, Mapping) and isinstance(rec.get("kinesis"), Mapping)

    bad = [Quarantined(STAGE, "a Kinesis event record without a kinesis object", {"index": i}, rec)
           for i, rec in enumerate(records) if not fit(rec)]
    if bad:
        quarantine(settings, clients, bad)
        result.quarantined += len(bad)
    return [rec for rec in records if fit(rec)]


def curate(settings: Settings, records: Sequence[Mapping[str, Any]],
           clients: Clients | None = None) -> CurateResult:
    """Write a Lambda Kinesis batch to the curated zone; report what must be retried.

    A source table whose write fails transiently (S3, Glue) reports all its records; the
    other tables of the batch are still written. A record holding a value the tables cannot
    take is quarantined alone, with its body; its neighbours land.
    """
    clients = clients or Clients(settings)
    result = CurateResult()
    tables = IcebergTables(settings, clients)
    records = _well_formed(settings, clients, records, result)
    for part in convert_batch(settings, clients, records, result):
        try:
            try:
                with paused_gc():
                    _write_table_batch(tables, part, result)
            except MalformedRecordError:
                good, bad = _isolate(part)
                bodies = _bodies(records)
                quarantine(settings, clients, [Quarantined(STAGE, reason, {
                    "shard_id": c.coords.shard_id, "sequence_number": c.coords.sequence_number, "event_id": c.event_id},
                    bodies.get(c.coords.sequence_number, c.event_id)) for c, reason in bad])
                result.quarantined += len(bad)
                if good:  # what the first attempt committed is not committed again (ADR 0003, 4)
                    with paused_gc():
                        _write_table_batch(tables, RecordRows(part.source, good), result)
        except (TransientError, NotFoundError) as e:
            rows = part.coordinates()
            log.warning("curating %s failed, reporting %d records for retry: %s", part.source, len(rows), e)
            result.failures.extend(seq for _, seq, _ in rows)
        except TerminalError as e:
            # a refusal that retrying cannot fix (not a value: those are isolated above)
            rows = part.coordinates()
            bodies = _bodies(records)
            quarantine(settings, clients, [Quarantined(STAGE, str(e), {
                "shard_id": shard, "sequence_number": seq, "event_id": event_id}, bodies.get(seq, event_id))
                for shard, seq, event_id in rows])
            result.quarantined += len(rows)
    return result
