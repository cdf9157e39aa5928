"""`backfill` on the embedded AWS (issue 12): rebuilt from the raw zone, `changes` and
`<table>_history` hold the rows the streaming path made of the same workload (a differential
test); a range rebuilds only that range; an intact lake and a second run change nothing."""

from __future__ import annotations

import collections
import time
from typing import Any

import pyarrow.compute as pc
import pytest

from lake.aws.catalog import IcebergTables
from lake.aws.clients import Clients
from lake.errors import ConfigError
from lake.glue.backfill import RAW_SHARD, BackfillOptions, backfill
from lake.local.up import EmbeddedLake
from lake.settings import Settings
from tests.integration.test_glue_current import _from_row, _run

KINESIS = ("shard_id", "sequence_number")


def _changes(s: Settings, clients: Clients) -> list[dict[str, Any]]:
    t = IcebergTables(s, clients).scan("changes")
    return t.filter(pc.equal(t.column("table_name"), "orders")).to_pylist()


def _history(s: Settings, clients: Clients) -> dict[str, dict[str, Any]]:
    """event_id → the metadata columns and the item's attributes, as values (column layout aside:
    one batch's types may differ from another's, and siblings hold what a column cannot)."""
    tables = IcebergTables(s, clients)
    table = tables.load("orders_history")
    props = dict(table.properties)
    out = {}
    for row in tables.scan("orders_history", table=table).to_pylist():
        meta = {k: row[k] for k in ("event_id", "event_name", "event_time", "key", "is_ttl_delete", "dt",
                                    *KINESIS)}
        out[row["event_id"]] = {**meta, "item": _from_row(row, props)}
    return out


def _without(rows: Any, columns: tuple[str, ...]) -> Any:
    if isinstance(rows, dict):  # event_id → row
        return {k: {c: v for c, v in row.items() if c not in columns} for k, row in rows.items()}
    return collections.Counter(tuple(sorted((k, repr(v)) for k, v in r.items() if k not in columns)) for r in rows)


def test_backfill_rebuilds_exactly_the_streamed_rows(settings: Settings) -> None:
    with EmbeddedLake(settings.replace(source_tables=("orders:pk:sk",)), port=0, ttl_interval_s=None,
                      poll_interval_s=0.02) as embedded:
        s, clients = embedded.settings, embedded.clients
        assert clients is not None
        _run(embedded, 300, seed=5)
        streamed_changes, streamed_history = _changes(s, clients), _history(s, clients)
        assert len(streamed_changes) > 100

        intact = backfill(s, BackfillOptions("orders"), clients)
        assert not intact.changed, intact.lines()  # the coordinates the tables hold are kept
        assert intact.tables[0].rows_in == len(streamed_changes)

        tables = IcebergTables(s, clients)
        for name in ("changes", "orders_history"):  # the curated zone is lost
            tables.catalog.drop_table(tables.identifier(name))
        dry = backfill(s, BackfillOptions("orders", dry_run=True), clients)
        assert dry.tables[0].rows_out == len(streamed_changes) and tables.find("changes") is None

        rebuilt = backfill(s, BackfillOptions("orders"), clients)
        assert [t.snapshots_added for t in rebuilt.tables] == [1, 1]
        got_changes, got_history = _changes(s, clients), _history(s, clients)
        assert _without(got_changes, KINESIS) == _without(streamed_changes, KINESIS)
        assert _without(got_history, KINESIS) == _without(streamed_history, KINESIS)
        assert all(r["shard_id"].startswith(RAW_SHARD) for r in got_changes)

        assert not backfill(s, BackfillOptions("orders"), clients).changed


def test_a_range_is_swapped_alone(settings: Settings) -> None:
    with EmbeddedLake(settings.replace(source_tables=("orders:pk:sk",)), port=0, ttl_interval_s=None,
                      poll_interval_s=0.02) as embedded:
        s, clients = embedded.settings, embedded.clients
        assert clients is not None
        _run(embedded, 120, seed=6)
        time.sleep(1.1)
        middle = int(time.time() * 1e6)
        time.sleep(1.1)
        _run(embedded, 120, seed=7)
        before = _changes(s, clients)
        late = [r for r in before if r["event_time"].timestamp() * 1e6 >= middle]
        assert 0 < len(late) < len(before)
        tables = IcebergTables(s, clients)
        tables.transact("changes", lambda table, tx: (tx.delete(f"event_time >= '{_iso(middle)}'"), True)[1])
        assert len(_changes(s, clients)) == len(before) - len(late)

        report = backfill(s, BackfillOptions("orders", since_us=middle), clients)
        assert report.tables[0].rows_out == len(late)
        after = _changes(s, clients)
        assert _without(after, KINESIS) == _without(before, KINESIS)
        early = {r["event_id"]: r for r in before if r["event_time"].timestamp() * 1e6 < middle}
        assert all(r["shard_id"] == early[r["event_id"]]["shard_id"] for r in after if r["event_id"] in early)


