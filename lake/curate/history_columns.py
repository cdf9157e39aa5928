"""History columns on the columnar path: one attribute's tag arrays → a typed Arrow column,
by the type rules of :mod:`lake.curate.columns` (its ``decide``), as its ``build_column`` does
from per-record cells. Pure.
"""

from __future__ import annotations

import base64

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.curate.arrays import STR, Unsupported, join_parts, list_parts, rewrap
from lake.curate.columns import Built, ColumnType, arrow_type, decide, decimal_array, numeric_array, widened_built
from lake.curate.json_text import list_text, object_text
from lake.curate.tags import Tags
from lake.records import BASE64

_B64 = "^" + BASE64 + "$"


def _regular(filled: pa.Array) -> tuple[bool, np.ndarray]:
    """(every value is padded base64, the values' offsets) of strings without nulls."""
    offs = np.frombuffer(filled.buffers()[1], dtype=np.int32)[filled.offset:filled.offset + len(filled) + 1]
    regular = not np.any(np.diff(offs) % 4) and pc.all(pc.match_substring_regex(filled, _B64)).as_py()
    return bool(regular), offs


def check_base64(texts: pa.Array) -> None:
    """Unsupported unless every value decodes as the reference decodes B values
    (``base64.b64decode``): the record that holds one is the reference's to quarantine."""
    if texts.null_count == len(texts) or _regular(texts.fill_null("") if texts.null_count else texts)[0]:
        return
    for v in texts.to_pylist():
        try:
            if v is not None:
                base64.b64decode(v)
        except ValueError:
            raise Unsupported("a B value that is not base64") from None


def b64_binary(texts: pa.Array) -> pa.Array:
    """Base64 strings → binary, decoded in one call for the whole column."""
    n = len(texts)
    filled = texts.fill_null("") if texts.null_count else texts
    regular, offs = _regular(filled)
    lengths = np.diff(offs)
    if not regular:  # odd padding or stray characters: decode as the reference does, value by value
        return pa.array([None if v is None else base64.b64decode(v) for v in texts.to_pylist()], pa.binary())
    data = memoryview(filled.buffers()[2])[offs[0]:offs[-1]]
    raw = np.frombuffer(base64.b64decode(bytes(data).replace(b"=", b"A")), dtype=np.uint8)
    ends = (offs[1:] - offs[0]) // 4 * 3
    tail = np.frombuffer(bytes(data), dtype=np.uint8)
    pads = np.zeros(n, dtype=np.int32)
    nonempty = lengths > 0
    last = offs[1:] - offs[0] - 1
    pads[nonempty] = (tail[last[nonempty]] == ord("=")).astype(np.int32) + \
        (tail[last[nonempty] - 1] == ord("=")).astype(np.int32)
    keep = np.ones(len(raw), dtype=bool)
    keep[ends[pads >= 1] - 1] = False
    keep[ends[pads == 2] - 2] = False
    out_offs = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths // 4 * 3 - pads, out=out_offs[1:])
    arr = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(out_offs), pa.py_buffer(raw[keep].tobytes())])
    return _where_binary(texts, arr)


def _where_binary(texts: pa.Array, arr: pa.Array) -> pa.Array:
    return pc.if_else(texts.is_valid(), arr, pa.scalar(None, pa.binary())) if texts.null_count else arr


def history_values(tag: str, v: pa.Array) -> pa.Array:
    """A tag's values as the history build needs them (M/L as typed JSON text)."""
    if tag == "M":
        return object_text(v, "typed")
    if tag == "L":
        return join_parts(list_text(v, "typed", "value"), len(v))
    return v


def _number(texts: pa.Array, want: str | None) -> tuple[pa.Array, str] | None:
    """columns.numeric_array, minus its first attempt (bigint) when a value has a fraction or an
    exponent: that attempt is bound to fail, and a failed cast formats an error for every
    value that fails (measured: 5 ms per 20k values). Values with a fraction or an exponent
    go straight to its decimal rule (decimal_array)."""
    if want is not None or texts.null_count == len(texts) \
            or not pc.any(pc.match_substring_regex(texts, "[.eE]")).as_py():
        return numeric_array(texts, want)
    return decimal_array(texts)


def _widened_text(tag: str, v: pa.Array) -> pa.Array:
    # a value as the text a widened (string) column stores: columns.text_of, on arrays
    if tag in ("S", "N", "B", "M", "L"):
        return v
    if tag == "BOOL":
        return pc.if_else(v, pa.scalar("true"), pa.scalar("false"))
    if tag == "NULL":
        return pa.nulls(len(v), STR)
    return join_parts(list_text(v, "plain", "quoted"), len(v))  # sets: JSON arrays


def _typed(tag: str, v: pa.Array, existing: ColumnType | None) -> tuple[pa.Array, str] | None:
    """One DynamoDB type's values → (array, glue type), or None if they must widen: the per-record
    typing of lake.curate.columns, on arrays."""
    want = existing.glue if existing is not None else None
    if tag == "S":
        return v, "string"
    if tag == "BOOL":
        return v, "boolean"
    if tag == "B":
        return b64_binary(v), "binary"
    if tag in ("M", "L"):
        return v, "string"
    if tag == "N":
        return _number(v, want)
    flat, offsets = list_parts(v)
    if tag == "SS":
        return v.cast(pa.list_(STR)), "array<string>"
    if tag == "BS":
        return rewrap(v, offsets, b64_binary(flat), pa.list_(pa.binary())), "array<binary>"
    # NS
    inner_want = None
    if want is not None:
        inner_want = want[6:-1] if want.startswith("array<") else "-"
    got = _number(flat, inner_want) if inner_want != "-" else None
    if got is None:
        return None
    return rewrap(v, offsets, got[0], pa.list_(arrow_type(got[1]))), f"array<{got[1]}>"


def build_column(tags: Tags, n: int, existing: ColumnType | None) -> Built | None:
    """As lake.curate.columns.build_column, on one attribute's tag arrays."""
    present = sorted(t for t in tags if t != "NULL")
    if not present:
        if existing is None:
            return None
        return Built(pa.nulls(n, arrow_type(existing.glue)), existing)
    decided = decide(present, existing, lambda tag: _typed(tag, tags[tag], existing))
    if isinstance(decided, Built):
        return decided
    texts = [_widened_text(t, tags[t]) for t in present]
    return widened_built(texts[0] if len(texts) == 1 else pc.coalesce(*texts), existing, decided)
