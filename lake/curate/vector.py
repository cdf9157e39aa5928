"""Columnar conversion of a batch of stream records: one ``pyarrow.json`` parse, then
``pyarrow.compute`` over the parsed struct columns. Pure: no boto3.

The per-record path (``decode`` + ``tables``) is the reference; this module produces the same
Arrow tables (tests/unit/test_curate_vector.py checks it on random workloads). Anything it
does not handle exactly as the reference would — a parse error, a kind conflict, a record the
reference quarantines, an unknown type tag, a pathological schema — raises ``Unsupported``
and the caller converts the batch record by record instead.

Why columnar: a per-record Python path allocates millions of small objects per batch and
cannot get near ``pyarrow.json.read_json``'s rate; a handful of vectorised kernels per
attribute can.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias, TypeVar

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from lake.curate.columns import Built, ColumnType, _decimal, _numeric, arrow_type, decide, widened_built
from lake.curate.decode import day_of
from lake.curate.tables import (
    CHANGES_SCHEMA,
    TS,
    HistoryBatch,
    HistorySchema,
    assemble_history,
    parquet_bytes,
)
from lake.records import EVENT_NAMES, TTL_PRINCIPAL, TYPE_TAGS, escape_key_name

Mode = Literal["plain", "typed"]
Tags = dict[str, pa.Array]  # DynamoDB type tag → that child of a typed value (parent nulls applied)
Part: TypeAlias = "str | pa.Array"  # a piece of text per row: one literal for all rows, or one per row
T = TypeVar("T")

MAX_FIELDS = 4000  # more inferred fields than this: the per-record path is the saner choice
SEQ_WIDTH = 64
_US_PER_DAY = 86_400_000_000
_STR = pa.string()
_NULL_STR = pa.scalar(None, _STR)
_NUMBER = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$"
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_B64 = r"^[A-Za-z0-9+/]*={0,2}$"
_ARN_TABLE = r"^arn:aws[\w-]*:dynamodb:[\w-]*:\d*:table/(?P<table>[^/]+)(?:/stream/[^/]+)?$"
_SCALAR_TAGS = ("S", "N", "B", "BOOL")
_CONTROL = [chr(i) for i in range(0x20)]
_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


class Unsupported(Exception):
    """This batch must take the per-record (reference) path; the message says why."""


# Past the parse, a batch's work would run on one thread: but the image texts, the history
# attributes and the two Parquet writes are independent, and pyarrow's kernels and Parquet
# writer release the GIL. Two workers beside the caller keep two cores busy (the dev machine
# and a Lambda above 1769 MB have two or more); on one core they merely take turns. Only the
# calling thread submits, and pool tasks never wait on the pool, so nothing can deadlock
# however many callers share it.
_POOL_WORKERS = 2
_pool_lock = threading.Lock()
_pool_instance: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _pool_instance
    with _pool_lock:
        if _pool_instance is None:
            _pool_instance = ThreadPoolExecutor(_POOL_WORKERS, thread_name_prefix="lake-curate")
        return _pool_instance


POOL_MIN = 1000  # rows; below this a hand-off to the pool costs more than it saves (measured at 128)


def _start(rows: int, fn: Callable[..., T], *args: object, **kwargs: object) -> Future[T]:
    """``fn(*args, **kwargs)`` on the pool, or right here for a small batch."""
    if rows >= POOL_MIN:
        return _pool().submit(fn, *args, **kwargs)
    done: Future[T] = Future()
    try:
        done.set_result(fn(*args, **kwargs))
    except Exception as e:
        done.set_exception(e)
    return done


# -- small vector helpers ------------------------------------------------------

def _cat(*parts: pa.Array | str) -> pa.Array:
    """Concatenate strings element-wise; null wherever a part is null."""
    args = [pa.scalar(p, _STR) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, "")


def _join_parts(parts: Sequence[Part], n: int, skip: bool = False) -> pa.Array:
    """Concatenate pieces element-wise in one kernel call. Adjacent literals are merged first:
    the kernel's cost grows with its number of arguments, faster than linearly (measured on
    20k rows: 33 arguments 13.8 ms, the same text from 23 arguments 7.8 ms). ``skip``: a null
    piece is left out; otherwise it makes the row null."""
    merged: list[Part] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        elif not (isinstance(p, str) and not p):
            merged.append(p)
    arrays = [p for p in merged if not isinstance(p, str)]
    if not arrays:
        return pa.repeat(pa.scalar("".join(merged), _STR), n)  # type: ignore[arg-type]
    if len(merged) == 1:
        return arrays[0]
    args = [pa.scalar(p, _STR) if isinstance(p, str) else p for p in merged]
    return pc.binary_join_element_wise(*args, "", null_handling="skip" if skip else "emit_null")


def _where(mask: pa.Array, value: pa.Array | str) -> pa.Array:
    """``value`` where mask is true, null elsewhere."""
    v = pa.scalar(value, _STR) if isinstance(value, str) else value
    return pc.if_else(mask, v, _NULL_STR)


def _nonnull_count(children: Sequence[pa.Array], n: int) -> np.ndarray:
    count = np.zeros(n, dtype=np.int32)
    for c in children:
        if c.null_count == n:
            continue
        count += c.is_valid().to_numpy(zero_copy_only=False)
    return count


def escape(strings: pa.Array) -> pa.Array:
    """JSON string escaping exactly as orjson does it (``\\"``, ``\\\\``, control characters)."""
    if not _may_need_escape(strings):
        return strings
    out = pc.replace_substring(strings, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    if pc.any(pc.match_substring_regex(out, r"[\x00-\x1f]")).as_py():
        for ch in _CONTROL:
            out = pc.replace_substring(out, ch, _SHORT_ESCAPES.get(ch, f"\\u{ord(ch):04x}"))
    return out


def _may_need_escape(strings: pa.Array) -> bool:
    """Any quote, backslash or control character in the column's bytes (a cheap scan of the
    data buffer; bytes of null slots can only make it say yes)."""
    if len(strings) == strings.null_count or strings.type != _STR:
        return (strings.type != _STR and pc.any(pc.match_substring_regex(strings, _NEEDS_ESCAPE)).as_py()) or False
    offs = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset:strings.offset + len(strings) + 1]
    data = strings.buffers()[2]
    if data is None:
        return False
    raw = np.frombuffer(data, dtype=np.uint8)[offs[0]:offs[-1]]
    return bool(np.any((raw < 0x20) | (raw == 0x22) | (raw == 0x5C)))


def _check_numbers(texts: pa.Array) -> None:
    if texts.null_count < len(texts) and not pc.all(pc.match_substring_regex(texts, _NUMBER)).as_py():
        raise Unsupported("an N value is not a number literal")


def _list_parts(lists: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """A list array → (its values in order, offsets over them); null lists have no values."""
    flat = pc.list_flatten(lists)
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return flat, offsets


def _rewrap(lists: pa.Array, offsets: np.ndarray, values: pa.Array, type_: pa.DataType) -> pa.Array:
    mask = lists.is_null() if lists.null_count else None
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=type_, mask=mask)


def _string_list(lists: pa.Array) -> pa.Array:
    """list<string> or list<null> (only empty lists) → list<string>; elements must be present."""
    t = lists.type
    if not pa.types.is_list(t) or t.value_type not in (_STR, pa.null()):
        raise Unsupported(f"a set holds {t}")
    if pc.list_flatten(lists).null_count:
        raise Unsupported("a set holds a null")
    return lists.cast(pa.list_(_STR))


# -- typed values --------------------------------------------------------------

def tags_of(values: pa.Array) -> Tags:
    """A column of typed values (``{"S": ...}`` structs) → its tag children.

    Raises Unsupported unless every present value holds exactly one known tag of the
    right JSON kind (what the reference path would accept).
    """
    t = values.type
    if t == pa.null():
        return {}
    if not pa.types.is_struct(t):
        raise Unsupported(f"a DynamoDB value that is not a typed object ({t})")
    children = values.flatten()
    out: Tags = {}
    for f, child in zip(t, children, strict=True):
        tag = f.name
        if tag not in TYPE_TAGS:
            raise Unsupported(f"unknown DynamoDB type tag {tag!r}")
        ct = child.type
        if ct == pa.null() or child.null_count == len(child):
            continue
        if tag in ("S", "N", "B"):
            ok = ct == _STR
        elif tag in ("BOOL", "NULL"):
            ok = ct == pa.bool_()
        elif tag in ("SS", "NS", "BS"):
            child = _string_list(child)
            ok = True
        elif tag == "M":
            ok = pa.types.is_struct(ct)
        else:  # L
            ok = pa.types.is_list(ct) and (ct.value_type == pa.null() or pa.types.is_struct(ct.value_type))
            if ok and pc.list_flatten(child).null_count:
                raise Unsupported("a list holds a null")
        if not ok:
            raise Unsupported(f"{tag} value of kind {ct}")
        out[tag] = child
    n = len(values)
    present = n - values.null_count
    if len(out) == 1:
        (only,) = out.values()
        if n - only.null_count != present:
            raise Unsupported("a typed value without a tag")
    elif out or present:
        count = _nonnull_count(list(out.values()), n)
        valid = values.is_valid().to_numpy(zero_copy_only=False)
        if np.any(count[valid] != 1):
            raise Unsupported("a typed value without exactly one tag")
    if "N" in out:
        _check_numbers(out["N"])
    if "NS" in out:
        _check_numbers(pc.list_flatten(out["NS"]))
    return out


def _list_text(lists: pa.Array, mode: Mode, element: Literal["quoted", "number", "value"],
               sort: bool = False) -> list[Part]:
    """A list → the pieces of ``[e1,e2]`` (null where the list is)."""
    flat, offsets = _list_parts(lists)
    if element == "quoted" and len(flat):
        lengths = pc.list_value_length(lists)
        if pc.min(lengths).as_py() > 0:
            # no empty list: the quotes go in the separator and around the whole, which
            # spares a pass over every element
            joined = pc.binary_join(_rewrap(lists, offsets, escape(flat), pa.list_(_STR)), '","')
            return ['["', joined, '"]']
    if not len(flat):
        texts = pa.array([], _STR)
    elif element == "quoted":
        texts = _cat('"', escape(flat), '"')
    elif element == "number":
        texts = flat
    else:
        texts = value_text(flat, mode, sort=sort)
    return ["[", pc.binary_join(_rewrap(lists, offsets, texts, pa.list_(_STR)), ","), "]"]


def _value_parts(tag: str, v: pa.Array, mode: Mode, sort: bool, whole: bool) -> list[Part]:
    """One tag's values as pieces of JSON text (``plain``: unmarshalled; ``typed``: DynamoDB
    JSON), null where a value is absent; with ``whole`` (the value is present wherever the
    enclosing object is, whose absent rows the caller masks), a constant text may come as a
    literal and a map as its members' pieces, for the caller to join in the same call."""
    parts: list[Part]
    if tag in ("S", "B") or (tag == "N" and mode == "typed"):
        parts = ['"', v if tag == "N" else escape(v), '"']  # N literals were checked: no escapes
    elif tag == "N":
        parts = [v]
    elif tag == "BOOL" or (tag == "NULL" and mode == "typed"):
        parts = [pc.if_else(v, pa.scalar("true"), pa.scalar("false"))]
    elif tag == "NULL":
        return ["null"] if whole else [_where(v.is_valid(), "null")]
    elif tag in ("SS", "BS") or (tag == "NS" and mode == "typed"):
        parts = _list_text(v, mode, "quoted")
    elif tag == "NS":
        parts = _list_text(v, mode, "number")
    elif tag == "M":
        inline = _object_parts(v, mode, children_tags(v), sort) if whole else None
        parts = inline if inline is not None else [object_text(v, mode, sort=sort)]
    elif tag == "L":
        parts = _list_text(v, mode, "value", sort)
    else:
        raise Unsupported(f"unknown DynamoDB type tag {tag!r}")
    return [f'{{"{tag}":', *parts, "}"] if mode == "typed" else parts


def tag_text(tag: str, v: pa.Array, mode: Mode, pre: str = "", post: str = "", sort: bool = False) -> pa.Array:
    """One tag's values as JSON text (``plain``: unmarshalled; ``typed``: DynamoDB JSON),
    between ``pre`` and ``post``; null where a value is absent."""
    return _join_parts([pre, *_value_parts(tag, v, mode, sort, whole=False), post], len(v))


def value_text(values: pa.Array, mode: Mode, pre: str = "", post: str = "", sort: bool = False) -> pa.Array:
    """Typed values → ``pre`` + JSON text + ``post`` (null where a value is absent)."""
    tags = tags_of(values)
    if not tags:
        return pa.nulls(len(values), _STR)
    return _tags_text(tags, mode, pre, post, sort)


def object_text(struct: pa.Array, mode: Mode, pre: str = "", post: str = "",
                kids: dict[str, Tags] | None = None, sort: bool = False) -> pa.Array:
    """A struct of typed values (an image or an M) → a JSON object, absent attributes left out.

    Members come in the struct's order: the order in which the batch first shows them, which
    is each record's own order whenever the records of a batch list attributes consistently
    (one writer's records do); ``sort`` sorts them (orjson's OPT_SORT_KEYS).
    ``kids``: the children's tags, if already known."""
    t = struct.type
    if not pa.types.is_struct(t):
        raise Unsupported(f"an image or map that is not an object ({t})")
    if kids is None:
        kids = children_tags(struct)
    n = len(struct)
    # the members are joined skipping nulls, and binary_join_element_wise drops rows whose
    # parts are all null (pyarrow 25): the braces are parts too, so no row is ever all null
    parts = _object_parts(struct, mode, kids, sort)
    if parts is not None:
        text = _join_parts([pre, *parts, post], n, skip=True)
    else:
        # no member present wherever the object is: every member leads with a comma, and the
        # one right after "{" is removed
        head = pre + "{"
        text = _join_parts([head, *_members(struct, mode, kids, sort, -1), "}" + post], n, skip=True)
        text = pc.replace_substring(text, head + ",", head, max_replacements=1)
    return _where(struct.is_valid(), text) if struct.null_count else text


def _object_parts(struct: pa.Array, mode: Mode, kids: dict[str, Tags], sort: bool) -> list[Part] | None:
    """The pieces of an object's text, to be joined skipping nulls (wrong, not null, where
    the object is absent: the caller masks those rows); None when no member is present
    wherever the object is (the anchor the commas need, see ``_members``)."""
    names = _names(kids, sort)
    if not names:
        return ["{}"]
    present = len(struct) - struct.null_count
    anchor = next((i for i, name in enumerate(names) if _present_count(kids[name], len(struct)) == present), -1)
    if anchor < 0:
        return None
    return ["{", *_members(struct, mode, kids, sort, anchor), "}"]


def _names(kids: dict[str, Tags], sort: bool) -> list[str]:
    return [name for name in (sorted(kids) if sort else kids) if kids[name]]


def _members(struct: pa.Array, mode: Mode, kids: dict[str, Tags], sort: bool, anchor: int) -> list[Part]:
    """Members' pieces. Commas: the anchor member (present wherever the object is) needs
    none; members before it take a trailing comma, members after it a leading one; with no
    anchor (-1), every member leads with one."""
    present = len(struct) - struct.null_count
    parts: list[Part] = []
    for i, name in enumerate(_names(kids, sort)):
        label = orjson.dumps(name).decode() + ":"
        if anchor < 0 or i > anchor:
            before, after = "," + label, ""
        else:
            before, after = label, "," if i < anchor else ""
        tags = kids[name]
        tag, v = next(iter(tags.items())) if len(tags) == 1 else ("", None)
        if v is not None and len(v) - v.null_count == present:
            # present wherever the object is: its pieces go straight into the object's join
            parts += [before, *_value_parts(tag, v, mode, sort, whole=True), after]
        else:
            parts.append(_tags_text(tags, mode, before, after, sort))
    return parts


def _present_count(tags: Tags, n: int) -> int:
    if len(tags) == 1:
        (v,) = tags.values()
        return n - v.null_count
    return int(np.count_nonzero(_nonnull_count(list(tags.values()), n)))


def children_tags(struct: pa.Array) -> dict[str, Tags]:
    """A struct of typed values → each child's tags (see tags_of)."""
    return {f.name: tags_of(child) for f, child in zip(struct.type, struct.flatten(), strict=True)}


def _tags_text(tags: Tags, mode: Mode, pre: str, post: str, sort: bool = False) -> pa.Array:
    texts = [tag_text(tag, v, mode, pre, post, sort) for tag, v in tags.items()]
    return texts[0] if len(texts) == 1 else pc.coalesce(*texts)


# -- history columns -----------------------------------------------------------

def b64_binary(texts: pa.Array) -> pa.Array:
    """Base64 strings → binary, decoded in one call for the whole column."""
    n = len(texts)
    filled = texts.fill_null("") if texts.null_count else texts
    offs = np.frombuffer(filled.buffers()[1], dtype=np.int32)[filled.offset:filled.offset + n + 1]
    lengths = np.diff(offs)
    regular = not np.any(lengths % 4) and pc.all(pc.match_substring_regex(filled, _B64)).as_py()
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
        return _join_parts(_list_text(v, "typed", "value"), len(v))
    return v


def _number(texts: pa.Array, want: str | None) -> tuple[pa.Array, str] | None:
    """columns._numeric, minus its first attempt (bigint) when a value has a fraction or an
    exponent: that attempt is bound to fail, and a failed cast formats an error for every
    value that fails (measured: 5 ms per 20k values). Values with a fraction or an exponent
    go straight to _numeric's decimal rule."""
    if want is not None or texts.null_count == len(texts) \
            or not pc.any(pc.match_substring_regex(texts, "[.eE]")).as_py():
        return _numeric(texts, want)
    return _decimal(texts)


def _widened_text(tag: str, v: pa.Array) -> pa.Array:
    if tag in ("S", "N", "B", "M", "L"):
        return v
    if tag == "BOOL":
        return pc.if_else(v, pa.scalar("true"), pa.scalar("false"))
    if tag == "NULL":
        return pa.nulls(len(v), _STR)
    return _join_parts(_list_text(v, "plain", "quoted"), len(v))  # sets: JSON arrays


def _typed(tag: str, v: pa.Array, existing: ColumnType | None) -> tuple[pa.Array, str] | None:
    """As lake.curate.columns._typed, on arrays."""
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
    flat, offsets = _list_parts(v)
    if tag == "SS":
        return v.cast(pa.list_(_STR)), "array<string>"
    if tag == "BS":
        return _rewrap(v, offsets, b64_binary(flat), pa.list_(pa.binary())), "array<binary>"
    # NS
    inner_want = None
    if want is not None:
        inner_want = want[6:-1] if want.startswith("array<") else "-"
    got = _number(flat, inner_want) if inner_want != "-" else None
    if got is None:
        return None
    return _rewrap(v, offsets, got[0], pa.list_(arrow_type(got[1]))), f"array<{got[1]}>"


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


# -- the batch -----------------------------------------------------------------

@dataclass
class TableSlice:
    """One source table's rows of a converted batch."""

    source: str
    table: pa.Table  # the ``changes`` rows (CHANGES_SCHEMA)
    images: dict[str, Tags]  # history attribute → tag arrays, row for row with ``table``
    kinesis_sequence_numbers: pa.Array  # as Kinesis gave them (batch item failures)

    def changes(self) -> pa.Table:
        """Rows of ``changes`` (as lake.curate.tables.changes_table)."""
        return self.table

    def history(self, existing: HistorySchema) -> HistoryBatch:
        """Rows of ``<table>_history`` (as lake.curate.tables.history_table)."""
        n = self.table.num_rows
        built = {a: build_column(tags, n, existing.columns[a].type if a in existing.columns else None)
                 for a, tags in self.images.items()}
        return assemble_history(self.table, built, existing)

    def coordinates(self) -> list[tuple[str, str, str]]:
        """(shard id, Kinesis sequence number, event id) per row."""
        return list(zip(self.table.column("shard_id").to_pylist(), self.kinesis_sequence_numbers.to_pylist(),
                        self.table.column("event_id").to_pylist(), strict=True))


@dataclass
class Converted:
    """A batch, converted: one slice per source table (first appearance order)."""

    tables: list[TableSlice] = field(default_factory=list)
    duplicates: int = 0


def _child(struct: pa.Array, name: str) -> pa.Array | None:
    t = struct.type
    if not pa.types.is_struct(t) or t.get_field_index(name) < 0:
        return None
    return pc.struct_field(struct, name) if struct.null_count == 0 else struct.flatten()[t.get_field_index(name)]


def _string_field(struct: pa.Array, name: str, n: int) -> pa.Array:
    """A string field, null when absent; a field of another kind is left to the reference."""
    v = _child(struct, name)
    if v is None or v.type == pa.null():
        return pa.nulls(n, _STR)
    if v.type != _STR:
        raise Unsupported(f"{name} is {v.type}")
    return v


def _count_leaves(t: pa.DataType) -> int:
    if pa.types.is_struct(t):
        return sum(_count_leaves(f.type) for f in t) or 1
    if pa.types.is_list(t):
        return _count_leaves(t.value_type)
    return 1


_SCAN = 1 << 20


def _newlines(blob: bytes) -> int:
    """Count b"\\n" with numpy's SIMD compare, a megabyte at a time into one small mask
    (measured on 16 MB: 1.7 ms; bytes.count 5.6 ms; one whole-blob mask 3.3 ms)."""
    data = np.frombuffer(blob, dtype=np.uint8)
    mask = np.empty(min(_SCAN, len(data)), dtype=bool)
    count = 0
    for start in range(0, len(data), _SCAN):
        part = data[start:start + _SCAN]
        np.equal(part, 0x0A, out=mask[:len(part)])
        count += int(np.count_nonzero(mask[:len(part)]))
    return count


SPLIT_MIN = 2000  # records; below this a parse is short enough that a second thread is not worth it


def _read(bodies: Sequence[bytes], threads: bool) -> pa.Table:
    """read_json over JSON lines; Unsupported where the reference might see them otherwise."""
    # the trailing newline comes from the join: appending it would copy the whole blob again
    # (measured: 3 ms → 15 ms for 16 MB, most of it faulting in fresh pages)
    blob = b"\n".join([*bodies, b""])
    # a newline inside a payload would let read_json cut a block there
    if _newlines(blob) != len(bodies):
        raise Unsupported("a payload spans several lines")
    try:
        # BufferReader: read_json's threads read the bytes in place, never calling back into
        # Python for a block (as a file object makes them do, under the GIL)
        table = pajson.read_json(pa.BufferReader(blob),
                                 read_options=pajson.ReadOptions(block_size=1 << 20, use_threads=threads))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise Unsupported(f"read_json: {e}") from None
    if table.num_rows != len(bodies):
        raise Unsupported("read_json rows do not match the records")
    return table


def _split_parse(n: int) -> bool:
    return n >= SPLIT_MIN and pa.cpu_count() == 2


def parse(bodies: Sequence[bytes], split: bool | None = None) -> pa.StructArray:
    """Stream records (JSON documents) → one struct array, one row per record.

    On two cores a large batch is parsed as two halves at once, each read_json on one thread:
    read_json's own threading costs ~25% more CPU than one thread does (measured on
    bench_convert's records: 107 vs 85 ms of CPU for 20k records), and the halves leave it
    no work to share. The halves' schemas are merged allowing only what one inference over
    the batch would give the same way (a field absent or all null in one half); any other
    disagreement and the batch is read again as a whole. ``split``: force either way."""
    n = len(bodies)
    table: pa.Table | None = None
    if (_split_parse(n) if split is None else split) and n >= 2:
        half = n // 2
        second = _pool().submit(_read, bodies[half:], False)
        try:
            first = _read(bodies[:half], False)
        finally:
            rest = second.result()
        try:
            table = pa.concat_tables([first, rest], promote_options="default")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            table = None
    if table is None:
        table = _read(bodies, threads=pa.cpu_count() > 1)
    if _count_leaves(pa.struct(list(table.schema))) > MAX_FIELDS:
        raise Unsupported("too many fields for a columnar batch")
    batch = table.combine_chunks().to_struct_array()
    return batch.combine_chunks() if isinstance(batch, pa.ChunkedArray) else batch


def _event_time(ddb: pa.Array, rec: pa.Array, n: int) -> pa.Array:
    raw = _child(ddb, "ApproximateCreationDateTime")
    if raw is None or raw.null_count:
        raise Unsupported("a record without ApproximateCreationDateTime")
    if not (pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type)):
        raise Unsupported(f"ApproximateCreationDateTime is {raw.type}")
    precision = _string_field(ddb, "ApproximateCreationDateTimePrecision", n)
    micro = pc.fill_null(pc.equal(precision, "MICROSECOND"), False)
    milli = pc.fill_null(pc.equal(precision, "MILLISECOND"), False)
    for name in ("recordFormat", "tableName"):
        f = _child(rec, name)
        if f is not None:
            milli = pc.or_(milli, f.is_valid())
    if pa.types.is_integer(raw.type):
        values = raw.cast(pa.int64()).to_numpy(zero_copy_only=False)
        factor = np.where(micro.to_numpy(zero_copy_only=False), 1,
                          np.where(milli.to_numpy(zero_copy_only=False), 1_000, 1_000_000))
        if np.any(np.abs(values) > np.iinfo(np.int64).max // factor):
            raise Unsupported("an ApproximateCreationDateTime out of range")
        return pa.array(values * factor, TS)
    else:
        rounded = pc.round(pc.if_else(milli, pc.multiply(raw, 1e3), pc.multiply(raw, 1e6)),
                           round_mode="half_to_even")
        us = pc.if_else(micro, pc.trunc(raw), rounded).cast(pa.int64())
    return us.cast(TS)


def _key_columns(keys: pa.Array, kids: dict[str, Tags], n: int) -> tuple[pa.Array, pa.Array]:
    """(canonical typed JSON of Keys, ``pk=A|sk=1``) per row."""
    if keys.null_count or not np.all(_nonnull_count([v for t in kids.values() for v in t.values()], n) > 0):
        raise Unsupported("a record without dynamodb.Keys")
    values: list[tuple[str, pa.Array]] = []
    for name in sorted(kids):
        tags = kids[name]
        if set(tags) - {"S", "N", "B"}:
            raise Unsupported("a key attribute that is not S, N or B")
        if not tags:
            continue
        vals = list(tags.values())
        value = vals[0] if len(vals) == 1 else pc.coalesce(*vals)
        if "S" in tags and pc.any(pc.match_substring_regex(tags["S"], r"[|\\]")).as_py():
            # lake.records.escape_key_value, on arrays
            value = pc.replace_substring(pc.replace_substring(value, "\\", "\\\\"), "|", "\\|")
        values.append((escape_key_name(name), value))
    if all(v.null_count == 0 for _, v in values):  # every key attribute in every row: one join
        key = _join_parts([p for i, (name, v) in enumerate(values) for p in ("|"[:i] + name + "=", v)], n)
    else:
        key = pc.binary_join_element_wise(*[_cat("|" + name + "=", v) for name, v in values], "",
                                          null_handling="skip") if len(values) > 1 else \
            _cat("|" + values[0][0] + "=", values[0][1])
        key = pc.utf8_slice_codeunits(key, 1)
    if len(key) != n:
        raise Unsupported("key rendering lost rows")
    return object_text(keys, "typed", kids=kids, sort=True), key


def _valid(arr: pa.Array | None, n: int) -> np.ndarray:
    if arr is None:
        return np.zeros(n, dtype=bool)
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _tags_valid(tags: Tags | None, n: int) -> np.ndarray:
    if not tags:
        return np.zeros(n, dtype=bool)
    return _nonnull_count(list(tags.values()), n) > 0


def _changed(name_: pa.Array, old: pa.Array | None, new: pa.Array | None,
             o_kids: dict[str, Tags], n_kids: dict[str, Tags], n: int) -> pa.Array:
    """changed_attributes per row (see lake.curate.decode.changed_attributes)."""
    names = sorted(o_kids.keys() | n_kids.keys())
    if not names:
        return pa.array([[]] * n, pa.list_(_STR))
    use_new = _present_any(n_kids, n)
    diff = pc.equal(name_, "MODIFY").to_numpy(zero_copy_only=False) & _valid(old, n) & _valid(new, n)
    matrix = np.zeros((n, len(names)), dtype=bool)
    for j, a in enumerate(names):
        ov, nv = _tags_valid(o_kids.get(a), n), _tags_valid(n_kids.get(a), n)
        col = np.where(use_new, nv, ov)
        if diff.any():
            col = np.where(diff, _differs(o_kids.get(a) or {}, n_kids.get(a) or {}, n), col)
        matrix[:, j] = col
    rows, cols = np.nonzero(matrix)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    values = pa.array(names, _STR).take(pa.array(cols))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=pa.list_(_STR))


