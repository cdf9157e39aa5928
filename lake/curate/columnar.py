"""Columnar conversion of a batch of stream records: one ``pyarrow.json`` parse (``parse``), then
``pyarrow.compute`` over the parsed struct columns. Pure: no boto3.

The per-record path (``decode`` + ``tables``) is the reference; this module produces the same
Arrow tables (tests/unit/test_curate_columnar.py checks it on random workloads). Anything it
does not handle exactly as the reference would — a parse error, a kind conflict, a record the
reference quarantines, an unknown type tag, a pathological schema — raises ``Unsupported``
and the caller converts the batch record by record instead.

Why columnar: a per-record Python path allocates millions of small objects per batch and
cannot get near ``pyarrow.json.read_json``'s rate; a handful of vectorised kernels per
attribute can.

The pieces: ``arrays`` (small Arrow helpers, :class:`~lake.curate.arrays.Unsupported`),
``tags`` (DynamoDB type tags), ``json_text`` (JSON text kernels), ``history_columns`` (typed
history columns), ``pool`` (the shared worker pool). ``convert_grouped`` converts a batch
table by table (the consumer's entry point).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.curate.arrays import NULL_STR, STR, Unsupported, cat, join_parts, nonnull_count
from lake.curate.decode import SEQ_WIDTH
from lake.curate.history_columns import build_column, check_base64, history_values
from lake.curate.json_text import object_text, tag_text
from lake.curate.parse import parse
from lake.curate.pool import shared_pool, start
from lake.curate.tables import CHANGES_SCHEMA, TS, HistoryBatch, HistorySchema, assemble_history
from lake.curate.tags import Tags, children_tags, remembered
from lake.records import EVENT_NAMES, KEY_VALUE_ESCAPES, STREAM_ARN, TTL_IDENTITY_TYPE, TTL_PRINCIPAL, escape_key_name

log = logging.getLogger(__name__)


@dataclass
class TableSlice:
    """One source table's rows of a converted batch."""

    source: str
    table: pa.Table  # the ``changes`` rows (CHANGES_SCHEMA)
    images: dict[str, Tags]  # history attribute → tag arrays, row for row with ``table``
    kinesis_sequence_numbers: pa.Array  # as Kinesis gave them (batch item failures)
    first: int = 0  # position of its first row among the records converted

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
        return pa.nulls(n, STR)
    if v.type != STR:
        raise Unsupported(f"{name} is {v.type}")
    return v



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
    if keys.null_count or not np.all(nonnull_count([v for t in kids.values() for v in t.values()], n) > 0):
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
        # lake.records.escape_key_value, on arrays (a B value that is not base64 may need it too)
        for special, escaped in KEY_VALUE_ESCAPES:
            if pc.any(pc.match_substring(value, special)).as_py():
                value = pc.replace_substring(value, special, escaped)
        values.append((escape_key_name(name), value))
    if all(v.null_count == 0 for _, v in values):  # every key attribute in every row: one join
        key = join_parts([p for i, (name, v) in enumerate(values) for p in ("|"[:i] + name + "=", v)], n)
    else:
        key = pc.binary_join_element_wise(*[cat("|" + name + "=", v) for name, v in values], "",
                                          null_handling="skip") if len(values) > 1 else \
            cat("|" + values[0][0] + "=", values[0][1])
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
    return nonnull_count(list(tags.values()), n) > 0


