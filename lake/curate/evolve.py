"""A batch's history columns placed in an Iceberg table's schema without rewriting data. Pure.

ADR 0003, 6. A batch decides each attribute's type from its own values (the rules of
``lake.curate.columns``); the table may already hold that attribute in a column of another
type. Iceberg allows only a few type promotions (int → long, float → double, a decimal's
precision) and none of ours (bigint → decimal, number → string) among them, so a column
changes type only by those (a table made elsewhere may hold an int). Instead each value
goes to the first of the attribute's columns (the main one, then its siblings in the
order they were added) whose type holds it exactly; values that fit none go to a new
sibling ``<column>__<family>`` of the batch's type. Nothing is cast lossily, nothing is
dropped, and every column keeps one type.

Which attribute a column holds is recorded in table properties
(``lake.attribute.<column>`` → attribute name, ``lake.dynamodb-type.<column>`` → the
DynamoDB type of its values), so names made safe (``Foo`` and ``foo`` → ``foo`` and
``foo_2``) and siblings map back to their attribute.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

ATTRIBUTE_PROPERTY = "lake.attribute."
DYNAMODB_TYPE_PROPERTY = "lake.dynamodb-type."
SIBLING = "__"
_UNSAFE = re.compile(r"[^a-z0-9_]")
_INT64 = (-(2**63), 2**63 - 1)
_MAX_NAME = 180
_TEXT_KINDS = {"M": "map", "L": "list", "mixed": "mixed"}


def safe_name(text: str) -> str:
    """A Glue/Athena/S3 Tables-safe lower-case column name. DynamoDB allows attribute names
    of 64 KB, Glue column names and property keys 255 characters: a long name is cut and
    given a digest of the whole, leaving room for a sibling's suffix and the property prefix."""
    name = _UNSAFE.sub("_", text.lower()) or "_"
    if len(name) > _MAX_NAME:
        name = f"{name[:_MAX_NAME - 9]}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return name


def family(t: pa.DataType, kind: str = "") -> str:
    """The short name of a type, used in sibling column names; text columns are named by
    the DynamoDB type they hold (``map``, ``list``, ``mixed``), since they share one Arrow type."""
    if kind in _TEXT_KINDS and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return _TEXT_KINDS[kind]
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_decimal(t):
        return "decimal" if t.scale == 18 else f"decimal_{t.scale}"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array_{family(t.value_type)}"
    return safe_name(str(t))


@dataclass(frozen=True)
class TableColumns:
    """What a history table already holds: its columns in schema order and their attributes."""

    types: Mapping[str, pa.DataType] = field(default_factory=dict)
    attributes: Mapping[str, str] = field(default_factory=dict)  # column → attribute

    kinds: Mapping[str, str] = field(default_factory=dict)  # column → DynamoDB type, where recorded

    @classmethod
    def of(cls, schema: pa.Schema, properties: Mapping[str, str]) -> TableColumns:
        def by_column(prefix: str) -> dict[str, str]:
            return {k[len(prefix):]: v for k, v in properties.items() if k.startswith(prefix)}

        return cls({f.name: f.type for f in schema}, by_column(ATTRIBUTE_PROPERTY), by_column(DYNAMODB_TYPE_PROPERTY))

    def columns_of(self, attribute: str) -> list[str]:
        return [c for c in self.types if self.attributes.get(c) == attribute]


@dataclass
class Placement:
    """The batch's attribute columns as the table will hold them."""

    columns: dict[str, pa.Array] = field(default_factory=dict)
    add_columns: dict[str, pa.DataType] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    siblings: dict[str, str] = field(default_factory=dict)  # new sibling → the attribute it serves
    promote: dict[str, pa.DataType] = field(default_factory=dict)  # column → its wider type (legal in Iceberg)