def _differs(ot: Tags, nt: Tags, n: int) -> np.ndarray:
    """Per row: do two typed values differ (one absent and the other present counts)?"""
    out = np.zeros(n, dtype=bool)
    for tag in ot.keys() | nt.keys():
        a, b = ot.get(tag), nt.get(tag)
        if a is None or b is None:
            out |= _valid(a if a is not None else b, n)
            continue
        if tag in ("SS", "NS", "BS", "M", "L"):  # sorted members: dict equality ignores order
            a, b = tag_text(tag, a, "typed", sort=True), tag_text(tag, b, "typed", sort=True)
        ne = pc.fill_null(pc.not_equal(a, b), False)
        out |= pc.or_(ne, pc.xor(a.is_valid(), b.is_valid())).to_numpy(zero_copy_only=False)
    return out


def _present_any(kids: dict[str, Tags], n: int) -> np.ndarray:
    """Rows whose image is present and holds at least one attribute."""
    return _nonnull_count([v for t in kids.values() for v in t.values()], n) > 0


def _history_images(sources: list[tuple[np.ndarray, dict[str, Tags]]], n: int) -> dict[str, Tags]:
    """Per attribute, the tag arrays of ``new or old or keys`` (the reference Change.image);
    ``sources``: (rows that take it, its children's tags) per image, in that order."""
    kids = [(m, k) for m, k in sources if m.any()]
    out: dict[str, Tags] = {}
    for attribute in sorted({a for _, k in kids for a in k}):
        per_source = [(m, {t: history_values(t, v) for t, v in k[attribute].items()})
                      for m, k in kids if attribute in k]
        if len(per_source) == 1 and per_source[0][0].all():
            out[attribute] = per_source[0][1]
            continue
        merged: Tags = {}
        for tag in sorted({t for _, tags in per_source for t in tags}):
            acc: pa.Array | None = None
            for m, tags in per_source:
                v = tags.get(tag)
                if v is None:
                    continue
                if acc is None:
                    acc = pa.nulls(n, v.type)
                acc = pc.if_else(pa.array(m), v, acc)
            assert acc is not None
            if acc.null_count < n:
                merged[tag] = acc
        out[attribute] = merged
    return out


