"""Typed history columns: DynamoDB attribute values → Arrow arrays with Athena types. Pure.

Type rules (per top-level attribute, decided per batch and reconciled with the Glue schema):

* S → string, BOOL → boolean, B → binary, SS → array<string>, BS → array<binary>.
* N → bigint when every value is an integer in int64 range; else decimal(38, s) when every
  value is exact in it; else string (the number's literal). Never a lossy double.
* NS → array<the same numeric rule over all elements>.
* M / L → string holding the value's *typed* DynamoDB JSON (``{"a":{"N":"1"}}``), so
  binaries and sets nested inside survive; ``changes.new_image`` carries plain JSON.
* NULL → a null of the column's type; an attribute only ever NULL adds no column yet.

Decimal scale rule: a numeric column that is not all-bigint gets decimal(38,18)
(DECIMAL_TYPE: 20 integer and 18 fractional digits, room for money, rates, coordinates
and token amounts alike) when its values fit, so values of mixed scales (DynamoDB
drops trailing zeros: 12.50 is stored as 12.5) share one exact type. Values that don't
fit get decimal(38, s) with s = the batch's largest scale, if the integer digits fit in
38 - s. A bigint column that meets fractional values widens to decimal(38,18) (every
int64 fits it; the table's files are rewritten with the column cast). Any other value
that no longer fits its column's numeric type widens the column to string.

Conflicts (two DynamoDB types in one column, in a batch or against the Glue schema, or a
number that no longer fits) widen the column to string; every value is then its text
(S as is, N its literal, BOOL ``true``/``false``, B base64, sets a JSON array, M/L typed
JSON). ``dynamodb.type`` on the Glue column records the DynamoDB type (``mixed`` once widened).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lake.errors import MalformedRecordError

MIXED = "mixed"
_EMPTY: Mapping[str, Any] = {}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_ARRAY = re.compile(r"^array<(.+)>$")
_PLAIN_DECIMAL = r"^-?[0-9]+(?:\.[0-9]+)?$"
DECIMAL_TYPE = "decimal(38,18)"
DECIMAL_SCALE = 18


@dataclass(frozen=True)
class ColumnType:
    """A column's Athena type and the DynamoDB type it holds."""

    glue: str  # bigint, decimal(38,2), string, boolean, binary, array<...>
    ddb: str  # S N B BOOL SS NS BS M L, or "mixed" after widening


@dataclass(frozen=True)
class Built:
    """One column of a batch: its array, its (possibly new) type, and whether it widened."""

    array: pa.Array
    type: ColumnType
    widened: bool = False
    reason: str = ""


def arrow_type(glue: str) -> pa.DataType:
    """Athena/Glue type text → Arrow type."""
    simple = {"string": pa.string(), "bigint": pa.int64(), "boolean": pa.bool_(), "binary": pa.binary(),
              "timestamp": pa.timestamp("us", tz="UTC"), "double": pa.float64()}
    if glue in simple:
        return simple[glue]
    m = _DECIMAL.match(glue)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    m = _ARRAY.match(glue)
    if m:
        return pa.list_(arrow_type(m.group(1)))
    raise ValueError(f"unsupported Glue type {glue!r}")


# -- numbers -------------------------------------------------------------------

def _integer_digits_fit(texts: pa.Array, scale: int) -> bool:
    """Whether every N literal has at most 38 - ``scale`` integer digits.

    Checked before every cast to a decimal: pyarrow's string → decimal128 cast refuses
    too many fraction digits but can silently wrap a value with too many integer digits
    (seen with pyarrow 25: a 38-digit integer cast to decimal(38,18) came back as a
    different number)."""
    room = 38 - scale
    if texts.null_count == len(texts):
        return True
    if pc.all(pc.match_substring_regex(texts, _PLAIN_DECIMAL)).as_py():
        digits = pc.utf8_length(pc.replace_substring_regex(texts, r"^-?0*([0-9]*)(?:\.[0-9]*)?$", r"\1"))
        return bool((pc.max(digits).as_py() or 0) <= room)
    shape = _digits(texts)
    return shape is not None and shape[0] <= room


def _digits(texts: pa.Array) -> tuple[int, int] | None:
    """(most integer digits, largest scale) of N literals in any form (exponents included),
    or None when one is not a finite number."""
    scale = int_digits = 0
    for t in texts.to_pylist():
        if t is None:
            continue
        try:
            d = Decimal(t)
        except InvalidOperation:
            return None
        if not d.is_finite():
            return None
        _, ds, exp = d.as_tuple()
        assert isinstance(exp, int)
        scale = max(scale, -exp if exp < 0 else 0)
        int_digits = max(int_digits, len(ds) + exp)
    return int_digits, scale


