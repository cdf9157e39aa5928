"""`lake query` over Iceberg tables: current rows, partition pruning, time travel."""

from __future__ import annotations

import datetime as dt
import time

import pyarrow as pa
import pytest

from lake.aws.catalog import Append, IcebergTables
from lake.aws.clients import Clients
from lake.errors import QueryError
from lake.query.local import LocalEngine
from lake.settings import Settings

SCHEMA = pa.schema([("event_id", pa.string()), ("event_time", pa.timestamp("us", tz="UTC")),
                    ("dt", pa.string()), ("n", pa.int64())])


def batch(ids: list[str], day: str, n: int) -> pa.Table:
    t = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return pa.table({"event_id": ids, "event_time": pa.array([t] * len(ids), SCHEMA.field("event_time").type),
                     "dt": [day] * len(ids), "n": pa.array([n] * len(ids), pa.int64())})


@pytest.fixture
def lake(settings: Settings, clients: Clients) -> tuple[IcebergTables, list[int]]:
    clients.s3.create_bucket(Bucket=settings.bucket)
    tables = IcebergTables(settings, clients)
    tables.ensure("things", SCHEMA, ["dt"], source=None, kind="test")
    snapshots = []
    for i, day in enumerate(["2026-11-01", "2026-11-02", "2026-11-03"]):
        done = tables.commit("things", lambda t, day=day, i=i: Append(batch([f"{day}-a", f"{day}-b"], day, i)))
        assert done.snapshot_id is not None
        snapshots.append(done.snapshot_id)
        time.sleep(0.01)  # distinct snapshot times
    return tables, snapshots


def test_current_rows_and_a_day_filter(settings: Settings, clients: Clients, lake: tuple[IcebergTables, list[int]]
                                       ) -> None:
    engine = LocalEngine(settings, clients)
    got = engine.query("SELECT dt, count(*) AS n FROM things GROUP BY dt ORDER BY dt").to_pylist()
    assert got == [{"dt": "2026-11-01", "n": 2}, {"dt": "2026-11-02", "n": 2}, {"dt": "2026-11-03", "n": 2}]
    assert engine.query("SELECT event_id FROM things WHERE dt = '2026-11-02' ORDER BY 1").column(0).to_pylist() == [
        "2026-11-02-a", "2026-11-02-b"]


def test_a_day_filter_opens_only_that_days_files(settings: Settings, clients: Clients,
                                                 lake: tuple[IcebergTables, list[int]]) -> None:
    engine = LocalEngine(settings, clients)
    engine.query("SELECT 1 FROM things LIMIT 1")  # registers the table
    dataset = engine._iceberg_dataset("things", None)
    import pyarrow.dataset as ds

    assert len(list(dataset.get_fragments())) == 3
    assert len(list(dataset.get_fragments(filter=ds.field("dt") == "2026-11-02"))) == 1


def test_time_travel_by_version_and_by_timestamp(settings: Settings, clients: Clients,
                                                 lake: tuple[IcebergTables, list[int]]) -> None:
    tables, snapshots = lake
    engine = LocalEngine(settings, clients)
    first = engine.query(f"SELECT count(*) FROM things FOR VERSION AS OF {snapshots[0]}").column(0).to_pylist()
    assert first == [2]
    t = tables.load("things")
    second_ms = t.snapshot_by_id(snapshots[1]).timestamp_ms
    at = dt.datetime.fromtimestamp(second_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    got = engine.query(f"SELECT count(*) AS n FROM things FOR TIMESTAMP AS OF TIMESTAMP '{at} UTC' AS x "
                       "WHERE x.dt >= '2026-11-01'").column(0).to_pylist()
    assert got == [4]
    assert engine.query("SELECT count(*) FROM things").column(0).to_pylist() == [6]


def test_time_travel_before_the_first_snapshot_says_so(settings: Settings, clients: Clients,
                                                       lake: tuple[IcebergTables, list[int]]) -> None:
    engine = LocalEngine(settings, clients)
    with pytest.raises(QueryError, match="no snapshot at or before"):
        engine.query("SELECT * FROM things FOR TIMESTAMP AS OF TIMESTAMP '2000-01-01 00:00:00 UTC'")
    with pytest.raises(QueryError, match="no snapshot 42"):
        engine.query("SELECT * FROM things FOR VERSION AS OF 42")