def convert(bodies: Sequence[bytes], tables: Sequence[str | None], shard_ids: Sequence[str],
            sequence_numbers: Sequence[str], images: bool = True) -> Converted:
    """Stream records (JSON bytes; ``tables[i]`` from the fan-out envelope, or None for a
    bare record whose table is in it) with their Kinesis coordinates → per-table Arrow rows.

    ``images=False`` leaves old_image/new_image of ``changes`` null (as
    ``tables.changes_table(images=False)``), for a caller that needs only the history.
    Raises Unsupported for anything the reference path would treat differently.
    """
    n = len(bodies)
    rec = parse(bodies)
    ddb = _child(rec, "dynamodb")
    if ddb is None or not pa.types.is_struct(ddb.type) or ddb.null_count:
        raise Unsupported("a record without a dynamodb object")
    event_id = _string_field(rec, "eventID", n)
    name = _string_field(rec, "eventName", n)
    if event_id.null_count or not pc.all(pc.greater(pc.binary_length(event_id), 0)).as_py():
        raise Unsupported("a record without eventID")
    if name.null_count or not pc.all(pc.is_in(name, pa.array(EVENT_NAMES))).as_py():
        raise Unsupported("an eventName that is not INSERT, MODIFY or REMOVE")
    old, new = _child(ddb, "OldImage"), _child(ddb, "NewImage")
    for image in (old, new):
        if image is not None and image.type != pa.null() and not pa.types.is_struct(image.type):
            raise Unsupported("an image that is not an object")
    old = old if old is not None and old.type != pa.null() else None
    new = new if new is not None and new.type != pa.null() else None
    o_kids = children_tags(old) if old is not None else {}
    n_kids = children_tags(new) if new is not None else {}
    # the image texts are the largest strand of work: start them first, on the pool
    texts: list[Future[pa.Array] | None] = [
        _start(n, object_text, image, "plain", kids=kids) if images and image is not None else None
        for image, kids in ((old, o_kids), (new, n_kids))]
    keys = _child(ddb, "Keys")
    if keys is None or not pa.types.is_struct(keys.type):
        raise Unsupported("a record without dynamodb.Keys")
    k_kids = children_tags(keys)
    # the history's attributes (M/L as text): the second strand
    use_new = _present_any(n_kids, n)
    use_old = ~use_new & _present_any(o_kids, n)
    history = _start(n, _history_images, [(use_new, n_kids), (use_old, o_kids), (~use_new & ~use_old, k_kids)], n)
    table = _table_names(rec, tables, n)
    keys_json, key = _key_columns(keys, k_kids, n)
    ident = _child(rec, "userIdentity")
    principal = _string_field(ident, "principalId", n) if ident is not None else pa.nulls(n, _STR)
    if ident is not None and ident.type != pa.null() and not pa.types.is_struct(ident.type):
        raise Unsupported("userIdentity is not an object")
    id_type = _string_field(ident, "type", n) if ident is not None else pa.nulls(n, _STR)
    is_remove = pc.equal(name, "REMOVE")
    ttl = pc.fill_null(pc.and_(pc.and_(is_remove, pc.equal(id_type, "Service")),
                               pc.equal(principal, TTL_PRINCIPAL)), False)
    size = _child(ddb, "SizeBytes")
    if size is None or size.type == pa.null():
        size = pa.nulls(n, pa.int64())
    elif not pa.types.is_integer(size.type):
        raise Unsupported(f"SizeBytes is {size.type}")
    seq = pa.array(sequence_numbers, _STR)
    columns = [
        event_id, name, _event_time(ddb, rec, n), _pad(seq),
        pa.array(shard_ids, _STR), _string_field(ddb, "SequenceNumber", n), keys_json, key,
        pa.nulls(n, _STR), pa.nulls(n, _STR),  # the image texts, below
        _changed(name, old, new, o_kids, n_kids, n), ttl, principal, size.cast(pa.int64()),
    ]
    for column, text in zip(("old_image", "new_image"), texts, strict=True):
        if text is not None:
            columns[CHANGES_SCHEMA.get_field_index(column)] = text.result()
    changes = pa.Table.from_arrays(columns, schema=CHANGES_SCHEMA)
    return _split(changes, history.result(), table, seq, n)


