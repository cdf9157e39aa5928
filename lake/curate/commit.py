"""A source table's rows of a batch committed to the curated Iceberg tables (docs/adr/0003).

Per source table and batch: one commit to ``changes`` and one to ``<stem>_history``, each
holding only the changes the table does not have yet (exactly once, ADR 0003, 4), with the
history columns placed by :mod:`lake.curate.evolve` (no data file is ever rewritten) and
the batch's shard and sequence range in the snapshot summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

import pyarrow as pa
import pyarrow.compute as pc

from lake.aws.catalog import Append, Committed, IcebergTables
from lake.curate import names
from lake.curate.evolve import TableColumns, place
from lake.curate.tables import CHANGES_SCHEMA, HISTORY_META, RESERVED, HistoryBatch, HistorySchema

if TYPE_CHECKING:
    from pyiceberg.table import Table

DT = "dt"
TABLE_NAME = "table_name"
CHANGES_ICEBERG = pa.schema([*CHANGES_SCHEMA, pa.field(TABLE_NAME, pa.string()), pa.field(DT, pa.string())])
HISTORY_ICEBERG = pa.schema([*HISTORY_META, pa.field(DT, pa.string())])


class Rows(Protocol):
    """One source table's rows of a batch (the columnar or the per-record path)."""

    source: str

    def changes(self) -> pa.Table: ...

    def history(self, existing: HistorySchema) -> HistoryBatch: ...

    def coordinates(self) -> list[tuple[str, str, str]]: ...


@dataclass
class TableCommit:
    """What one source table's part of a batch did to the curated tables."""

    rows: int = 0  # changes committed to `changes`
    duplicates: int = 0  # changes both tables already had
    added_columns: list[str] = field(default_factory=list)
    commits: list[Committed] = field(default_factory=list)


def days(event_time: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``YYYY-MM-DD`` (UTC) of each event time: the ``dt`` partition."""
    return pc.strftime(event_time, format="%Y-%m-%d")


def summary(rows: pa.Table, duplicates: int) -> dict[str, str]:
    """The snapshot summary of a commit: where its rows came from (as the Kafka Connect and
    Flink sinks record their offsets)."""
    seqs = rows.column("sequence_number")
    shards = sorted(set(rows.column("shard_id").to_pylist()) - {None})
    return {"lake.shard-id": ",".join(shards), "lake.first-sequence": str(pc.min(seqs).as_py() or ""),
            "lake.last-sequence": str(pc.max(seqs).as_py() or ""), "lake.rows": str(rows.num_rows),
            "lake.duplicates-dropped": str(duplicates)}


def fresh(table: Table, rows: pa.Table, source: str | None) -> pa.Array:
    """A mask of the rows whose ``event_id`` the table does not hold yet.

    Only data files that could hold a copy are read: the batch's days (partition pruning)
    and its span of event times (file statistics), and only their ``event_id`` column."""
    from pyiceberg import expressions as ex

    # pyiceberg's predicates are pydantic models whose positional constructors mypy cannot see
    And, EqualTo, In = cast(Any, ex.And), cast(Any, ex.EqualTo), cast(Any, ex.In)
    GreaterThanOrEqual, LessThanOrEqual = cast(Any, ex.GreaterThanOrEqual), cast(Any, ex.LessThanOrEqual)
    ids = rows.column("event_id")
    if table.current_snapshot() is None or rows.num_rows == 0:
        return pa.array([True] * rows.num_rows)
    times = rows.column("event_time")
    lo, hi = pc.min(times).as_py(), pc.max(times).as_py()
    expr = And(In(DT, set(pc.unique(rows.column(DT)).to_pylist())),
               And(GreaterThanOrEqual("event_time", lo.isoformat()), LessThanOrEqual("event_time", hi.isoformat())))
    expr = And(expr, In("event_id", set(ids.to_pylist())))
    if source is not None:
        expr = And(EqualTo(TABLE_NAME, source), expr)
    # the partition columns are selected too: pyiceberg 0.12 fills a file's missing identity
    # partition column (files registered by `lake migrate` lack them) only when selected, and
    # a filter on an unselected one then matches nothing in such a file
    selected = ("event_id", DT) + ((TABLE_NAME,) if source is not None else ())
    held = table.scan(row_filter=expr, selected_fields=selected).to_arrow().column("event_id")
    return pc.invert(pc.is_in(ids, value_set=held.combine_chunks()))


def changes_rows(part: Rows) -> pa.Table:
    """The ``changes`` rows of one source table's part, partition columns included."""
    changes = part.changes()
    changes = changes.append_column(TABLE_NAME, pa.array([part.source] * changes.num_rows, pa.string()))
    return changes.append_column(DT, days(changes.column("event_time")))


@dataclass
class HistoryParts:
    """One source table's history rows before placement: the metadata columns (with ``dt``),
    the attribute columns in the batch's own types, and each attribute's DynamoDB type."""

    meta: pa.Table
    attributes: dict[str, pa.Array]
    kinds: dict[str, str]


def history_parts(part: Rows, dt: pa.Array) -> HistoryParts:
    batch = part.history(HistorySchema())  # the batch's own types; evolve places them
    history = batch.table.append_column(DT, dt)
    attributes = {attr: history.column(col.name).combine_chunks() for attr, col in batch.schema.columns.items()}
    kinds = {attr: col.type.ddb for attr, col in batch.schema.columns.items()}
    return HistoryParts(history.select([*HISTORY_META.names, DT]), attributes, kinds)


def placed_history(table: Table, parts: HistoryParts, keep: pa.Array | None = None) -> Append:
    """The rows ``keep`` selects (all when None) placed in the table's columns (lake.curate.evolve):
    what appending them needs (new columns, promotions, properties), summary aside."""
    kept = parts.meta.filter(keep) if keep is not None else parts.meta
    columns = TableColumns.of(table.schema().as_arrow(), table.properties)
    attributes = {a: arr.filter(keep) for a, arr in parts.attributes.items()} if keep is not None else parts.attributes
    placed = place(attributes, columns, RESERVED, parts.kinds)
    for column, array in placed.columns.items():
        kept = kept.append_column(column, array)
    return Append(kept, add_columns=placed.add_columns, promote=placed.promote, properties=placed.properties)


def commit_rows(tables: IcebergTables, part: Rows) -> TableCommit:
    """Both curated tables of one source table's rows of a batch."""
    out = TableCommit()
    source = part.source
    changes = changes_rows(part)

    loaded = tables.ensure(names.CHANGES, CHANGES_ICEBERG, [TABLE_NAME, DT], source=None, kind="changes")

    def plan_changes(table: Table) -> Append:
        keep = fresh(table, changes, source)
        rows = changes.filter(keep)
        out.duplicates = changes.num_rows - rows.num_rows
        return Append(rows, summary=summary(rows, out.duplicates))

    out.commits.append(tables.commit(names.CHANGES, plan_changes, loaded))
    out.rows = out.commits[-1].rows

    parts = history_parts(part, changes.column(DT).combine_chunks())
    name = names.history_table(source)
    loaded = tables.ensure(name, HISTORY_ICEBERG, [DT], source=source, kind="history")

    def plan_history(table: Table) -> Append:
        # duplicates first, so a batch the table already holds adds no column either
        keep = fresh(table, parts.meta, None)
        placed = placed_history(table, parts, keep)
        return replace(placed, summary=summary(placed.rows, parts.meta.num_rows - placed.rows.num_rows))

    done = tables.commit(name, plan_history, loaded)
    out.commits.append(done)
    out.added_columns.extend(done.added_columns)
    return out