def _iso(us: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat()


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(ConfigError, match="empty"):
        BackfillOptions("orders", since_us=2, until_us=1)


def test_per_day_backfill_of_several_days_equals_the_streamed_rows(settings: Settings) -> None:
    """Changes over three days, archived and streamed (the same records); the streamed tables
    are dropped and rebuilt one day at a time from the raw zone."""
    from lake.archive.writer import archive_records
    from lake.aws.provision import ensure_bucket, ensure_glue_database
    from lake.curate import curate
    from tests.integration.test_curate_iceberg import kinesis
    from tests.integration.test_fanout_kinesis import stream_record

    clients = Clients(settings)
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_glue_database(clients, settings.glue_database)
    records = [stream_record(i, f"K{i % 4}", new={"n": {"N": str(i)}, "half": {"N": f"{i}.5"}},
                             t=1_700_000_000 + (i % 3) * 86_400 + i) for i in range(30)]
    archived = archive_records(records, settings, clients)
    assert archived.records_archived == 30 and archived.failed == () and archived.quarantined == ()
    assert curate(settings, kinesis(records), clients).failures == []
    streamed_changes, streamed_history = _changes(settings, clients), _history(settings, clients)
    assert len({r["dt"] for r in streamed_changes}) == 3

    tables = IcebergTables(settings, clients)
    for name in ("changes", "orders_history"):
        tables.catalog.drop_table(tables.identifier(name))
    report = backfill(settings, BackfillOptions("orders", per_day=True), clients)
    assert report.tables[0].snapshots_added == 3 and report.tables[0].rows_out == 30
    assert _without(_changes(settings, clients), KINESIS) == _without(streamed_changes, KINESIS)
    assert _without(_history(settings, clients), KINESIS) == _without(streamed_history, KINESIS)
    assert not backfill(settings, BackfillOptions("orders", per_day=True), clients).changed


def test_backfill_builds_and_writes_one_chunk_at_a_time(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded memory: with chunks of 7 changes, no more than 7 changes are ever built into rows
    at once (every row building goes through RecordRows, spied on) and no data file holds more
    than 7 rows (what a write held), yet the range is one commit and equals the streamed rows."""
    from lake.archive.writer import archive_records
    from lake.aws.catalog import IcebergMaintenance
    from lake.aws.provision import ensure_bucket, ensure_glue_database
    from lake.curate import curate
    from lake.curate.consumer import RecordRows
    from lake.glue import backfill as module
    from tests.integration.test_curate_iceberg import kinesis
    from tests.integration.test_fanout_kinesis import stream_record

    clients = Clients(settings)
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_glue_database(clients, settings.glue_database)
    records = [stream_record(i, f"K{i % 9}", new={"n": {"N": str(i)}, **({"tag": {"S": f"t{i}"}} if i > 30 else {})},
                             t=1_700_000_000 + i) for i in range(50)]
    assert archive_records(records, settings, clients).records_archived == 50
    assert curate(settings, kinesis(records), clients).failures == []
    streamed_changes, streamed_history = _changes(settings, clients), _history(settings, clients)

    built: list[int] = []

    def spy(source: str, changes: Any) -> RecordRows:
        built.append(len(changes))
        return RecordRows(source, changes)

    monkeypatch.setattr(module, "RecordRows", spy)
    tables = IcebergTables(settings, clients)
    for name in ("changes", "orders_history"):
        tables.catalog.drop_table(tables.identifier(name))
    report = backfill(settings, BackfillOptions("orders", chunk_rows=7), clients)
    assert built and max(built) == 7 and sum(built) % 50 == 0  # each pass over the raw zone: 50 changes
    assert [t.rows_out for t in report.tables] == [50, 50]
    maintenance = IcebergMaintenance(tables)
    for name in ("changes", "orders_history"):
        files = maintenance.data_files(tables.load(name))
        assert len(files) >= 8 and max(f.records for f in files) <= 7, (name, [f.records for f in files])
    assert _without(_changes(settings, clients), KINESIS) == _without(streamed_changes, KINESIS)
    assert _without(_history(settings, clients), KINESIS) == _without(streamed_history, KINESIS)

    built.clear()
    again = backfill(settings, BackfillOptions("orders", chunk_rows=7), clients)
    assert not again.changed and max(built) == 7  # fingerprinted in chunks: nothing held whole


def _process_map(fn: Any, units: Any) -> list[Any]:
    """Each unit in another process, sent and returned pickled (as to a Spark executor): a
    worker gets nothing from the driver but its unit. (Forked, not spawned: the same proof at a
    fraction of the start-up.)"""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(fn, units))


def test_distributed_backfill_on_worker_processes_equals_the_streamed_rows(settings: Settings) -> None:
    """The rows built and written by workers (one unit per stream shard: here two streams of the
    table, its stream turned off and on again), committed by the driver in one transaction per
    table, equal the streamed rows; a second run changes nothing."""
    from lake.archive.writer import archive_records
    from lake.aws.catalog import IcebergMaintenance
    from lake.aws.provision import ensure_bucket, ensure_glue_database
    from lake.curate import curate
    from tests.integration.test_curate_iceberg import kinesis
    from tests.integration.test_fanout_kinesis import stream_record

    clients = Clients(settings)
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_glue_database(clients, settings.glue_database)
    nested = {"m": {"M": {"a": {"S": "x"}}}}
    records = [stream_record(i, f"K{i % 6}", new={"n": {"N": str(i)}, **(nested if i % 5 else {})},
                             t=1_700_000_000 + (i % 2) * 86_400 + i) for i in range(40)]
    for r in records[20:]:  # the second stream of the table
        r["eventSourceARN"] = r["eventSourceARN"].replace("2024-01-01T00:00:00.000", "2024-02-01T00:00:00.000")
    assert "2024-02-01" in records[-1]["eventSourceARN"]
    assert archive_records(records, settings, clients).records_archived == 40
    assert curate(settings, kinesis(records), clients).failures == []
    streamed_changes, streamed_history = _changes(settings, clients), _history(settings, clients)
    from lake.glue.distributed import local_map

    intact = backfill(settings, BackfillOptions("orders", chunk_rows=8), clients, mapper=local_map)
    assert intact.job == "backfill (distributed)" and not intact.changed, intact.lines()

    tables = IcebergTables(settings, clients)  # a day of `changes` is lost: repaired, the history untouched
    tables.transact("changes", lambda table, tx: (tx.delete("dt = '2023-11-15'"), True)[1])
    assert len(_changes(settings, clients)) == 20
    repaired = backfill(settings, BackfillOptions("orders", chunk_rows=8), clients, mapper=_process_map)
    assert repaired.tables[0].snapshots_added == 2 and repaired.tables[1].snapshots_added == 0, repaired.lines()
    # the lost day's Kinesis coordinates come back from the history, which still holds them
    assert _without(_changes(settings, clients), ()) == _without(streamed_changes, ())

    for name in ("changes", "orders_history"):
        tables.catalog.drop_table(tables.identifier(name))
    report = backfill(settings, BackfillOptions("orders", chunk_rows=8), clients, mapper=_process_map)
    assert report.job == "backfill (distributed)", report.lines()
    notes = " ".join(report.tables[0].notes)
    assert "2 unit(s)" in notes and "the most changes built at once in a unit: 8" in notes
    assert [t.rows_out for t in report.tables] == [40, 40]
    assert _without(_changes(settings, clients), KINESIS) == _without(streamed_changes, KINESIS)
    assert _without(_history(settings, clients), KINESIS) == _without(streamed_history, KINESIS)
    files = IcebergMaintenance(tables).data_files(tables.load("orders_history"))
    assert max(f.records for f in files) <= 8  # what one worker wrote at once

    again = backfill(settings, BackfillOptions("orders", chunk_rows=8), clients, mapper=local_map)
    assert not again.changed, again.lines()
