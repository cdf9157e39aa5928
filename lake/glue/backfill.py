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

Each table's range is swapped in one commit (the range's rows deleted and the rebuilt ones
added in one snapshot), so a reader sees the old range or the new one. A range that already
holds exactly the rebuilt rows is left alone: a second run changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import orjson
import pyarrow as pa

from lake.aws.catalog import Append, IcebergTables, apply_schema
from lake.aws.clients import Clients
from lake.curate import names
from lake.curate.commit import (
    CHANGES_ICEBERG,
    DT,
    HISTORY_ICEBERG,
    TABLE_NAME,
    changes_rows,
    history_parts,
    placed_history,
)
from lake.curate.consumer import RecordRows
from lake.curate.decode import Change, Coordinates, decode
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
    per_day: bool = False  # one atomic swap per day instead of one for the range: memory holds a day

    def __post_init__(self) -> None:
        if not self.table:
            raise ConfigError("backfill needs --table")
        if self.since_us is not None and self.until_us is not None and self.since_us >= self.until_us:
            raise ConfigError("the time range is empty: --since must be before --until")


def read_raw(settings: Settings, clients: Clients, options: BackfillOptions, progress: Progress = no_progress,
             stats: ReadStats | None = None) -> list[Change]:
    """The archived changes of the table and range, decoded as the consumer decodes them
    (coordinates from the raw zone), in stream order, each once."""
    store = clients.store(settings.bucket)
    selection = Selection(tables=(options.table,), since_us=options.since_us, until_us=options.until_us)
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
    return out


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


def _with_held_coordinates(changes: list[Change], held: pa.Table) -> list[Change]:
    """Changes the table still holds keep their Kinesis coordinates."""
    if held.num_rows == 0:
        return changes
    where = {e: (s, q) for e, s, q in zip(held.column("event_id").to_pylist(), held.column("shard_id").to_pylist(),
                                          held.column("sequence_number").to_pylist(), strict=True)}
    out = []
    for c in changes:
        got = where.get(c.event_id)
        if got is not None and got[0] is not None and got[1] is not None:
            c = replace(c, coords=Coordinates(got[0], got[1]))
        out.append(c)
    return out


def _same(a: pa.Table, b: pa.Table) -> bool:
    """The same rows (as a multiset, columns by name), whatever their order and file layout."""
    if a.num_rows != b.num_rows or set(a.column_names) != set(b.column_names):
        return False
    cols = sorted(a.column_names)
    a, b = a.select(cols), b.select(cols)
    try:
        b = b.cast(a.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return bool(a.sort_by("event_id").equals(b.sort_by("event_id")))


def backfill(settings: Settings, options: BackfillOptions, clients: Clients | None = None,
             progress: Progress = no_progress) -> JobReport:
    """Rebuild the range in one swap per table (see the module doc), or with ``per_day``
    one day of the raw zone at a time, each day's swap atomic (memory: one day's rows)."""
    clients = clients or Clients(settings)
    if not options.per_day:
        return _backfill(settings, options, clients, progress)
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
        one = _backfill(settings, replace(options, since_us=since, until_us=until, per_day=False), clients, progress)
        for part in one.tables:
            total = totals.get(part.table)
            if total is None:
                total = totals[part.table] = report.table(part.table)
            for name in ("files_in", "rows_in", "rows_out", "snapshots_added"):
                setattr(total, name, getattr(total, name) + getattr(part, name))
            total.notes.extend(f"{day}: {note}" for note in part.notes)
    return report.done()


def _backfill(settings: Settings, options: BackfillOptions, clients: Clients, progress: Progress) -> JobReport:
    tables = IcebergTables(settings, clients)
    report = JobReport("backfill", options.dry_run)
    stats = ReadStats()
    raw = read_raw(settings, clients, options, progress, stats)
    changes_part = report.table(names.CHANGES)
    changes_part.files_in = stats.objects_read
    changes_part.rows_in = len(raw)
    filt = _range_filter(options, options.table)
    if options.dry_run:  # what would be written; nothing is created or changed
        history_part = report.table(names.history_table(options.table))
        changes_part.rows_out = history_part.rows_in = history_part.rows_out = len(raw)
        held_rows = tables.scan(names.CHANGES, filt, ["event_id"]).num_rows if tables.find(names.CHANGES) else 0
        changes_part.notes.append(f"range holds {held_rows} rows; the raw zone has {len(raw)}")
        return report.done()
    tables.ensure(names.CHANGES, CHANGES_ICEBERG, [TABLE_NAME, DT], source=None, kind="changes")
    held = tables.scan(names.CHANGES, filt, ["event_id", "shard_id", "sequence_number", TABLE_NAME, DT])
    rows = RecordRows(options.table, _with_held_coordinates(raw, held))
    rebuilt = changes_rows(rows)

    def stage_changes(table: Table, tx: Transaction) -> bool:
        current = tables.scan(names.CHANGES, filt, table=table)
        changes_part.notes.append(f"range held {current.num_rows} rows; the raw zone has {rebuilt.num_rows}")
        if _same(current, rebuilt):
            return False
        _swap(tx, filt if current.num_rows else None, rebuilt)
        return True

    _commit(tables, names.CHANGES, stage_changes, changes_part, rebuilt.num_rows)

    history = names.history_table(options.table)
    history_part = report.table(history)
    history_part.rows_in = len(raw)
    tables.ensure(history, HISTORY_ICEBERG, [DT], source=options.table, kind="history")
    parts = history_parts(rows, rebuilt.column(DT).combine_chunks())
    hfilt = _range_filter(options, None)

    def stage_history(table: Table, tx: Transaction) -> bool:
        placed = placed_history(table, parts)
        current = tables.scan(history, hfilt, table=table)
        history_part.notes.append(f"range held {current.num_rows} rows; the raw zone has {placed.rows.num_rows}")
        if not placed.add_columns and not placed.promote and _same(current, _complete(placed.rows, table)):
            return False
        _evolve(tx, placed)
        _swap(tx, hfilt if current.num_rows else None, placed.rows)
        return True

    _commit(tables, history, stage_history, history_part, parts.meta.num_rows)
    return report.done()


def _commit(tables: IcebergTables, name: str, stage: Any, part: TableReport, rows: int) -> None:
    before = tables.load(name).current_snapshot()
    after = tables.transact(name, stage)
    if after is not None and (before is None or after != before.snapshot_id):
        part.rows_out = rows
        part.snapshots_added = 1
    else:
        part.notes.append("the range already holds exactly these rows: nothing to change")


def _complete(rows: pa.Table, table: Table) -> pa.Table:
    """``rows`` with the table's other columns as nulls (what a scan of them would show)."""
    n = rows.num_rows
    schema = table.schema().as_arrow()
    return pa.table({f.name: rows.column(f.name) if f.name in rows.column_names else pa.nulls(n, f.type)
                     for f in schema})


def _evolve(tx: Transaction, placed: Append) -> None:
    apply_schema(tx, placed.add_columns, placed.promote)
    if placed.properties:
        tx.set_properties(dict(placed.properties))


def _swap(tx: Transaction, row_filter: Any, rows: pa.Table) -> None:
    """Delete the range's rows (if it holds any) and append the rebuilt ones, in one transaction."""
    summary = {JOB_PROPERTY: "backfill", "lake.rows": str(rows.num_rows)}
    if row_filter is not None:
        tx.delete(row_filter, snapshot_properties=summary)
    if rows.num_rows:
        tx.append(rows, snapshot_properties=summary)