def _changed(name_: pa.Array, old: pa.Array | None, new: pa.Array | None,
             o_kids: dict[str, Tags], n_kids: dict[str, Tags], n: int) -> pa.Array:
    """changed_attributes per row (see lake.curate.decode.changed_attributes)."""
    names = sorted(o_kids.keys() | n_kids.keys())
    if not names:
        return pa.array([[]] * n, pa.list_(STR))
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
    values = pa.array(names, STR).take(pa.array(cols))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=pa.list_(STR))


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
    return nonnull_count([v for t in kids.values() for v in t.values()], n) > 0


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
            sequence_numbers: Sequence[str], images: bool = True,
            parsed: pa.StructArray | None = None) -> Converted:
    """Stream records (JSON bytes; ``tables[i]`` from the fan-out envelope, or None for a
    bare record whose table is in it) with their Kinesis coordinates → per-table Arrow rows.

    ``images=False`` leaves old_image/new_image of ``changes`` null, for a caller that needs
    only the history.
    ``parsed``: ``parse(bodies)``, when the caller has it already.
    Raises Unsupported for anything the reference path would treat differently.
    """
    with remembered():
        return _convert(bodies, tables, shard_ids, sequence_numbers, images, parsed)


def _convert(bodies: Sequence[bytes], tables: Sequence[str | None], shard_ids: Sequence[str],
             sequence_numbers: Sequence[str], images: bool, parsed: pa.StructArray | None) -> Converted:
    n = len(bodies)
    rec = parse(bodies) if parsed is None else parsed
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
        start(n, object_text, image, "plain", kids=kids) if images and image is not None else None
        for image, kids in ((old, o_kids), (new, n_kids))]
    keys = _child(ddb, "Keys")
    if keys is None or not pa.types.is_struct(keys.type):
        raise Unsupported("a record without dynamodb.Keys")
    k_kids = children_tags(keys)
    # the history's attributes (M/L as text): the second strand
    use_new = _present_any(n_kids, n)
    use_old = ~use_new & _present_any(o_kids, n)
    history = start(n, _history_images, [(use_new, n_kids), (use_old, o_kids), (~use_new & ~use_old, k_kids)], n)
    table = _table_names(rec, tables, n)
    keys_json, key = _key_columns(keys, k_kids, n)
    ident = _child(rec, "userIdentity")
    principal = _string_field(ident, "principalId", n) if ident is not None else pa.nulls(n, STR)
    if ident is not None and ident.type != pa.null() and not pa.types.is_struct(ident.type):
        raise Unsupported("userIdentity is not an object")
    id_type = _string_field(ident, "type", n) if ident is not None else pa.nulls(n, STR)
    is_remove = pc.equal(name, "REMOVE")
    ttl = pc.fill_null(pc.and_(pc.and_(is_remove, pc.equal(id_type, TTL_IDENTITY_TYPE)),
                               pc.equal(principal, TTL_PRINCIPAL)), False)
    size = _child(ddb, "SizeBytes")
    if size is None or size.type == pa.null():
        size = pa.nulls(n, pa.int64())
    elif not pa.types.is_integer(size.type):
        raise Unsupported(f"SizeBytes is {size.type}")
    seq = pa.array(sequence_numbers, STR)
    columns = [
        event_id, name, _event_time(ddb, rec, n), _pad(seq),
        pa.array(shard_ids, STR), _string_field(ddb, "SequenceNumber", n), keys_json, key,
        pa.nulls(n, STR), pa.nulls(n, STR),  # the image texts, below
        _changed(name, old, new, o_kids, n_kids, n), ttl, principal, size.cast(pa.int64()),
    ]
    for column, text in zip(("old_image", "new_image"), texts, strict=True):
        if text is not None:
            columns[CHANGES_SCHEMA.get_field_index(column)] = text.result()
    changes = pa.Table.from_arrays(columns, schema=CHANGES_SCHEMA)
    items = history.result()
    for tags in items.values():  # the history decodes B values: each must decode
        if "B" in tags:
            check_base64(tags["B"])
        if "BS" in tags:
            check_base64(pc.list_flatten(tags["BS"]))
    return _split(changes, items, table, seq, n)


def _pad(seq: pa.Array) -> pa.Array:
    """Sequence numbers zero-padded to SEQ_WIDTH characters; Kinesis' are digits, for which
    the byte-wise kernel is exact and ~10x faster than the code-point one."""
    ascii_only = pc.all(pc.string_is_ascii(seq)).as_py() is not False
    return (pc.ascii_lpad if ascii_only else pc.utf8_lpad)(seq, SEQ_WIDTH, "0")