def _pad(seq: pa.Array) -> pa.Array:
    """Sequence numbers zero-padded to SEQ_WIDTH characters; Kinesis' are digits, for which
    the byte-wise kernel is exact and ~10x faster than the code-point one."""
    ascii_only = pc.all(pc.string_is_ascii(seq)).as_py() is not False
    return (pc.ascii_lpad if ascii_only else pc.utf8_lpad)(seq, SEQ_WIDTH, "0")


def _table_names(rec: pa.Array, hints: Sequence[str | None], n: int) -> pa.Array:
    """The envelope's table, else tableName, else the table in eventSourceARN."""
    named = _string_field(rec, "tableName", n)
    named = pc.if_else(pc.fill_null(pc.greater(pc.binary_length(named), 0), False), named, _NULL_STR)
    hint = pa.array(hints, _STR)
    if hint.null_count == 0:
        return hint
    arn = _string_field(rec, "eventSourceARN", n)
    if arn.null_count == n:
        from_arn = pa.nulls(n, _STR)
    else:  # a batch holds few distinct ARNs: match each once
        coded = arn.dictionary_encode()
        tables = pc.struct_field(pc.extract_regex(coded.dictionary, _ARN_TABLE), "table")
        from_arn = tables.take(coded.indices)
    out = pc.coalesce(hint, named, from_arn)
    if out.null_count:
        raise Unsupported("a record whose table is unknown")
    return out