def _to_decimal(texts: pa.Array, glue: str) -> pa.Array | None:
    """N literals cast exactly to ``decimal(38,s)``, or None when any value doesn't fit."""
    m = _DECIMAL.match(glue)
    if m is None or not _integer_digits_fit(texts, int(m.group(2))):
        return None
    try:
        return pc.cast(texts, arrow_type(glue))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def numeric_array(texts: pa.Array, existing: str | None) -> tuple[pa.Array, str] | None:
    """N literals → (array, glue type), or None when they do not fit a numeric type.

    With an ``existing`` numeric type, the values must fit it exactly (checked before casting:
    to round or overflow); without one, bigint is tried first, then decimal(38, s).
    """
    if existing is not None:
        if existing == "bigint":
            try:
                return pc.cast(texts, pa.int64()), existing
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            # bigint meets fractions: decimal(38,18) holds every int64 and, if they fit, these values
            wider = _to_decimal(texts, DECIMAL_TYPE)
            return None if wider is None else (wider, DECIMAL_TYPE)
        same = _to_decimal(texts, existing)
        return None if same is None else (same, existing)
    try:
        return pc.cast(texts, pa.int64()), "bigint"
    except pa.ArrowInvalid:
        pass
    return decimal_array(texts)


def decimal_array(texts: pa.Array) -> tuple[pa.Array, str] | None:
    """Non-integral (or beyond int64) N literals → decimal(38,18) when they fit, else the exact
    decimal(38, s) of the batch, else None."""
    common = _to_decimal(texts, DECIMAL_TYPE)
    if common is not None:
        return common, DECIMAL_TYPE
    plain = texts.null_count == len(texts) or pc.all(pc.match_substring_regex(texts, _PLAIN_DECIMAL)).as_py()
    if plain:
        # digits with an optional fraction: the scale is the fraction's length; a value's
        # integer digits that do not fit 38 - scale make the cast below refuse it
        dot = pc.find_substring(texts, ".")
        frac = pc.if_else(pc.greater_equal(dot, 0), pc.subtract(pc.subtract(pc.binary_length(texts), dot), 1), 0)
        scale = pc.max(frac).as_py() or 0
        if scale > 38:
            return None
        glue = f"decimal(38,{scale})"
        exact = _to_decimal(texts, glue)
        return None if exact is None else (exact, glue)
    shape = _digits(texts)
    # the widest integer part and the finest fraction must share 38 digits
    if shape is None or shape[0] + shape[1] > 38:
        return None
    scale = shape[1]
    glue = f"decimal(38,{scale})"
    exact = _to_decimal(texts, glue)
    return None if exact is None else (exact, glue)


# -- text rendering (widened columns, M/L) -------------------------------------

def text_of(tag: str, v: Any) -> str | None:
    """A typed value as the text stored in a string column."""
    if tag in ("S", "N", "B"):
        return str(v)
    if tag == "BOOL":
        return "true" if v else "false"
    if tag == "NULL":
        return None
    if tag in ("SS", "NS", "BS", "M", "L"):
        return orjson.dumps(v).decode()
    raise MalformedRecordError(f"unknown DynamoDB type tag {tag!r}")


def _b64(values: Sequence[str | None]) -> list[bytes | None]:
    return [None if v is None else base64.b64decode(v) for v in values]


def _list_array(values: list[list[Any] | None], value_array: pa.Array, glue_inner: str) -> pa.Array:
    offsets = [0]
    mask = []
    total = 0
    for v in values:
        total += len(v) if v is not None else 0
        offsets.append(total)
        mask.append(v is None)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), value_array,
                                    type=pa.list_(arrow_type(glue_inner)), mask=pa.array(mask, pa.bool_()))


