"""Issue 11, "everything is forgotten on stop": `lake up --state-dir` keeps the lake (tables, items,
streams, objects, catalog, checkpoints) across a stop and a start, and a crash loses no
acknowledged DynamoDB write (lake/local/persist.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lake.aws.catalog import IcebergTables
from lake.aws.clients import Clients
from lake.errors import ConfigError
from lake.local.persist import SNAPSHOT, StateStore, read_journal
from lake.local.up import EmbeddedLake
from lake.settings import Settings
from tests.runtime_helpers import put_items


def _lake(base: Settings, **kw: Any) -> EmbeddedLake:
    return EmbeddedLake(base, port=0, ttl_interval_s=None, poll_interval_s=0.02, persist=True,
                        snapshot_interval_s=kw.pop("snapshot_interval_s", 3600), **kw)


def _items(clients: Clients, table: str = "orders") -> list[dict[str, Any]]:
    items = clients.dynamodb.scan(TableName=table)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _objects(clients: Clients, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


def _changes(settings: Settings, clients: Clients) -> list[str]:
    rows = IcebergTables(settings, clients).scan("changes").to_pylist()
    return sorted(f"{r['table_name']}:{r['source_sequence_number']}" for r in rows)


@pytest.fixture
def base(settings: Settings, tmp_path: Path) -> Settings:
    return settings.replace(state_dir=str(tmp_path / "lake-state"), endpoint_url=None)


def test_a_stopped_lake_starts_again_with_everything_and_reprocesses_nothing(base: Settings) -> None:
    with _lake(base) as lake:
        assert lake.clients is not None
        put_items(lake.clients, 12)
        assert lake.wait_idle(60)
        items, objects = _items(lake.clients), _objects(lake.clients, lake.settings.bucket)
        changes = _changes(lake.settings, lake.clients)
    assert len(changes) == 12 and len(items) == 12
    assert (Path(base.state_dir) / "aws" / SNAPSHOT).is_file()

    with _lake(base) as lake:
        assert lake.clients is not None
        assert lake.aws.restored["from_snapshot"]
        assert _items(lake.clients) == items
        assert lake.wait_idle(60)
        # the checkpoints came back with the state: nothing was read or written again
        assert _objects(lake.clients, lake.settings.bucket) == objects
        assert _changes(lake.settings, lake.clients) == changes
        put_items(lake.clients, 5, start=100)
        assert lake.wait_idle(60)
        after = _changes(lake.settings, lake.clients)
    assert len(after) == 17 and len(set(after)) == 17 and set(changes) <= set(after)


def test_after_a_crash_the_journal_brings_back_every_acknowledged_write(base: Settings) -> None:
    """A crash (no final snapshot): the writes after the last snapshot are in the journal, applied
    again on restore, and the pipeline catches up from the snapshot's checkpoints."""
    lake = _lake(base)
    lake.start()
    assert lake.clients is not None and lake.state is not None
    put_items(lake.clients, 6)
    assert lake.wait_idle(60)
    lake.state.snapshot()  # the last snapshot before the crash
    put_items(lake.clients, 7, start=50)
    lake.clients.dynamodb.delete_item(TableName="orders", Key={"pk": {"S": "item-0000"}, "sk": {"S": "0"}})
    assert lake.wait_idle(60)  # processed, but none of it is in the snapshot
    expected = _items(lake.clients)
    journal = sorted((Path(base.state_dir) / "aws").glob("journal-*.log"))
    assert sum(1 for f in journal for _ in read_journal(f)) == 7 + 1  # 7 PutItem and the DeleteItem
    # the crash: threads and server go, nothing is saved
    lake.runtime.stop()
    lake.aws.state = None
    lake.stop()

    with _lake(base) as again:
        assert again.clients is not None
        assert again.aws.restored["journaled_writes"] == 8
        assert _items(again.clients) == expected
        assert again.wait_idle(60)
        changes = _changes(again.settings, again.clients)
    # every change once: 6 + 7 inserts and 1 remove
    assert len(changes) == 14 and len(set(changes)) == 14


def test_the_ephemeral_lake_keeps_nothing(base: Settings) -> None:
    with EmbeddedLake(base, port=0, ttl_interval_s=None, poll_interval_s=0.02) as lake:
        assert lake.clients is not None
        put_items(lake.clients, 2)
    assert not (Path(base.state_dir) / "aws").exists()


def test_a_state_written_by_another_moto_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    import pickle

    root = tmp_path / "aws"
    root.mkdir()
    (root / SNAPSHOT).write_bytes(pickle.dumps({"format": 1, "moto": "0.0.1", "services": {}}))
    with pytest.raises(ConfigError, match=r"moto 0\.0\.1"):
        StateStore(root).restore(app=None, endpoint_host="localhost")