def _table_names(rec: pa.Array, hints: Sequence[str | None], n: int) -> pa.Array:
    """The envelope's table, else tableName, else the table in eventSourceARN."""
    named = _string_field(rec, "tableName", n)
    named = pc.if_else(pc.fill_null(pc.greater(pc.binary_length(named), 0), False), named, NULL_STR)
    hint = pa.array(hints, STR)
    if hint.null_count == 0:
        return hint
    arn = _string_field(rec, "eventSourceARN", n)
    if arn.null_count == n:
        from_arn = pa.nulls(n, STR)
    else:  # a batch holds few distinct ARNs: match each once
        coded = arn.dictionary_encode()
        tables = pc.struct_field(pc.extract_regex(coded.dictionary, STREAM_ARN), "table")
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
            out.tables.append(TableSlice(source, changes.take(idx), _take_images(images, idx), seq.take(idx),
                                         int(idx[0].as_py())))
    return out


def _take_images(images: dict[str, Tags], idx: pa.Array) -> dict[str, Tags]:
    """The history attributes of some rows: a tag none of them holds is left out, and so is an
    attribute none of them holds (another source table's), as the reference gathers them."""
    out: dict[str, Tags] = {}
    for attribute, tags in images.items():
        kept = {t: taken for t, v in tags.items() if (taken := v.take(idx)).null_count < len(taken)}
        if kept:
            out[attribute] = kept
    return out


@dataclass
class Grouped:
    """A batch converted group by group (``convert_grouped``)."""

    slices: list[TableSlice]  # ``first``: the batch position of the slice's first row
    duplicates: int
    rest: list[int]  # batch positions left to the per-record path, in order


def convert_grouped(bodies: Sequence[bytes], tables: Sequence[str | None], shard_ids: Sequence[str],
                    sequence_numbers: Sequence[str], min_rows: int) -> Grouped:
    """``convert`` per envelope table (records without one make one more group): each parse
    then infers one table's fields, not the union of the batch's (measured on
    bench_convert's five tables: read_json 2-3x faster, and every kernel call after it
    touches only that table's rows). A group of fewer than ``min_rows`` records, or one the
    columnar path does not support, is left to the per-record path (``rest``).

    The next group is parsed on the pool while this thread converts the current one:
    read_json releases the GIL, the conversion mostly holds it.
    Duplicates are dropped within each group; the caller checks across groups."""
    groups: dict[str | None, list[int]] = {}
    for i, t in enumerate(tables):
        groups.setdefault(t, []).append(i)
    out = Grouped([], 0, [])
    todo: list[tuple[list[int], list[bytes]]] = []
    for idx in groups.values():
        if len(idx) < min_rows:
            out.rest.extend(idx)
        else:
            todo.append((idx, list(bodies) if len(idx) == len(bodies) else [bodies[i] for i in idx]))
    ahead: Future[pa.StructArray] | None = None
    for k, (idx, group) in enumerate(todo):
        try:
            parsed: pa.StructArray | Unsupported = ahead.result() if ahead is not None else parse(group)
        except Unsupported as e:
            parsed = e
        if k + 1 < len(todo):  # split=False: a pool task never waits on the pool
            ahead = shared_pool().submit(parse, todo[k + 1][1], False)
        try:
            if isinstance(parsed, Unsupported):
                raise parsed
            got = convert(group, [tables[i] for i in idx], [shard_ids[i] for i in idx],
                          [sequence_numbers[i] for i in idx], parsed=parsed)
        except Unsupported as e:
            log.info("%d records of a batch take the per-record path: %s", len(idx), e)
            out.rest.extend(idx)
            continue
        for part in got.tables:
            part.first = idx[part.first]
        out.slices.extend(got.tables)
        out.duplicates += got.duplicates
    out.rest.sort()
    return out
