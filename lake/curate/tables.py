"""Arrow tables of the curated zone: ``changes`` and ``<table>_history``. Pure.

Column builders take Python lists straight to Arrow (no pandas, no per-value
TypeDeserializer); numbers stay text until a vectorised cast decides their type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lake.curate.columns import Built, ColumnType, arrow_type, build_column
from lake.curate.decode import Change, changed_attributes, keys_json, plain_json

log = logging.getLogger(__name__)

TS = pa.timestamp("us", tz="UTC")

CHANGES_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("event_name", pa.string()),
    ("event_time", TS),
    ("sequence_number", pa.string()),
    ("shard_id", pa.string()),
    ("source_sequence_number", pa.string()),
    ("keys", pa.string()),
    ("key", pa.string()),
    ("old_image", pa.string()),
    ("new_image", pa.string()),
    ("changed_attributes", pa.list_(pa.string())),
    ("is_ttl_delete", pa.bool_()),
    ("user_identity", pa.string()),
    ("size_bytes", pa.int64()),
])
CHANGES_GLUE_TYPES = {
    "event_id": "string", "event_name": "string", "event_time": "timestamp", "sequence_number": "string",
    "shard_id": "string", "source_sequence_number": "string", "keys": "string", "key": "string",
    "old_image": "string", "new_image": "string", "changed_attributes": "array<string>",
    "is_ttl_delete": "boolean", "user_identity": "string", "size_bytes": "bigint",
}
CHANGES_PARTITIONS = ("table_name", "dt")

HISTORY_META = pa.schema([
    ("event_id", pa.string()),
    ("event_name", pa.string()),
    ("event_time", TS),
    ("sequence_number", pa.string()),
    ("shard_id", pa.string()),
    ("key", pa.string()),
    ("is_ttl_delete", pa.bool_()),
])
HISTORY_META_GLUE = {"event_id": "string", "event_name": "string", "event_time": "timestamp",
                     "sequence_number": "string", "shard_id": "string", "key": "string",
                     "is_ttl_delete": "boolean"}
RESERVED = frozenset(HISTORY_META_GLUE) | {"dt"}
_UNSAFE = re.compile(r"[^a-z0-9_]")


def glue_name(text: str) -> str:
    """A Glue/Athena-safe lower-case identifier."""
    return _UNSAFE.sub("_", text.lower()) or "_"


def history_table_name(source_table: str) -> str:
    return f"{glue_name(source_table)}_history"


# One builder per row column, so `changes` and the history's metadata columns are made alike
# (each table builds only its own: the history needs no keys JSON nor image texts).
_COLUMNS: dict[str, Callable[[Sequence[Change]], list[Any]]] = {
    "event_id": lambda cs: [c.event_id for c in cs],
    "event_name": lambda cs: [c.event_name for c in cs],
    "event_time": lambda cs: [c.event_time_us for c in cs],
    "sequence_number": lambda cs: [c.padded_sequence for c in cs],
    "shard_id": lambda cs: [c.coords.shard_id for c in cs],
    "source_sequence_number": lambda cs: [c.source_sequence_number for c in cs],
    "keys": lambda cs: [keys_json(c) for c in cs],
    "key": lambda cs: [c.key for c in cs],
    "old_image": lambda cs: [_text(c.old_json, c.old_image) for c in cs],
    "new_image": lambda cs: [_text(c.new_json, c.new_image) for c in cs],
    "changed_attributes": lambda cs: [changed_attributes(c) for c in cs],
    "is_ttl_delete": lambda cs: [c.is_ttl_delete for c in cs],
    "user_identity": lambda cs: [c.user_identity for c in cs],
    "size_bytes": lambda cs: [c.size_bytes for c in cs],
}


def _rows(changes: Sequence[Change], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([pa.array(_COLUMNS[f.name](changes), f.type) for f in schema], schema=schema)


def changes_table(changes: Sequence[Change]) -> pa.Table:
    """Rows of the ``changes`` table (its partition columns are added by lake.curate.commit)."""
    return _rows(changes, CHANGES_SCHEMA)


def _text(rendered: str | None, image: Mapping[str, Any] | None) -> str | None:
    return rendered if rendered is not None or image is None else plain_json(image)


@dataclass(frozen=True)
class HistoryColumn:
    """A history column: its name, the attribute it holds and its type."""

    name: str
    attribute: str
    type: ColumnType


@dataclass
class HistorySchema:
    """The attribute columns of one ``<table>_history`` (metadata columns are fixed)."""

    columns: dict[str, HistoryColumn] = field(default_factory=dict)  # by attribute

    def column_name(self, attribute: str) -> str:
        """The column of an attribute: lower-case and safe; ``attr_`` before reserved names;
        a numeric suffix when two attributes differ only in case or punctuation."""
        known = self.columns.get(attribute)
        if known is not None:
            return known.name
        base = glue_name(attribute)
        if base in RESERVED:
            base = f"attr_{base}"
        taken = {c.name for c in self.columns.values()}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        return name


@dataclass
class HistoryBatch:
    """One history table's rows for a batch, plus what changed in its schema."""

    table: pa.Table
    schema: HistorySchema
    added: list[str] = field(default_factory=list)  # attributes that got a new column
    widened: dict[str, ColumnType] = field(default_factory=dict)  # attribute → its old type