def place(batch: Mapping[str, pa.Array], table: TableColumns, reserved: frozenset[str] = frozenset(),
          dynamodb_types: Mapping[str, str] | None = None) -> Placement:
    """Place each attribute's batch array (by attribute name) in the table's columns; a new
    column records its attribute and the DynamoDB type of its values (``dynamodb_types``,
    by attribute: S, N, …, M, L, or ``mixed``), so a reader can turn its values back."""
    out = Placement()
    taken = set(table.types) | set(reserved)
    for attribute, array in batch.items():
        remaining = array
        kind = (dynamodb_types or {}).get(attribute, "")
        for column in table.columns_of(attribute):
            if remaining.null_count == len(remaining):
                break
            recorded = table.kinds.get(column, "")
            if kind and recorded and recorded != kind and _TEXT_KINDS.keys() & {kind, recorded}:
                continue  # text of another DynamoDB type (a map's JSON in a string column): not this column
            wider = promotion(table.types[column], remaining.type)
            if wider is not None:  # a promotion Iceberg allows: the column itself widens
                out.promote[column] = wider
                out.columns[column], remaining = remaining, pa.nulls(len(remaining), remaining.type)
                break
            fits, remaining = split(remaining, table.types[column])
            if fits is not None:
                out.columns[column] = fits
        if remaining.null_count == len(remaining) and table.columns_of(attribute):
            continue
        existing = table.columns_of(attribute)
        if existing:
            name = _unique(f"{existing[0]}{SIBLING}{family(remaining.type, kind)}", taken)
            out.siblings[name] = attribute
        else:
            base = safe_name(attribute)
            name = _unique(f"attr_{base}" if base in reserved else base, taken)
        taken.add(name)
        out.columns[name] = remaining
        out.add_columns[name] = remaining.type
        out.properties[ATTRIBUTE_PROPERTY + name] = attribute
        if dynamodb_types and attribute in dynamodb_types:
            out.properties[DYNAMODB_TYPE_PROPERTY + name] = dynamodb_types[attribute]
    return out


def promotion(column: pa.DataType, values: pa.DataType) -> pa.DataType | None:
    """``values``' type when Iceberg's schema evolution may promote ``column`` to it in place
    (int → long, float → double, decimal(P,S) → decimal(P',S) with P' > P), else None."""
    if pa.types.is_int32(column) and pa.types.is_int64(values):
        return values
    if pa.types.is_float32(column) and pa.types.is_float64(values):
        return values
    if (pa.types.is_decimal(column) and pa.types.is_decimal(values) and values.scale == column.scale
            and values.precision > column.precision):
        return values
    return None


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def same_type(a: pa.DataType, b: pa.DataType) -> bool:
    """Equal as a table column: Arrow's large/view variants and list field names aside (Iceberg
    reads strings back as ``large_string`` and names list items ``element``)."""
    return _plain(a) == _plain(b)


def _plain(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(_plain(t.value_type))
    return t


def split(array: pa.Array, target: pa.DataType) -> tuple[pa.Array | None, pa.Array]:
    """(the values that ``target`` holds exactly, cast to it; the rest), each with nulls
    where the other has its values. ``None`` when ``target`` holds none of them."""
    if same_type(array.type, target):
        return array, pa.nulls(len(array), array.type)
    if pa.types.is_int64(array.type) and pa.types.is_decimal(target) and target.precision - target.scale >= 19:
        return pc.cast(array, target), pa.nulls(len(array), array.type)
    if pa.types.is_decimal(array.type) and (pa.types.is_int64(target) or pa.types.is_decimal(target)):
        values = array.to_pylist()
        mask = [v is not None and _holds(target, v) for v in values]
        if not any(mask):
            return None, array
        convert = int if pa.types.is_int64(target) else (lambda v: v)
        fits = pa.array([convert(v) if m else None for v, m in zip(values, mask, strict=True)], target)
        rest = pc.if_else(pa.array(mask), pa.nulls(len(array), array.type), array)
        return fits, rest
    return None, array


def _holds(target: pa.DataType, v: Decimal) -> bool:
    if pa.types.is_int64(target):
        return v == v.to_integral_value() and _INT64[0] <= v <= _INT64[1]
    exponent = v.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    scale = max(0, -exponent)
    integer_digits = len(str(abs(int(v)))) if int(v) else 0
    return bool(scale <= target.scale and integer_digits <= target.precision - target.scale)


def align(columns: Mapping[str, pa.Array], order: Sequence[str], n: int, types: Mapping[str, pa.DataType]) -> pa.Table:
    """A table with exactly the columns in ``order``: a column the batch lacks is all null."""
    return pa.table({c: columns[c] if c in columns else pa.nulls(n, types[c]) for c in order})