def _split(changes: pa.Table, images: dict[str, Tags], table: pa.Array, seq: pa.Array, n: int) -> Converted:
    ids = changes.column("event_id")
    out = Converted()
    keep: pa.Array | None = None
    if len(pc.unique(ids)) < n:  # redelivered records: keep each event's first copy
        firsts = pa.table({"id": ids, "i": pa.array(np.arange(n))}).group_by("id", use_threads=False) \
            .aggregate([("i", "min")]).column("i_min")
        keep = pc.sort_indices(firsts)
        keep = firsts.take(keep).combine_chunks()
        out.duplicates = n - len(keep)
    sources = pc.unique(table if keep is None else table.take(keep)).to_pylist()
    for source in sources:
        if len(sources) == 1 and keep is None:
            idx = None
        else:
            mask = pc.equal(table, source)
            idx = pc.indices_nonzero(mask)
            if keep is not None:
                idx = pa.array(np.intersect1d(idx.to_numpy().astype(np.int64), keep.to_numpy().astype(np.int64)))
        if idx is None:
            out.tables.append(TableSlice(source, changes, images, seq))
        else:
            out.tables.append(TableSlice(source, changes.take(idx),
                                         {a: {t: v.take(idx) for t, v in tags.items()} for a, tags in images.items()},
                                         seq.take(idx)))
    return out


