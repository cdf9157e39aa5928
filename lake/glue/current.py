"""``current_state``: ``<stem>_current``, one row per live item of a source table with the
history's typed columns, kept up to date incrementally; ``--as-of`` materialises the state
at a past time into a snapshot table of its own.

Incremental (MERGE semantics): the job records in the current table's property
``lake.current.history-snapshot`` the history snapshot it has applied. A later run reads
only the data files the history's snapshots since then added (a compaction's rewrite adds
no change and is skipped), reduces them to the latest change per item
(:mod:`lake.glue.state`), and merges with what it knows: the current row of each touched
item, and any REMOVE of it in the history later than the changes read (an item deleted
earlier is no longer in the current table, and a late or backfilled older change must not
bring it back). Upserts and deletes commit together with the new watermark, in one
snapshot. A run with nothing new changes nothing. A watermark the history no longer has
(expired by ``compact``) means a full rebuild, as does ``--full``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from lake.aws.catalog import SOURCE_PROPERTY, DataFileRef, IcebergMaintenance, IcebergTables
from lake.aws.clients import Clients
from lake.curate import names
from lake.errors import ConfigError, NotFoundError
from lake.glue.compact import JOB_PROPERTY
from lake.glue.report import JobReport, Progress, TableReport, no_progress
from lake.glue.state import ORDER_COLUMNS, fold, latest, live
from lake.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.table import Table, Transaction

WATERMARK = "lake.current.history-snapshot"
AS_OF = "lake.current.as-of"
KIND = "current"
COPIED = ("lake.attribute.", "lake.dynamodb-type.")
_SKIPPED_OPERATIONS = {"replace"}  # Iceberg's rewrite (Athena OPTIMIZE, Spark rewrite_data_files)


@dataclass(frozen=True)
class CurrentOptions:
    tables: tuple[str, ...] = ()  # source tables; empty = every one with a history table
    as_of_us: int | None = None  # materialise the state at this event time (epoch µs)
    into: str | None = None  # the as-of table's name (default <stem>_current_at_<time>)
    full: bool = False  # rebuild from the whole history instead of incrementally
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.into is not None and self.as_of_us is None:
            raise ConfigError("--into names the table of --as-of; give --as-of too")
        if self.into is not None and len(self.tables) != 1:
            raise ConfigError("--into needs exactly one --table")


def as_of_table(source: str, as_of_us: int) -> str:
    """``<stem>_current_at_<yyyymmddthhmmssz>``: the default name of an as-of snapshot table."""
    stamp = dt.datetime.fromtimestamp(as_of_us / 1e6, dt.UTC).strftime("%Y%m%dt%H%M%Sz")
    return f"{names.base_name(source)}_current_at_{stamp}"


def current_state(settings: Settings, options: CurrentOptions, clients: Clients | None = None,
                  progress: Progress = no_progress) -> JobReport:
    clients = clients or Clients(settings)
    tables = IcebergTables(settings, clients)
    maintenance = IcebergMaintenance(tables)
    report = JobReport("current_state" + (" --as-of" if options.as_of_us is not None else ""), options.dry_run)
    for source in options.tables or sources(tables):
        history = names.history_table(source)
        if options.as_of_us is not None:
            target = options.into or as_of_table(source, options.as_of_us)
        else:
            target = names.current_table(source)
        part = report.table(target)
        h = tables.find(history)
        if h is None or h.current_snapshot() is None:
            part.notes.append(f"{history} holds no change yet: nothing to do")
            continue
        _one(tables, maintenance, source, h, target, options, part, progress)
    return report.done()


def sources(tables: IcebergTables) -> list[str]:
    """The source tables that have a history table (read from its ``lake.source-table``)."""
    out = []
    for name in tables.list():
        if name.endswith("_history"):
            try:
                source = tables.load(name).properties.get(SOURCE_PROPERTY)
            except NotFoundError:
                continue
            if source:
                out.append(source)
    return sorted(out)


def _one(tables: IcebergTables, maintenance: IcebergMaintenance, source: str, h: Table, target: str,
         options: CurrentOptions, part: TableReport, progress: Progress) -> None:
    head = h.current_snapshot()
    assert head is not None
    existing = tables.find(target)
    mark = existing.properties.get(WATERMARK) if existing is not None else None
    if mark == str(head.snapshot_id) and not options.full:
        part.notes.append(f"up to date with {names.history_table(source)} snapshot {mark}")
        return
    files: list[DataFileRef]
    incremental = (options.as_of_us is None and not options.full and existing is not None and mark is not None
                   and existing.current_snapshot() is not None)
    since = snapshots_since(h, int(mark)) if incremental and mark is not None else None
    if since is None:
        incremental = False
        files = maintenance.data_files(h, _as_of_filter(options.as_of_us))
    else:
        files = [f for s in since for f in maintenance.added_files(h, s)]
    columns = [f.name for f in h.schema().fields if f.name != "dt"]
    state: pa.Table | None = None
    for i, ref in enumerate(files):
        for batch in maintenance.read(h, [ref], columns, _as_of_filter(options.as_of_us)):
            part.rows_in += batch.num_rows
            state = fold(state, pa.Table.from_batches([batch]))
        progress(f"current_state {source}", i + 1, len(files))
    part.files_in = len(files)
    schema = pa.schema([h.schema().as_arrow().field(c) for c in columns])
    state = state if state is not None else schema.empty_table()
    properties = {k: v for k, v in h.properties.items() if k.startswith(COPIED)}
    properties[WATERMARK] = str(head.snapshot_id)
    if options.as_of_us is not None:
        properties[AS_OF] = str(options.as_of_us)
    part.notes.append(("incremental" if incremental else "full") + f": {len(files)} history file(s) read")
    if options.dry_run:
        part.rows_out = live(state).num_rows
        return
    tables.ensure(target, schema, [], source=source, kind=KIND)
    outcome: dict[str, int] = {}

    def stage(c: Table, tx: Transaction) -> bool:
        gone: list[str] = []
        deletes: list[str] | None = None
        if incremental and c.current_snapshot() is not None:
            upserts, gone, replaced = _merge(h, c, state)
            deletes = gone + replaced
        else:
            upserts = live(state)
        _evolve(tx, c, schema)
        tx.set_properties(properties)
        from pyiceberg.expressions import AlwaysTrue, In

        if deletes is None:
            if c.current_snapshot() is not None:
                tx.delete(AlwaysTrue())
        elif deletes:
            tx.delete(cast(Any, In)("key", set(deletes)))
        if upserts.num_rows:
            tx.append(upserts, snapshot_properties={JOB_PROPERTY: "current_state", WATERMARK: str(head.snapshot_id)})
        outcome.update(upserts=upserts.num_rows, deletes=len(gone),
                       snapshots=int(bool(upserts.num_rows or deletes or (deletes is None and c.current_snapshot()))))
        return True

    tables.transact(target, stage)
    part.rows_out = outcome.get("upserts", 0)
    part.snapshots_added = outcome.get("snapshots", 0)  # a run that only moves the watermark adds none
    if incremental:
        part.notes.append(f"{outcome.get('upserts', 0)} item(s) inserted or updated, "
                          f"{outcome.get('deletes', 0)} deleted")


def _as_of_filter(as_of_us: int | None) -> Any:
    if as_of_us is None:
        return None
    from pyiceberg.expressions import LessThanOrEqual

    return cast(Any, LessThanOrEqual)("event_time", _iso(as_of_us))


def _iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat()


def snapshots_since(h: Table, mark: int) -> list[int] | None:
    """The history's snapshots after ``mark`` (oldest first) that may add changes, or None
    when ``mark`` is not an ancestor of the current snapshot any more (expired, rolled back)."""
    out = []
    snapshot = h.current_snapshot()
    while snapshot is not None and snapshot.snapshot_id != mark:
        summary = snapshot.summary
        operation = str(summary.operation.value) if summary is not None else ""
        job = summary.additional_properties.get(JOB_PROPERTY) if summary is not None else None
        if job != "compact" and operation not in _SKIPPED_OPERATIONS:
            out.append(snapshot.snapshot_id)
        parent = snapshot.parent_snapshot_id
        snapshot = h.snapshot_by_id(parent) if parent is not None else None
    if snapshot is None:
        return None
    return out[::-1]


def _merge(h: Table, c: Table, state: pa.Table) -> tuple[pa.Table, list[str], list[str]]:
    """(rows to upsert, held keys to delete, held keys the upserts replace) from the reduced
    new changes ``state``, the current rows of those items, and later REMOVEs of them in the
    history."""
    from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, In

    if state.num_rows == 0:
        return state, [], []
    touched = set(state.column("key").to_pylist())
    earliest = pc.min(state.column("event_time")).as_py()
    held = c.scan(row_filter=cast(Any, In)("key", touched), selected_fields=ORDER_COLUMNS).to_arrow()
    removes = h.scan(row_filter=cast(Any, And)(cast(Any, In)("key", touched), cast(Any, And)(
        cast(Any, EqualTo)("event_name", "REMOVE"), cast(Any, GreaterThanOrEqual)("event_time", earliest.isoformat()))),
        selected_fields=ORDER_COLUMNS).to_arrow()
    new = state.select(ORDER_COLUMNS)
    tagged = pa.concat_tables([
        _tag(held.select(ORDER_COLUMNS), 0), _tag(new, 1), _tag(removes.select(ORDER_COLUMNS), 2),
    ], promote_options="permissive")  # a scan that matches nothing may come back with large_string
    winners = latest(tagged)
    from_new = pc.equal(winners.column("src"), 1)
    is_remove = pc.equal(winners.column("event_name"), "REMOVE")
    upsert_keys = winners.filter(pc.and_(from_new, pc.invert(is_remove))).column("key")
    gone = winners.filter(pc.and_(pc.not_equal(winners.column("src"), 0), is_remove)).column("key")
    held_keys = set(held.column("key").to_pylist())
    upserts = state.filter(pc.is_in(state.column("key"), value_set=upsert_keys))
    return (upserts, [k for k in gone.to_pylist() if k in held_keys],
            [k for k in upsert_keys.to_pylist() if k in held_keys])


def _tag(t: pa.Table, src: int) -> pa.Table:
    ordered = t.select(list(ORDER_COLUMNS))
    return ordered.append_column("src", pa.array([src] * t.num_rows, pa.int8()))


def _evolve(tx: Transaction, c: Table, schema: pa.Schema) -> None:
    have = set(c.schema().column_names)
    if all(f.name in have for f in schema) and c.schema().as_arrow().equals(schema, check_metadata=False):
        return
    with tx.update_schema() as update:
        update.union_by_name(schema)

