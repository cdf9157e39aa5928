"""``backfill`` spread over workers (docs/adr/0004): on AWS Glue the job's Spark executors,
locally a process pool or a plain loop. The rows are still built by the streaming path's own
code (:mod:`lake.curate`), so they are the streaming rows; what is spread is the reading,
building and writing. The driver (the job's own process) handles metadata only.

The unit of work is one DynamoDB stream shard's objects in the range: a retried batch's copy
is always in an object of the same shard, so units never share a change, and a DynamoDB
stream shard lives about four hours, so a unit is bounded however long the range is.
A function ``mapper(fn, units) -> results`` runs the units (Spark's is
``sc.parallelize(units, len(units)).map(fn).collect()``); every unit and result is plain,
picklable data, and a worker opens its own clients from the settings.

1. **Census** (workers): each unit's rows are built, fingerprinted (:class:`~lake.glue.backfill.Digest`,
   additive) and placed against the history table's columns as they are: what new columns
   or promotions its values need. The range's current data files are fingerprinted too (64
   files per unit), so neither side is read by the driver.
2. The driver compares the sums (equal: nothing to do, a second run changes nothing), unions
   the units' schema needs (:func:`wider_type`: integers and decimals into one decimal
   column) and commits them alone (new optional columns, legal promotions). Needs no one
   column holds (a number in one unit, a string in another, for a new attribute) cannot be
   unioned: the job falls back to the one-process path (:mod:`lake.glue.backfill`) and says so.
3. **Write** (workers): each unit builds its rows again, places them in the evolved columns,
   and writes Parquet data files under the tables' locations, a chunk at a time; it returns
   their paths.
4. The driver commits one transaction per table: the range's rows deleted and every written
   file appended, so a reader sees the old range or the new one.

Over 500 lines on purpose (ARCHITECTURE rule 7): the units, what workers build, the driver's
merge of their column needs and its one commit per table are one protocol, read together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from lake.archive.keys import RawObjectKey
from lake.aws.catalog import IcebergMaintenance, IcebergTables, apply_schema
from lake.aws.clients import Clients
from lake.curate import names
from lake.curate.commit import (
    CHANGES_ICEBERG,
    DT,
    HISTORY_ICEBERG,
    TABLE_NAME,
    HistoryParts,
    changes_rows,
    fresh,
    history_parts,
)
from lake.curate.decode import Change, Coordinates, decode
from lake.curate.evolve import TableColumns, place
from lake.curate.tables import RESERVED
from lake.errors import TerminalError
from lake.glue.backfill import (
    RAW_SHARD,
    BackfillOptions,
    Digest,
    _range_filter,
    _summary,
    _with_held_coordinates,
    read_raw,
)
from lake.glue.export import ExportLayout, lines, stream_record
from lake.glue.report import JobReport, Progress, TableReport, no_progress
from lake.replay.selection import Selection
from lake.replay.source import ReadStats, select_objects
from lake.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.table import Table, Transaction

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


def local_map(fn: Callable[[Any], Any], units: Sequence[Any]) -> list[Any]:
    """The units one after the other in this process (what a test or a small lake needs)."""
    return [fn(u) for u in units]


def spark_map(spark_context: Any) -> Mapper:  # pragma: no cover - only inside AWS Glue
    """The units as Spark tasks, one per unit, on the Glue job's executors."""

    def mapper(fn: Callable[[Any], Any], units: Sequence[Any]) -> list[Any]:
        if not units:
            return []
        return list(spark_context.parallelize(list(units), len(units)).map(fn).collect())

    return mapper


@dataclass(frozen=True)
class Unit:
    """One unit of work and which step to do with it: a backfill's shard (``objects``) or
    one data file of a DynamoDB export (``export``)."""

    settings: Settings
    options: BackfillOptions  # the source table, the range, the chunk size
    objects: tuple[RawObjectKey, ...]
    step: str  # "census" | "write"
    columns: TableColumns | None = None  # the history's columns at the census
    export: ExportFile | None = None
    write: tuple[bool, bool] = (True, True)  # the write step writes changes, history


@dataclass(frozen=True)
class ExportFile:
    """One data file of a DynamoDB export, and what turning its lines into changes needs."""

    bucket: str
    key: str
    layout: ExportLayout
    key_names: tuple[str, ...]
    table_arn: str