def partitions(changes: pa.Table) -> list[tuple[str, pa.Array | None, str]]:
    """(dt, row indices or None for all, file name) per day of a ``changes`` table, in order of
    first appearance; the file is named after the day's first row (as the consumer names it)."""
    us = changes.column("event_time").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    days = np.floor_divide(us, _US_PER_DAY)
    shard = changes.column("shard_id")
    seq = changes.column("sequence_number")
    unique, first = np.unique(days, return_index=True)
    out: list[tuple[str, pa.Array | None, str]] = []
    for j in np.argsort(first, kind="stable"):
        idx = None if len(unique) == 1 else pa.array(np.flatnonzero(days == unique[j]))
        i = int(first[j])
        out.append((day_of(int(unique[j]) * _US_PER_DAY), idx, f"{shard[i].as_py()}-{seq[i].as_py()}.parquet"))
    return out


# -- Parquet -------------------------------------------------------------------

class Rows(Protocol):
    """One source table's rows of a batch, as the writers need them (either path)."""

    source: str

    def changes(self) -> pa.Table: ...

    def history(self, existing: HistorySchema) -> HistoryBatch: ...

    def coordinates(self) -> list[tuple[str, str, str]]: ...


@dataclass(frozen=True)
class Partition:
    """One day of a source table's rows in a batch: both files, as Parquet bytes."""

    dt: str
    file: str  # ``<shard>-<first-seq>.parquet``, the same name in both tables
    changes: bytes
    history: bytes


@dataclass(frozen=True)
class Encoded:
    """A source table's rows of a batch as files, plus the history schema they need."""

    rows: int
    history: HistoryBatch
    partitions: list[Partition]


def _rows(table: pa.Table, idx: pa.Array | None) -> pa.Table:
    return table if idx is None else table.take(idx)


def encode(rows: Rows, existing: HistorySchema | Callable[[], HistorySchema]) -> Encoded:
    """Both tables of ``rows`` as Parquet per day (see ``partitions``), ``existing`` being
    the history table's current schema, or a function that looks it up.

    The ``changes`` files are written on the pool while this thread looks the schema up (a
    catalog round trip) and builds and writes the history table: the strands share nothing,
    and both spend their time in pyarrow code that releases the GIL."""
    table = rows.changes()
    days = partitions(table)
    changes = [_start(table.num_rows, parquet_bytes, _rows(table, idx)) for _, idx, _ in days]
    batch = rows.history(existing() if callable(existing) else existing)
    history = [parquet_bytes(_rows(batch.table, idx)) for _, idx, _ in days]
    return Encoded(table.num_rows, batch, [
        Partition(dt, file, c.result(), h) for (dt, _, file), c, h in zip(days, changes, history, strict=True)])