def gather(images: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Transpose images into per-attribute cell lists (``{}`` where an item lacks it)."""
    n = len(images)
    cols: dict[str, list[Mapping[str, Any]]] = {}
    empty: Mapping[str, Any] = {}
    for i, img in enumerate(images):
        for name, tv in img.items():
            col = cols.get(name)
            if col is None:
                col = cols[name] = [empty] * n
            col[i] = tv
    return cols


def history_table(changes: Sequence[Change], existing: HistorySchema) -> HistoryBatch:
    """Rows of ``<table>_history`` with one typed column per top-level attribute.

    Every column of the resulting schema (old and new) is in the table, so all files
    written from now on share one schema.
    """
    cells = gather([c.image for c in changes])
    built = {}
    for attribute in sorted(cells):
        old = existing.columns.get(attribute)
        built[attribute] = build_column(cells[attribute], old.type if old else None)
    return assemble_history(history_meta(changes), built, existing)


def history_meta(changes: Sequence[Change]) -> pa.Table:
    """The metadata columns of ``<table>_history`` (HISTORY_META), as changes_table has them."""
    return _rows(changes, HISTORY_META)


def assemble_history(changes: pa.Table, built: Mapping[str, Built | None], existing: HistorySchema) -> HistoryBatch:
    """The history table from the batch's ``changes`` rows (metadata) and its built attribute
    columns; evolves the schema (new columns, widened ones) as the columns require."""
    schema = HistorySchema(dict(existing.columns))
    out = HistoryBatch(pa.table({}), schema)
    arrays: dict[str, pa.Array] = {}
    for attribute in sorted(built):
        column = built[attribute]
        if column is None:
            continue
        old = existing.columns.get(attribute)
        if old is None:
            schema.columns[attribute] = HistoryColumn(schema.column_name(attribute), attribute, column.type)
            out.added.append(attribute)
        elif column.type != old.type:
            schema.columns[attribute] = HistoryColumn(old.name, attribute, column.type)
            if column.widened:
                out.widened[attribute] = old.type
        if column.widened:
            log.warning("history column %r widened to %s: %s", attribute, column.type.glue, column.reason)
        arrays[attribute] = column.array
    n = changes.num_rows
    meta = [changes.column(name) for name in HISTORY_META.names]
    names = list(HISTORY_META.names)
    for col in schema.columns.values():
        names.append(col.name)
        arr = arrays.get(col.attribute)
        meta.append(arr if arr is not None else pa.nulls(n, arrow_type(col.type.glue)))
    out.table = pa.Table.from_arrays(meta, names=names)
    return out
