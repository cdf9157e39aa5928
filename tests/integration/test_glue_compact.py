"""`compact` on the embedded AWS (issue 12): N small files become the planned count, the rows
stay the same multiset, a concurrent reader never sees a row missing or doubled, snapshots
past the window are expired, orphans removed, and a second run changes nothing."""

from __future__ import annotations

import collections
import threading
import time

import pytest

from lake.aws.catalog import IcebergMaintenance, IcebergTables
from lake.aws.clients import Clients
from lake.curate import curate
from lake.curate.names import history_table
from lake.glue.compact import CompactOptions, compact, plan_bins
from lake.settings import Settings
from tests.integration.test_curate_iceberg import kinesis, lake  # noqa: F401  (fixture)
from tests.integration.test_fanout_kinesis import stream_record

BATCHES, PER_BATCH = 12, 5


def _fill(settings: Settings, clients: Clients, days: int = 2) -> None:
    """BATCHES commits of PER_BATCH changes over ``days`` days: a small file per batch and day."""
    for b in range(BATCHES):
        recs = [stream_record(b * PER_BATCH + i, f"K{(b * PER_BATCH + i) % 7}",
                              new={"n": {"N": str(b * PER_BATCH + i)}, "s": {"S": f"v{i}"}},
                              t=1_700_000_000 + (b * PER_BATCH + i) % days * 86_400 + b)
                for i in range(PER_BATCH)]
        assert curate(settings, kinesis(recs, first=b * 100), clients).failures == []


def _multiset(settings: Settings, clients: Clients, name: str) -> collections.Counter[tuple]:
    table = IcebergTables(settings, clients).scan(name)
    return collections.Counter(tuple(sorted((k, repr(v)) for k, v in row.items())) for row in table.to_pylist())


def _files(settings: Settings, clients: Clients, name: str) -> list:
    tables = IcebergTables(settings, clients)
    return IcebergMaintenance(tables).data_files(tables.load(name))


def test_small_files_become_one_per_partition_with_the_same_rows(lake: Settings, clients: Clients) -> None:  # noqa: F811
    _fill(lake, clients)
    name = history_table("orders")
    before = _multiset(lake, clients, name)
    files = _files(lake, clients, name)
    assert len(files) == 2 * BATCHES  # one per batch and day
    expected_out = len(plan_bins(files, 128 * 1024 * 1024))
    assert expected_out == 2

    dry = compact(lake, CompactOptions(tables=(name,), dry_run=True), clients)
    assert (dry.tables[0].files_in, dry.tables[0].files_out) == (2 * BATCHES, 2)
    assert len(_files(lake, clients, name)) == 2 * BATCHES  # the dry run changed nothing

    report = compact(lake, CompactOptions(tables=(name,)), clients)
    t = report.tables[0]
    assert (t.files_in, t.files_out, t.rows_in, t.rows_out) == (2 * BATCHES, 2, BATCHES * PER_BATCH,
                                                                BATCHES * PER_BATCH)
    assert len(_files(lake, clients, name)) == 2
    assert _multiset(lake, clients, name) == before

    again = compact(lake, CompactOptions(tables=(name,)), clients)
    assert not again.changed, again.lines()


def test_a_reader_during_compaction_never_sees_a_row_missing_or_doubled(lake: Settings, clients: Clients) -> None:  # noqa: F811
    _fill(lake, clients, days=1)
    expected = _multiset(lake, clients, "changes")
    seen: list[int] = []
    wrong: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        reader_clients = Clients(lake)
        while not stop.is_set():
            got = _multiset(lake, reader_clients, "changes")
            seen.append(len(_files(lake, reader_clients, "changes")))
            if got != expected:
                wrong.append(f"{sum(got.values())} rows, {len(got - expected)} unexpected, "
                             f"{len(expected - got)} missing")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        while len(seen) < 2:
            time.sleep(0.01)
        report = compact(lake, CompactOptions(tables=("changes",)), clients)
        n = len(seen)
        while len(seen) < n + 2:  # the reader also reads the compacted table
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert report.tables[0].files_out == 1
    assert wrong == []
    assert seen[0] == BATCHES and seen[-1] == 1  # it read before and after the swap


def test_expiry_keeps_the_window_and_orphans_go_after_their_grace(lake: Settings, clients: Clients) -> None:  # noqa: F811
    _fill(lake, clients, days=1)
    name = history_table("orders")
    tables = IcebergTables(lake, clients)
    snapshots = len(tables.load(name).snapshots())
    store = clients.store(lake.bucket)
    prefix = f"{lake.zone_prefix('curated')}{name}/"
    store.put(f"{prefix}data/orphan-left-by-a-crashed-writer.parquet", b"not referenced")
    objects_before = sum(1 for _ in store.list(prefix))

    kept = compact(lake, CompactOptions(tables=(name,)), clients)  # defaults: 7-day window, 3-day grace
    assert kept.tables[0].snapshots_expired == 0 and kept.tables[0].files_deleted == 0
    assert len(tables.load(name).snapshots()) == snapshots + 1  # + the compaction

    later = time.time() + 8 * 86_400
    dry = compact(lake, CompactOptions(tables=(name,), dry_run=True), clients, now=later)
    assert dry.tables[0].snapshots_expired == snapshots  # all but the current one
    assert len(tables.load(name).snapshots()) == snapshots + 1

    done = compact(lake, CompactOptions(tables=(name,)), clients, now=later)
    assert done.tables[0].snapshots_expired == snapshots
    assert [s.snapshot_id for s in tables.load(name).snapshots()] == [tables.load(name).current_snapshot().snapshot_id]
    # the replaced small files, the expired snapshots' manifests and lists, and the orphan are gone
    assert done.tables[0].files_deleted > BATCHES
    remaining = set(store.list(prefix))
    assert f"{prefix}data/orphan-left-by-a-crashed-writer.parquet" not in remaining
    assert len(remaining) < objects_before
    assert sum(_multiset(lake, clients, name).values()) == BATCHES * PER_BATCH  # still readable, all rows

    assert not compact(lake, CompactOptions(tables=(name,)), clients, now=later).changed


def test_bad_options_are_refused() -> None:
    with pytest.raises(Exception, match="target"):
        CompactOptions(target_bytes=0)