def _typed(tag: str, values: list[Any], existing: ColumnType | None) -> tuple[pa.Array, str] | None:
    """Values all of one DynamoDB type → (array, glue type), or None if they must widen."""
    want = existing.glue if existing is not None else None
    if tag == "S":
        return pa.array(values, pa.string()), "string"
    if tag == "BOOL":
        return pa.array(values, pa.bool_()), "boolean"
    if tag == "B":
        return pa.array(_b64(values), pa.binary()), "binary"
    if tag == "N":
        return numeric_array(pa.array(values, pa.string()), want)
    if tag == "SS":
        return pa.array(values, pa.list_(pa.string())), "array<string>"
    if tag == "BS":
        return pa.array([None if v is None else _b64(v) for v in values], pa.list_(pa.binary())), \
            "array<binary>"
    if tag == "NS":
        flat = pa.array([x for v in values if v is not None for x in v], pa.string())
        inner_want = None
        if want is not None:
            m = _ARRAY.match(want)
            inner_want = m.group(1) if m else "-"
        got = numeric_array(flat, inner_want) if inner_want != "-" else None
        if got is None:
            return None
        return _list_array(values, got[0], got[1]), f"array<{got[1]}>"
    if tag in ("M", "L"):
        return pa.array([None if v is None else orjson.dumps(v).decode() for v in values], pa.string()), \
            "string"
    raise MalformedRecordError(f"unknown DynamoDB type tag {tag!r}")


def build_column(cells: Sequence[Mapping[str, Any]], existing: ColumnType | None) -> Built | None:
    """One attribute's typed values (``{}`` where absent) → a typed Arrow column.

    ``existing`` is the column's type in the Glue table, if any. Returns None when the
    batch holds only NULLs for a column Glue does not know yet.
    """
    tags = {t for tv in cells for t in tv}
    tags.discard("NULL")
    if not tags:
        if existing is None:
            return None
        return Built(pa.nulls(len(cells), arrow_type(existing.glue)), existing)
    decided = decide(sorted(tags), existing, lambda tag: _typed(tag, [tv.get(tag) for tv in cells], existing))
    return decided if isinstance(decided, Built) else _widened(cells, existing, decided)


def decide(tags: Sequence[str], existing: ColumnType | None,
           typed: Callable[[str], tuple[pa.Array, str] | None]) -> Built | str:
    """The type decision both conversion paths share: the column of its one DynamoDB type
    when that fits (``typed`` builds it), else the reason the column widens to string."""
    if len(tags) != 1:
        return f"types {list(tags)} in one batch"
    (tag,) = tags
    if existing is not None and existing.ddb != tag:
        return f"{tag} values in a {existing.ddb} column"
    got = typed(tag)
    if got is None:
        return f"{tag} values do not fit {existing.glue if existing else 'a numeric type'}"
    return typed_built(got, tag, existing)


def widened_built(array: pa.Array, existing: ColumnType | None, reason: str) -> Built:
    """A column widened to text; ``widened`` only when it was not text already."""
    was_string = existing is not None and existing.glue == "string" and existing.ddb == MIXED
    return Built(array, ColumnType("string", MIXED), widened=not was_string, reason=reason)


def typed_built(got: tuple[pa.Array, str], tag: str, existing: ColumnType | None) -> Built:
    """A column of one DynamoDB type; ``widened`` when its numeric type grew (bigint → decimal)."""
    grew = existing is not None and got[1] != existing.glue
    return Built(got[0], ColumnType(got[1], tag), widened=grew,
                 reason=f"{existing.glue} values meet ones that need {got[1]}" if grew and existing else "")


def _widened(cells: Sequence[Mapping[str, Any]], existing: ColumnType | None, reason: str) -> Built:
    texts: list[str | None] = []
    for tv in cells:
        if not tv:
            texts.append(None)
            continue
        ((tag, v),) = tv.items()
        texts.append(text_of(tag, v))
    return widened_built(pa.array(texts, pa.string()), existing, reason)


def widen_array(array: pa.Array, old: ColumnType) -> pa.Array:
    """An already written column of type ``old`` → its text form (for rewriting old files)."""
    out: list[str | None] = []
    for v in array.to_pylist():
        if v is None:
            out.append(None)
        elif old.ddb in ("S", "M", "L", MIXED):
            out.append(str(v))
        elif old.ddb == "N":
            out.append(number_text(v))
        elif old.ddb == "BOOL":
            out.append("true" if v else "false")
        elif old.ddb == "B":
            out.append(base64.b64encode(v).decode())
        elif old.ddb == "BS":
            out.append(orjson.dumps([base64.b64encode(x).decode() for x in v]).decode())
        elif old.ddb == "NS":
            out.append(orjson.dumps([number_text(x) for x in v]).decode())
        else:
            out.append(orjson.dumps(v).decode())
    return pa.array(out, pa.string())


def number_text(v: Any) -> str:
    """A number read back from Parquet as DynamoDB writes it (exact, no padding, no exponent)."""
    if isinstance(v, Decimal):
        # decimal(38,s) pads to s digits: print the number as DynamoDB would, without padding
        t = format(v, "f")
        return t.rstrip("0").rstrip(".") if "." in t else t
    return str(v)
