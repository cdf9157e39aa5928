"""The state of items from their changes: the latest change per item wins. Pure (Arrow only).

Order of two changes of one item: event time, then the sequence number (Kinesis sequence
numbers are zero-padded to one width, so text order is number order), then the event id
(only to make the choice total: two changes never share all three). A REMOVE that wins
(a user's delete or the TTL sweeper's) means the item is gone.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

ORDER = ("event_time", "sequence_number", "event_id")
ORDER_COLUMNS = ("key", *ORDER, "event_name")


def latest(rows: pa.Table) -> pa.Table:
    """One row per ``key``: the latest by :data:`ORDER` (live or REMOVE)."""
    if rows.num_rows <= 1:
        return rows
    ordered = rows.sort_by([("key", "ascending")] + [(c, "descending") for c in ORDER])
    keys = ordered.column("key").combine_chunks()
    first = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    mask = pa.concat_arrays([pa.array([True]), first.fill_null(True)])
    return ordered.filter(mask)


def fold(state: pa.Table | None, rows: pa.Table) -> pa.Table:
    """``state`` (one row per key) with ``rows`` applied: the running reduction that lets a
    job read changes one file at a time (memory: one row per item, plus one file)."""
    if state is None:
        return latest(rows)
    if rows.num_rows == 0:
        return state
    return latest(pa.concat_tables([state, rows.select(state.column_names)], promote_options="permissive"))


def live(state: pa.Table) -> pa.Table:
    """The rows whose winning change is not a REMOVE."""
    return state.filter(pc.not_equal(state.column("event_name"), "REMOVE"))
