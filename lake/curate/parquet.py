"""A source table's rows of a batch → Parquet files per day, both tables (``changes`` and
``<table>_history``), written on the shared pool beside the catalog look-up. Pure: the bytes
come back; the consumer puts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

from lake.curate.decode import US_PER_DAY, day_of
from lake.curate.pool import start
from lake.curate.tables import HistoryBatch, HistorySchema, parquet_bytes


def partitions(changes: pa.Table) -> list[tuple[str, pa.Array | None, str]]:
    """(dt, row indices or None for all, file name) per day of a ``changes`` table, in order of
    first appearance; the file is named after the day's first row (as the consumer names it)."""
    us = changes.column("event_time").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    days = np.floor_divide(us, US_PER_DAY)
    shard = changes.column("shard_id")
    seq = changes.column("sequence_number")
    unique, first = np.unique(days, return_index=True)
    out: list[tuple[str, pa.Array | None, str]] = []
    for j in np.argsort(first, kind="stable"):
        idx = None if len(unique) == 1 else pa.array(np.flatnonzero(days == unique[j]))
        i = int(first[j])
        out.append((day_of(int(unique[j]) * US_PER_DAY), idx, f"{shard[i].as_py()}-{seq[i].as_py()}.parquet"))
    return out


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
    changes = [start(table.num_rows, parquet_bytes, _rows(table, idx)) for _, idx, _ in days]
    batch = rows.history(existing() if callable(existing) else existing)
    history = [parquet_bytes(_rows(batch.table, idx)) for _, idx, _ in days]
    return Encoded(table.num_rows, batch, [
        Partition(dt, file, c.result(), h) for (dt, _, file), c, h in zip(days, changes, history, strict=True)])
