"""JSON text of typed values, on whole Arrow columns: images as plain JSON (``changes``),
maps and lists as typed DynamoDB JSON (history columns), the same text orjson would write. Pure.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lake.curate.arrays import STR, Part, Unsupported, cat, join_parts, list_parts, rewrap, where
from lake.curate.tags import Tags, children_tags, present_count, tags_of

Mode = Literal["plain", "typed"]
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_CONTROL = [chr(i) for i in range(0x20)]
_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def escape(strings: pa.Array) -> pa.Array:
    """JSON string escaping exactly as orjson does it (``\\"``, ``\\\\``, control characters).

    One replace per character that occurs in the column (found by one scan of its bytes),
    not one per character that could: a column with a tab in it took 34 kernel calls."""
    found = escapes_needed(strings)
    if not found:
        return strings
    out = strings
    for ch in found:  # the backslash first: the others add backslashes
        out = pc.replace_substring(out, ch, _ESCAPES[ch])
    return out


_ESCAPES = {"\\": "\\\\", '"': '\\"', **{ch: _SHORT_ESCAPES.get(ch, f"\\u{ord(ch):04x}") for ch in _CONTROL}}
_ESCAPE_ORDER = ["\\", '"', *_CONTROL]


def escapes_needed(strings: pa.Array) -> list[str]:
    """The characters of the column that JSON escapes, backslash first (a scan of the data
    buffer; bytes of null slots can only add to it)."""
    if len(strings) == strings.null_count:
        return []
    if strings.type != STR:
        return _ESCAPE_ORDER if pc.any(pc.match_substring_regex(strings, _NEEDS_ESCAPE)).as_py() else []
    data = strings.buffers()[2]
    if data is None:
        return []
    offs = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset:strings.offset + len(strings) + 1]
    raw = np.frombuffer(data, dtype=np.uint8)[offs[0]:offs[-1]]
    hit = (raw < 0x20) | (raw == 0x22) | (raw == 0x5C)
    if not hit.any():
        return []
    present = set(np.unique(raw[hit]).tolist())
    return [ch for ch in _ESCAPE_ORDER if ord(ch) in present]



def list_text(lists: pa.Array, mode: Mode, element: Literal["quoted", "number", "value"],
              sort: bool = False) -> list[Part]:
    """A list → the pieces of ``[e1,e2]`` (null where the list is)."""
    flat, offsets = list_parts(lists)
    if element == "quoted" and len(flat):
        lengths = pc.list_value_length(lists)
        if pc.min(lengths).as_py() > 0:
            # no empty list: the quotes go in the separator and around the whole, which
            # spares a pass over every element
            joined = pc.binary_join(rewrap(lists, offsets, escape(flat), pa.list_(STR)), '","')
            return ['["', joined, '"]']
    if not len(flat):
        texts = pa.array([], STR)
    elif element == "quoted":
        texts = cat('"', escape(flat), '"')
    elif element == "number":
        texts = flat
    else:
        texts = value_text(flat, mode, sort=sort)
    return ["[", pc.binary_join(rewrap(lists, offsets, texts, pa.list_(STR)), ","), "]"]


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
        return ["null"] if whole else [where(v.is_valid(), "null")]
    elif tag in ("SS", "BS") or (tag == "NS" and mode == "typed"):
        parts = list_text(v, mode, "quoted")
    elif tag == "NS":
        parts = list_text(v, mode, "number")
    elif tag == "M":
        inline = _object_parts(v, mode, children_tags(v), sort) if whole else None
        parts = inline if inline is not None else [object_text(v, mode, sort=sort)]
    elif tag == "L":
        parts = list_text(v, mode, "value", sort)
    else:
        raise Unsupported(f"unknown DynamoDB type tag {tag!r}")
    return [f'{{"{tag}":', *parts, "}"] if mode == "typed" else parts


def tag_text(tag: str, v: pa.Array, mode: Mode, pre: str = "", post: str = "", sort: bool = False) -> pa.Array:
    """One tag's values as JSON text (``plain``: unmarshalled; ``typed``: DynamoDB JSON),
    between ``pre`` and ``post``; null where a value is absent."""
    return join_parts([pre, *_value_parts(tag, v, mode, sort, whole=False), post], len(v))


def value_text(values: pa.Array, mode: Mode, pre: str = "", post: str = "", sort: bool = False) -> pa.Array:
    """Typed values → ``pre`` + JSON text + ``post`` (null where a value is absent)."""
    tags = tags_of(values)
    if not tags:
        return pa.nulls(len(values), STR)
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
        text = join_parts([pre, *parts, post], n, skip=True)
    else:
        # no member present wherever the object is: every member leads with a comma, and the
        # one right after "{" is removed
        head = pre + "{"
        text = join_parts([head, *_members(struct, mode, kids, sort, -1), "}" + post], n, skip=True)
        text = pc.replace_substring(text, head + ",", head, max_replacements=1)
    return where(struct.is_valid(), text) if struct.null_count else text



def _object_parts(struct: pa.Array, mode: Mode, kids: dict[str, Tags], sort: bool) -> list[Part] | None:
    """The pieces of an object's text, to be joined skipping nulls (wrong, not null, where
    the object is absent: the caller masks those rows); None when no member is present
    wherever the object is (the anchor the commas need, see ``_members``)."""
    names = _names(kids, sort)
    if not names:
        return ["{}"]
    present = len(struct) - struct.null_count
    anchor = next((i for i, name in enumerate(names) if present_count(kids[name], len(struct)) == present), -1)
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



def _tags_text(tags: Tags, mode: Mode, pre: str, post: str, sort: bool = False) -> pa.Array:
    texts = [tag_text(tag, v, mode, pre, post, sort) for tag, v in tags.items()]
    return texts[0] if len(texts) == 1 else pc.coalesce(*texts)