@dataclass
class UnitResult:
    changes: Digest = field(default_factory=Digest)
    history: Digest = field(default_factory=Digest)
    add_columns: dict[str, pa.DataType] = field(default_factory=dict)
    promote: dict[str, pa.DataType] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    changes_files: list[str] = field(default_factory=list)
    history_files: list[str] = field(default_factory=list)
    objects_read: int = 0
    bytes_read: int = 0
    items: int = 0
    rows_written: tuple[int, int] = (0, 0)  # changes, history
    peak_rows: int = 0  # the most changes built into rows at once
    conflicts: list[str] = field(default_factory=list)  # new columns two chunks need differently


FILES_PER_UNIT = 64  # current data files fingerprinted by one worker


@dataclass(frozen=True)
class FileUnit:
    """Some current data files of the range, to fingerprint their rows in the range."""

    settings: Settings
    options: BackfillOptions
    table: str
    paths: frozenset[str]


def units_of(settings: Settings, clients: Clients, options: BackfillOptions, step: str,
             columns: TableColumns | None = None) -> list[Unit]:
    store = clients.store(settings.bucket)
    selection = Selection(tables=(options.table,), since_us=options.since_us, until_us=options.until_us)
    by_shard: dict[str, list[RawObjectKey]] = {}
    for obj in select_objects(store, settings.prefix, selection):
        by_shard.setdefault(obj.shard, []).append(obj)
    return [Unit(settings, options, tuple(objs), step, columns) for _, objs in sorted(by_shard.items())]


def _chunks(unit: Unit, clients: Clients, tables: IcebergTables, result: UnitResult
            ) -> Iterator[tuple[pa.Table, HistoryParts]]:
    """The unit's rows, a chunk at a time: its ``changes`` rows and its history parts."""
    from lake.curate.consumer import RecordRows

    options = unit.options
    if unit.export is not None:
        yield from _export_chunks(unit, unit.export, clients, tables, result)
        return
    stats = ReadStats()
    for raw in read_raw(unit.settings, clients, options, stats=stats, objects=unit.objects):
        rows = RecordRows(options.table, _with_held_coordinates(raw, _held(tables, options, raw)))
        built = changes_rows(rows)
        result.peak_rows = max(result.peak_rows, len(raw))
        yield built, history_parts(rows, built.column(DT).combine_chunks())
    result.objects_read = stats.objects_read


def _export_chunks(unit: Unit, export: ExportFile, clients: Clients, tables: IcebergTables, result: UnitResult
                   ) -> Iterator[tuple[pa.Table, HistoryParts]]:
    """An export file's items as changes, a chunk at a time, without those the tables already
    hold (each event id once: loading an export twice adds nothing)."""
    from lake.curate.consumer import RecordRows

    source = unit.options.table
    changes_table, history = tables.find(names.CHANGES), tables.find(names.history_table(source))
    body = clients.store(export.bucket).get(export.key)
    result.objects_read += 1
    result.bytes_read += len(body)
    chunk: list[Change] = []

    def rows_of(changes: list[Change]) -> tuple[pa.Table, HistoryParts]:
        rows = RecordRows(source, changes)
        built = changes_rows(rows)
        parts = history_parts(rows, built.column(DT).combine_chunks())
        result.peak_rows = max(result.peak_rows, len(changes))
        if changes_table is not None:
            built = built.filter(fresh(changes_table, built, source))
        if history is not None:
            keep = fresh(history, parts.meta, None)
            parts = HistoryParts(parts.meta.filter(keep), {a: arr.filter(keep) for a, arr in parts.attributes.items()},
                                 parts.kinds)
        return built, parts

    for doc in lines(body):
        record, shard = stream_record(doc, export.key_names, export.layout, export.table_arn)
        chunk.append(decode(source, record, Coordinates(shard, str(record["dynamodb"]["SequenceNumber"]))))
        result.items += 1
        if len(chunk) >= unit.options.chunk_rows:
            yield rows_of(chunk)
            chunk = []
    if chunk:
        yield rows_of(chunk)


def _held(tables: IcebergTables, options: BackfillOptions, raw: Sequence[Any]) -> dict[str, tuple[str, str]]:
    """The Kinesis coordinates ``changes`` or the history hold for these changes: only the files
    of their time span are opened, only for their event ids."""
    from pyiceberg import expressions as ex

    if not raw:
        return {}
    And, In = cast(Any, ex.And), cast(Any, ex.In)
    times = [c.event_time_us for c in raw]
    span = And(cast(Any, ex.GreaterThanOrEqual)("event_time", _iso(min(times))),
               cast(Any, ex.LessThanOrEqual)("event_time", _iso(max(times))))
    ids = In("event_id", {c.event_id for c in raw})
    out: dict[str, tuple[str, str]] = {}
    for name, source, extra in ((names.history_table(options.table), None, [DT]),
                                (names.CHANGES, options.table, [TABLE_NAME, DT])):
        if tables.find(name) is None:
            continue
        got = tables.scan(name, And(_range_filter(options, source), And(span, ids)),
                          ["event_id", "shard_id", "sequence_number", *extra])
        for e, s, q in zip(got.column("event_id").to_pylist(), got.column("shard_id").to_pylist(),
                           got.column("sequence_number").to_pylist(), strict=True):
            if s is not None and q is not None and not s.startswith(RAW_SHARD):
                out[e] = (s, q)
    return out


