"""``backfill``: rebuild ``changes`` and ``<stem>_history`` of one source table and time range
from the raw zone, with exactly the rows the streaming path makes of the same changes.

The raw zone holds each stream record as Lambda delivered it; the archived records are read
as replay reads them (:mod:`lake.replay.source`: only the range's partitions, in stream
order, copies dropped) and decoded and built into rows by the streaming path's own code
(:func:`lake.curate.decode.decode`, :mod:`lake.curate.tables`, :mod:`lake.curate.commit`).
The one thing the raw zone cannot know is where a change sat on the lake's Kinesis stream:
a change the tables still hold keeps its ``shard_id`` and ``sequence_number``; one they lost
gets the raw zone's coordinates (shard ``raw:<stream label>``, its DynamoDB sequence number,
zero-padded as Kinesis ones are, so per-item order holds).

Bounded memory: the raw zone is read and the rows built ``chunk_rows`` changes at a time,
each chunk written to data files before the next is read (memory holds one chunk's rows,
plus the range's event ids). Each table's range is still swapped in one commit: one
transaction deletes the range's rows and appends every chunk, and the catalog's pointer
moves once, so a reader sees the old range or the new one, never a half-rebuilt range.
Whether the range already holds exactly the rebuilt rows is decided by an order-free
fingerprint (:class:`Digest`) of both sides, each streamed: a second run changes nothing.

Given a ``mapper`` (an AWS Glue job gives Spark's), the same rows are built and written by
its workers instead (:mod:`lake.glue.distributed`); this process then reads metadata only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import orjson
import pyarrow as pa

from lake.archive.keys import RawObjectKey
from lake.aws.catalog import Append, IcebergTables, apply_schema
from lake.aws.clients import Clients
from lake.curate import names
from lake.curate.commit import (
    CHANGES_ICEBERG,
    DT,
    HISTORY_ICEBERG,
    TABLE_NAME,
    HistoryParts,
    changes_rows,
    history_parts,
    placed_history,
)
from lake.curate.consumer import RecordRows
from lake.curate.decode import Change, Coordinates, decode
from lake.curate.evolve import TableColumns, place
from lake.curate.tables import RESERVED
from lake.errors import ConfigError, MalformedRecordError
from lake.glue.compact import JOB_PROPERTY
from lake.glue.report import JobReport, Progress, TableReport, no_progress
from lake.replay.selection import Selection
from lake.replay.source import ReadStats, iter_change_chunks, select_objects
from lake.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.table import Table, Transaction

RAW_SHARD = "raw:"  # shard_id prefix of a row rebuilt without its Kinesis coordinates


@dataclass(frozen=True)
class BackfillOptions:
    table: str  # the source (DynamoDB) table
    since_us: int | None = None  # the range [since, until) of event times; open when None
    until_us: int | None = None
    dry_run: bool = False
    per_day: bool = False  # one atomic commit per day instead of one for the range
    chunk_rows: int = 20_000  # changes built and written at a time: memory holds one chunk's rows

    def __post_init__(self) -> None:
        if not self.table:
            raise ConfigError("backfill needs --table")
        if self.since_us is not None and self.until_us is not None and self.since_us >= self.until_us:
            raise ConfigError("the time range is empty: --since must be before --until")
        if self.chunk_rows < 1:
            raise ConfigError("--chunk-rows must be positive")


def read_raw(settings: Settings, clients: Clients, options: BackfillOptions, progress: Progress = no_progress,
             stats: ReadStats | None = None, objects: Sequence[RawObjectKey] | None = None
             ) -> Iterator[list[Change]]:
    """The archived changes of the table and range, decoded as the consumer decodes them
    (coordinates from the raw zone), in stream order, each once, in lists of at most
    ``options.chunk_rows`` changes: memory holds one list (and the range's event ids, to drop
    a copy a retried batch left in another object). ``objects``: only these (a worker's unit)."""
    store = clients.store(settings.bucket)
    selection = Selection(tables=(options.table,), since_us=options.since_us, until_us=options.until_us)
    if objects is None:
        objects = select_objects(store, settings.prefix, selection)
    stats = stats if stats is not None else ReadStats()
    out: list[Change] = []
    seen: set[str] = set()
    for chunk in iter_change_chunks(store, objects, selection, stats=stats,
                                    on_object=lambda _: progress("backfill: raw objects read",
                                                                 stats.objects_read, len(objects))):
        for c in chunk:
            if c.id in seen:  # a copy in another object of the stream (a retried batch)
                continue
            seen.add(c.id)
            try:
                record = orjson.loads(c.record)
            except orjson.JSONDecodeError as e:
                raise MalformedRecordError(f"raw zone: {c.table} {c.shard} {c.seq}: not JSON: {e}") from None
            out.append(decode(c.table, record, Coordinates(f"{RAW_SHARD}{c.shard}", str(c.seq))))
            if len(out) >= options.chunk_rows:
                yield out
                out = []
    if out:
        yield out


def _range_filter(options: BackfillOptions, source: str | None) -> Any:
    from pyiceberg import expressions as ex

    And, EqualTo = cast(Any, ex.And), cast(Any, ex.EqualTo)
    expr: Any = ex.AlwaysTrue()
    if options.since_us is not None:
        expr = And(expr, cast(Any, ex.GreaterThanOrEqual)("event_time", _iso(options.since_us)))
    if options.until_us is not None:
        expr = And(expr, cast(Any, ex.LessThan)("event_time", _iso(options.until_us)))
    if source is not None:
        expr = And(EqualTo(TABLE_NAME, source), expr)
    return expr


def _iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat()


def _with_held_coordinates(changes: list[Change], held: Mapping[str, tuple[str, str]]) -> list[Change]:
    """Changes the table still holds keep their Kinesis coordinates."""
    if not held:
        return changes
    out = []
    for c in changes:
        got = held.get(c.event_id)
        if got is not None:
            c = replace(c, coords=Coordinates(got[0], got[1]))
        out.append(c)
    return out


def _held_coordinates(tables: IcebergTables, options: BackfillOptions) -> dict[str, tuple[str, str]]:
    """event id → (shard, sequence number) of the range's rows in ``changes`` or in the
    history (either may have been lost alone), read a batch at a time (three short strings per
    change, never the rows)."""
    out: dict[str, tuple[str, str]] = {}
    for name, filt, extra in ((names.history_table(options.table), _range_filter(options, None), [DT]),
                              (names.CHANGES, _range_filter(options, options.table), [TABLE_NAME, DT])):
        if tables.find(name) is None:
            continue
        for batch in _batches(tables, name, filt, ["event_id", "shard_id", "sequence_number", *extra]):
            for e, s, q in zip(batch.column("event_id").to_pylist(), batch.column("shard_id").to_pylist(),
                               batch.column("sequence_number").to_pylist(), strict=True):
                if s is not None and q is not None and not s.startswith(RAW_SHARD):
                    out[e] = (s, q)
    return out


def _batches(tables: IcebergTables, name: str, row_filter: Any, columns: Sequence[str] | None = None,
             table: Table | None = None) -> Iterator[pa.RecordBatch]:
    """The rows of a table's range, a record batch at a time."""
    t = table if table is not None else tables.load(name)
    scan = t.scan(row_filter=row_filter, selected_fields=tuple(columns) if columns else ("*",))
    yield from scan.to_arrow_batch_reader()


def _canonical(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return sorted((k, _canonical(v)) for k, v in value.items() if v is not None)
    return value


@dataclass
class Digest:
    """An order-free fingerprint of a multiset of rows (columns by name, a null and an absent
    column alike), summed row by row so neither side is ever held whole: how a backfill
    knows, in bounded memory, that the range already holds exactly the rebuilt rows."""

    rows: int = 0
    total: int = 0

    def add(self, rows: pa.Table | pa.RecordBatch) -> None:
        for row in rows.to_pylist():
            text = repr(sorted((k, repr(_canonical(v))) for k, v in row.items() if v is not None)).encode()
            self.total = (self.total + int.from_bytes(hashlib.blake2b(text, digest_size=16).digest(), "big")) % _MOD
        self.rows += rows.num_rows


_MOD = 1 << 128


def backfill(settings: Settings, options: BackfillOptions, clients: Clients | None = None,
             progress: Progress = no_progress, mapper: Any = None) -> JobReport:
    """Rebuild the range in one atomic commit per table (see the module doc), or with
    ``per_day`` one day of the raw zone at a time, each day's commit atomic. ``mapper``
    (:data:`lake.glue.distributed.Mapper`): spread the work over its workers (an AWS Glue job's
    Spark executors) instead of doing it in this process."""
    clients = clients or Clients(settings)
    if mapper is not None:
        from lake.glue.distributed import backfill_distributed

        def one_range(o: BackfillOptions) -> JobReport:
            return backfill_distributed(settings, o, mapper, clients, progress)
    else:
        def one_range(o: BackfillOptions) -> JobReport:
            return _backfill(settings, o, clients, progress)
    if not options.per_day:
        return one_range(options)
    store = clients.store(settings.bucket)
    selection = Selection(tables=(options.table,), since_us=options.since_us, until_us=options.until_us)
    days = sorted({o.dt for o in select_objects(store, settings.prefix, selection)})
    report = JobReport("backfill (per day)", options.dry_run)
    totals: dict[str, TableReport] = {}
    for day in days:
        start = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1_000_000)
        since = max(start, options.since_us) if options.since_us is not None else start
        until = start + 86_400_000_000
        until = min(until, options.until_us) if options.until_us is not None else until
        one = one_range(replace(options, since_us=since, until_us=until, per_day=False))
        for part in one.tables:
            total = totals.get(part.table)
            if total is None:
                total = totals[part.table] = report.table(part.table)
            for name in ("files_in", "rows_in", "rows_out", "snapshots_added"):
                setattr(total, name, getattr(total, name) + getattr(part, name))
            total.notes.extend(f"{day}: {note}" for note in part.notes)
    return report.done()


def _backfill(settings: Settings, options: BackfillOptions, clients: Clients, progress: Progress) -> JobReport:
    """One range: a pass over the raw zone to fingerprint the rebuilt rows (nothing written
    when the range already holds them), then per table a pass that writes them chunk by chunk
    into one transaction (the range's rows deleted, each chunk appended) committed at once."""
    tables = IcebergTables(settings, clients)
    report = JobReport("backfill", options.dry_run)
    changes_part = report.table(names.CHANGES)
    history = names.history_table(options.table)
    history_part = report.table(history)
    filt, hfilt = _range_filter(options, options.table), _range_filter(options, None)
    if options.dry_run:  # what would be written; nothing is created or changed
        stats = ReadStats()
        n = sum(len(chunk) for chunk in read_raw(settings, clients, options, progress, stats))
        changes_part.files_in, changes_part.rows_in, changes_part.rows_out = stats.objects_read, n, n
        history_part.rows_in = history_part.rows_out = n
        held_rows = sum(b.num_rows for b in _batches(tables, names.CHANGES, filt, ["event_id", TABLE_NAME, DT])) \
            if tables.find(names.CHANGES) else 0
        changes_part.notes.append(f"range holds {held_rows} rows; the raw zone has {n}")
        return report.done()
    tables.ensure(names.CHANGES, CHANGES_ICEBERG, [TABLE_NAME, DT], source=None, kind="changes")
    tables.ensure(history, HISTORY_ICEBERG, [DT], source=options.table, kind="history")
    held = _held_coordinates(tables, options)

    def chunks() -> Iterator[tuple[pa.Table, HistoryParts]]:
        stats = ReadStats()
        for raw in read_raw(settings, clients, options, progress, stats):
            rows = RecordRows(options.table, _with_held_coordinates(raw, held))
            built = changes_rows(rows)
            yield built, history_parts(rows, built.column(DT).combine_chunks())
        changes_part.files_in = stats.objects_read

    # pass 1: fingerprints of the rebuilt rows, against the range as the tables hold it
    h_table = tables.load(history)
    want_changes, want_history, new_columns = Digest(), Digest(), False
    for built, parts in chunks():
        want_changes.add(built)
        placed = placed_history(h_table, parts)
        new_columns = new_columns or bool(placed.add_columns or placed.promote)
        want_history.add(placed.rows)
    changes_part.rows_in = history_part.rows_in = want_changes.rows
    have_changes, have_history = Digest(), Digest()
    for batch in _batches(tables, names.CHANGES, filt):
        have_changes.add(batch)
    for batch in _batches(tables, history, hfilt, table=h_table):
        have_history.add(batch)
    changes_part.notes.append(f"range held {have_changes.rows} rows; the raw zone has {want_changes.rows}")
    history_part.notes.append(f"range held {have_history.rows} rows; the raw zone has {want_history.rows}")

    if have_changes == want_changes:
        changes_part.notes.append("the range already holds exactly these rows: nothing to change")
    else:
        def stage_changes(table: Table, tx: Transaction) -> bool:
            if have_changes.rows:
                tx.delete(filt, snapshot_properties=_summary(want_changes.rows))
            for built, _ in chunks():
                if built.num_rows:
                    tx.append(built, snapshot_properties=_summary(built.num_rows))
            return True

        _commit(tables, names.CHANGES, stage_changes, changes_part, want_changes.rows)

    if have_history == want_history and not new_columns:
        history_part.notes.append("the range already holds exactly these rows: nothing to change")
    else:
        def stage_history(table: Table, tx: Transaction) -> bool:
            if have_history.rows:
                tx.delete(hfilt, snapshot_properties=_summary(want_history.rows))
            for _, parts in chunks():
                placed = _placed(tx, parts)
                apply_schema(tx, placed.add_columns, placed.promote)
                if placed.properties:
                    tx.set_properties(dict(placed.properties))
                if placed.rows.num_rows:
                    tx.append(placed.rows, snapshot_properties=_summary(placed.rows.num_rows))
            return True

        _commit(tables, history, stage_history, history_part, want_history.rows)
    return report.done()


def _placed(tx: Transaction, parts: HistoryParts) -> Append:
    """A chunk's history rows placed in the columns the transaction has so far (the table's,
    plus those earlier chunks of the same transaction added)."""
    meta = tx.table_metadata
    columns = TableColumns.of(meta.schema().as_arrow(), meta.properties)
    placed = place(parts.attributes, columns, RESERVED, parts.kinds)
    rows = parts.meta
    for column, array in placed.columns.items():
        rows = rows.append_column(column, array)
    return Append(rows, add_columns=placed.add_columns, promote=placed.promote, properties=placed.properties)


def _summary(rows: int) -> dict[str, str]:
    return {JOB_PROPERTY: "backfill", "lake.rows": str(rows)}


def _commit(tables: IcebergTables, name: str, stage: Any, part: TableReport, rows: int) -> None:
    """Commit what ``stage`` puts on one transaction; the report counts the snapshots it added
    (the delete and one per chunk, all made visible by the one commit)."""
    before = tables.load(name).current_snapshot()
    after = tables.transact(name, stage)
    if after is None or (before is not None and after == before.snapshot_id):
        return
    table = tables.load(name)
    added, snapshot = 0, table.snapshot_by_id(after)
    while snapshot is not None and (before is None or snapshot.snapshot_id != before.snapshot_id):
        added += 1
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    part.rows_out = rows
    part.snapshots_added = added
    part.notes.append(f"one commit: {added} snapshot(s) (the range's delete and its chunks)")


