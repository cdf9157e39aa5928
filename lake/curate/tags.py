"""DynamoDB type tags on Arrow arrays: a parsed column of typed values (``{"S": ...}``
structs) → its tag children, checked as the reference path would check them. Pure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.curate.arrays import STR, Unsupported, nonnull_count
from lake.records import JSON_NUMBER, TYPE_TAGS

Tags = dict[str, pa.Array]  # DynamoDB type tag → that child of a typed value (parent nulls applied)
_NUMBER = "^" + JSON_NUMBER + "$"  # (run by RE2, where \d is ASCII)


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
            ok = ct == STR
        elif tag in ("BOOL", "NULL"):
            ok = ct == pa.bool_()
        elif tag in ("SS", "NS", "BS"):
            child = string_list(child)
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
        count = nonnull_count(list(out.values()), n)
        valid = values.is_valid().to_numpy(zero_copy_only=False)
        if np.any(count[valid] != 1):
            raise Unsupported("a typed value without exactly one tag")
    if "N" in out:
        check_numbers(out["N"])
    if "NS" in out:
        check_numbers(pc.list_flatten(out["NS"]))
    return out


def children_tags(struct: pa.Array) -> dict[str, Tags]:
    """A struct of typed values → each child's tags (see tags_of).

    Within :func:`remembered`, each struct's answer is kept: a map of an image is read for
    its image text, for its history text and for changed_attributes (each once per nesting
    level: 3x the tags_of and number checks, measured on bench_convert's maps)."""
    hit = _remembered.get(id(struct))
    if hit is not None and hit[0] is struct:
        return hit[1]
    out = {f.name: tags_of(child) for f, child in zip(struct.type, struct.flatten(), strict=True)}
    if _remembering:
        _remembered[id(struct)] = (struct, out)  # the array is held: its id cannot be reused
    return out


_remembered: dict[int, tuple[pa.Array, dict[str, Tags]]] = {}
_remembering = 0
_lock = threading.Lock()


@contextmanager
def remembered() -> Iterator[None]:
    """Keep children_tags' answers while the block runs (threads of one conversion share
    them; an answer is only ever taken for the very array it was computed for)."""
    global _remembering
    with _lock:
        _remembering += 1
    try:
        yield
    finally:
        with _lock:
            _remembering -= 1
            if not _remembering:
                _remembered.clear()


def present_count(tags: Tags, n: int) -> int:
    """How many rows hold a value of any of ``tags``."""
    if len(tags) == 1:
        (v,) = tags.values()
        return n - v.null_count
    return int(np.count_nonzero(nonnull_count(list(tags.values()), n)))


def check_numbers(texts: pa.Array) -> None:
    """Unsupported unless every N text is a JSON number literal (what the reference writes as is)."""
    if texts.null_count < len(texts) and not pc.all(pc.match_substring_regex(texts, _NUMBER)).as_py():
        raise Unsupported("an N value is not a number literal")


def string_list(lists: pa.Array) -> pa.Array:
    """list<string> or list<null> (only empty lists) → list<string>; elements must be present."""
    t = lists.type
    if not pa.types.is_list(t) or t.value_type not in (STR, pa.null()):
        raise Unsupported(f"a set holds {t}")
    if pc.list_flatten(lists).null_count:
        raise Unsupported("a set holds a null")
    return lists.cast(pa.list_(STR))