def _iso(us: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat()


def run_unit(unit: Unit) -> UnitResult:
    """A worker's step on one unit (see the module doc). Top-level and fed plain data, so
    Spark can ship it to an executor."""
    clients = Clients(unit.settings)
    tables = IcebergTables(unit.settings, clients)
    result = UnitResult()
    history_name = names.history_table(unit.options.table)
    if unit.step == "census":
        assert unit.columns is not None
        for built, parts in _chunks(unit, clients, tables, result):
            result.changes.add(built)
            placed = place(parts.attributes, unit.columns, RESERVED, parts.kinds)
            rows = parts.meta
            for column, array in placed.columns.items():
                rows = rows.append_column(column, array)
            result.history.add(rows)
            for name, t in (*placed.add_columns.items(), *placed.promote.items()):
                into = result.promote if name in placed.promote else result.add_columns
                wider = wider_type(into.get(name, t), t)
                if wider is None:
                    result.conflicts.append(name)
                else:
                    into[name] = wider
            for key, value in placed.properties.items():
                if result.properties.setdefault(key, value) != value:
                    result.conflicts.append(key)
        return result
    maintenance = IcebergMaintenance(tables)
    changes_table, history = tables.load(names.CHANGES), tables.load(history_name)
    columns = TableColumns.of(history.schema().as_arrow(), history.properties)
    for built, parts in _chunks(unit, clients, tables, result):
        placed = place(parts.attributes, columns, RESERVED, parts.kinds)
        if placed.add_columns or placed.promote:
            raise TerminalError(f"{history_name}: its columns changed between the census and the write "
                                f"({sorted(placed.add_columns) or sorted(placed.promote)}); run the backfill again")
        rows = parts.meta
        for column, array in placed.columns.items():
            rows = rows.append_column(column, array)
        if unit.write[0]:
            result.changes_files += _write(maintenance, changes_table, built, (TABLE_NAME, DT))
        if unit.write[1]:
            result.history_files += _write(maintenance, history, rows, (DT,))
        result.rows_written = (result.rows_written[0] + built.num_rows, result.rows_written[1] + rows.num_rows)
    return result


def _write(maintenance: IcebergMaintenance, table: Table, rows: pa.Table, partition_by: tuple[str, ...]) -> list[str]:
    """``rows`` as one data file per partition under the table's location; the files' paths."""
    if rows.num_rows == 0:
        return []
    schema = table.schema().as_arrow()
    full = pa.table({f.name: rows.column(f.name) if f.name in rows.column_names else pa.nulls(rows.num_rows, f.type)
                     for f in schema})
    keys = full.select(list(partition_by)).group_by(list(partition_by)).aggregate([]).to_pylist()
    out = []
    for key in keys:
        mask = None
        for column, value in key.items():
            test = pc.equal(full.column(column), value)
            mask = test if mask is None else pc.and_(mask, test)
        part = full.filter(mask)
        path = "/".join(f"{c}={quote(str(v), safe='')}" for c, v in key.items())
        written = maintenance.write_file(table, part.to_batches(), path, f"{uuid.uuid4()}-backfill.parquet")
        out.append(str(written.file_path))
    return out


def digest_file(unit: FileUnit) -> Digest:
    """The fingerprint of some current data files' rows in the range."""
    clients = Clients(unit.settings)
    tables = IcebergTables(unit.settings, clients)
    maintenance = IcebergMaintenance(tables)
    table = tables.load(unit.table)
    source = unit.options.table if unit.table == names.CHANGES else None
    filt = _range_filter(unit.options, source)
    digest = Digest()
    for ref in maintenance.data_files(table, filt):
        if ref.path in unit.paths:
            for batch in maintenance.read(table, [ref], row_filter=filt):
                digest.add(batch)
    return digest


def _sum(digests: Sequence[Digest]) -> Digest:
    total = Digest()
    for d in digests:
        total.rows += d.rows
        total.total = (total.total + d.total) % (1 << 128)
    return total


def backfill_distributed(settings: Settings, options: BackfillOptions, mapper: Mapper,
                         clients: Clients | None = None, progress: Progress = no_progress) -> JobReport:
    """``backfill`` with the work on ``mapper``'s workers (see the module doc)."""
    from lake.glue.backfill import _backfill

    clients = clients or Clients(settings)
    tables = IcebergTables(settings, clients)
    maintenance = IcebergMaintenance(tables)
    history_name = names.history_table(options.table)
    report = JobReport("backfill (distributed)", options.dry_run)
    changes_part, history_part = report.table(names.CHANGES), report.table(history_name)
    if not options.dry_run:
        tables.ensure(names.CHANGES, CHANGES_ICEBERG, [TABLE_NAME, DT], source=None, kind="changes")
        tables.ensure(history_name, HISTORY_ICEBERG, [DT], source=options.table, kind="history")
    history = tables.find(history_name)
    columns = TableColumns.of(history.schema().as_arrow() if history is not None else HISTORY_ICEBERG,
                              history.properties if history is not None else {})
    units = units_of(settings, clients, options, "census", columns)
    census: list[UnitResult] = mapper(run_unit, units)
    union = _union(census)
    progress("backfill: census", len(units), len(units))
    if isinstance(union, str):
        fallback = _backfill(settings, replace(options, per_day=False), clients, progress)
        for part in fallback.tables:
            part.notes.append(f"the units need column {union} in two ways no one column holds: done in one process")
        return fallback
    want_changes, want_history = _sum([r.changes for r in census]), _sum([r.history for r in census])
    changes_part.files_in = sum(r.objects_read for r in census)
    changes_part.rows_in = history_part.rows_in = want_changes.rows
    changes_part.notes.append(f"{len(units)} unit(s) (stream shards); the most changes built at once in a unit: "
                              f"{max((r.peak_rows for r in census), default=0)}")
    have: dict[str, Digest] = {}
    for name, source in ((names.CHANGES, options.table), (history_name, None)):
        found = tables.find(name)
        files = maintenance.data_files(found, _range_filter(options, source)) if found is not None else []
        groups = [frozenset(f.path for f in files[i:i + FILES_PER_UNIT]) for i in range(0, len(files), FILES_PER_UNIT)]
        have[name] = _sum(mapper(digest_file, [FileUnit(settings, options, name, g) for g in groups]))
    add_columns, promote, properties = union
    same_changes = have[names.CHANGES] == want_changes
    same_history = have[history_name] == want_history and not add_columns and not promote
    changes_part.notes.append(f"range held {have[names.CHANGES].rows} rows; the raw zone has {want_changes.rows}")
    history_part.notes.append(f"range held {have[history_name].rows} rows; the raw zone has {want_history.rows}")
    if options.dry_run or (same_changes and same_history):
        if not options.dry_run:
            for part in (changes_part, history_part):
                part.notes.append("the range already holds exactly these rows: nothing to change")
        changes_part.rows_out = history_part.rows_out = want_changes.rows if options.dry_run else 0
        return report.done()
    _evolve(tables, history_name, add_columns, promote, properties)
    written: list[UnitResult] = mapper(run_unit, [replace(u, step="write", columns=None,
                                                          write=(not same_changes, not same_history)) for u in units])
    progress("backfill: units written", len(units), len(units))
    if not same_changes:
        _commit_files(tables, names.CHANGES, _range_filter(options, options.table), have[names.CHANGES].rows,
                      [p for r in written for p in r.changes_files], want_changes.rows, changes_part)
    if not same_history:
        _commit_files(tables, history_name, _range_filter(options, None), have[history_name].rows,
                      [p for r in written for p in r.history_files], want_history.rows, history_part)
    return report.done()


def _evolve(tables: IcebergTables, name: str, add_columns: dict[str, pa.DataType], promote: dict[str, pa.DataType],
            properties: dict[str, str]) -> None:
    """The units' union of new columns, promotions and column properties, committed alone
    (optional columns: readers of the old rows see nulls) before any worker writes."""
    if not (add_columns or promote or properties):
        return

    def evolve(table: Table, tx: Transaction) -> bool:
        apply_schema(tx, {k: v for k, v in add_columns.items() if k not in table.schema().column_names}, promote)
        tx.set_properties(properties)
        return True

    tables.transact(name, evolve)


def wider_type(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """One column type that holds the values of both (what two units proposed for one new
    column, or one promotion), or None. Integers go into a decimal with 19 integer digits or
    more (``lake.curate.evolve.split`` places them there); two decimals of one scale into the
    larger precision (Iceberg's legal promotion)."""
    if a == b:
        return a
    for x, y in ((a, b), (b, a)):
        if pa.types.is_int64(x) and pa.types.is_decimal(y) and y.precision - y.scale >= 19:
            return y
    if pa.types.is_decimal(a) and pa.types.is_decimal(b) and a.scale == b.scale:
        return a if a.precision >= b.precision else b
    return None


def _union(census: Sequence[UnitResult]
           ) -> tuple[dict[str, pa.DataType], dict[str, pa.DataType], dict[str, str]] | str:
    """The units' new columns, promotions and column properties together, or the name of one
    that two units need in ways no single column holds."""
    add_columns: dict[str, pa.DataType] = {}
    promote: dict[str, pa.DataType] = {}
    properties: dict[str, str] = {}
    for r in census:
        if r.conflicts:
            return r.conflicts[0]
        for got, into in ((r.add_columns, add_columns), (r.promote, promote)):
            for name, t in got.items():
                wider = wider_type(into.get(name, t), t)
                if wider is None:
                    return name
                into[name] = wider
        for key, value in r.properties.items():
            if properties.setdefault(key, value) != value:
                return key
    return add_columns, promote, properties


def _commit_files(tables: IcebergTables, name: str, row_filter: Any, held_rows: int, paths: Sequence[str],
                  rows: int, part: TableReport) -> None:
    """One transaction: the range's rows deleted, the written files appended (their footers read
    for the statistics: metadata, not rows)."""
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    def stage(table: Table, tx: Transaction) -> bool:
        if not held_rows and not paths:
            return False
        if held_rows:
            tx.delete(row_filter, snapshot_properties=_summary(rows))
        if paths:
            with tx.update_snapshot(snapshot_properties=_summary(rows)).fast_append() as append:
                for path in paths:
                    append.append_data_file(parquet_file_to_data_file(table.io, tx.table_metadata, path))
        return True

    if tables.transact(name, stage) is None:
        return
    part.rows_out = rows
    part.files_out = len(paths)
    part.snapshots_added = int(bool(held_rows)) + int(bool(paths))
    part.notes.append(f"one commit: the range's rows replaced by {len(paths)} file(s) written by the workers")


def load_export_distributed(settings: Settings, source: str, export: ExportLayout, bucket: str,
                            key_names: Sequence[str], table_arn: str, mapper: Mapper, clients: Clients,
                            changes_part: TableReport, history_part: TableReport, chunk_rows: int,
                            dry_run: bool) -> bool:
    """``bootstrap``'s load with the work on ``mapper``'s workers: one unit per export data
    file (AWS writes many), census, the schema union, the files written by the workers, one
    commit per table. False (nothing done) when the units need one new column with two types:
    the caller loads in one process instead."""
    tables = IcebergTables(settings, clients)
    history_name = names.history_table(source)
    if not dry_run:
        tables.ensure(names.CHANGES, CHANGES_ICEBERG, [TABLE_NAME, DT], source=None, kind="changes")
        tables.ensure(history_name, HISTORY_ICEBERG, [DT], source=source, kind="history")
    history = tables.find(history_name)
    columns = TableColumns.of(history.schema().as_arrow() if history is not None else HISTORY_ICEBERG,
                              history.properties if history is not None else {})
    options = BackfillOptions(source, chunk_rows=chunk_rows)
    units = [Unit(settings, options, (), "census", columns,
                  ExportFile(bucket, key, export, tuple(key_names), table_arn)) for key in export.data_keys]
    census: list[UnitResult] = mapper(run_unit, units)
    union = _union(census)
    if isinstance(union, str):
        return False
    changes_part.files_in = sum(r.objects_read for r in census)
    changes_part.bytes_in = sum(r.bytes_read for r in census)
    changes_part.rows_in = history_part.rows_in = sum(r.items for r in census)
    changes_part.notes.append(f"{len(units)} unit(s) (export data files); the most items built at once in a unit: "
                              f"{max((r.peak_rows for r in census), default=0)}")
    if dry_run:
        return True
    _evolve(tables, history_name, *union)
    written: list[UnitResult] = mapper(run_unit, [replace(u, step="write", columns=None) for u in units])
    _commit_files(tables, names.CHANGES, None, 0, [p for r in written for p in r.changes_files],
                  sum(r.rows_written[0] for r in written), changes_part)
    _commit_files(tables, history_name, None, 0, [p for r in written for p in r.history_files],
                  sum(r.rows_written[1] for r in written), history_part)
    if changes_part.rows_in and not changes_part.rows_out:
        changes_part.notes.append("every exported item was already loaded: nothing to change")
    return True
