"""Issue 11, "wiring follows streams": the table watcher wires stream ARNs, not table names."""

from __future__ import annotations

from lake.aws.provision import ensure_table
from lake.local.up import EmbeddedLake, TableWatcher
from lake.settings import Settings, TableSpec
from tests.runtime_helpers import HANDLED, put_items


def test_a_table_deleted_and_created_again_is_wired_again_and_its_dead_stream_dropped(settings: Settings) -> None:
    HANDLED.clear()
    lake = EmbeddedLake(settings, port=0, ttl_interval_s=None, poll_interval_s=0.02,
                        extra_functions=("tests.runtime_helpers:module_handler",))
    lake.handler_processes = False  # in this process: the test reads what the handler got
    with lake:
        assert lake.clients is not None and lake.runtime is not None
        watcher = TableWatcher(lake, interval_s=3600)  # polled by hand below
        watcher.start()
        first_arn, _ = ensure_table(lake.clients, TableSpec("later"))
        assert watcher.poll() == ["later"]
        put_items(lake.clients, 1, table="later")
        assert lake.wait_idle(20)
        assert any(r["eventSourceARN"] == first_arn for e in HANDLED for r in e["Records"])

        lake.clients.dynamodb.delete_table(TableName="later")
        watcher.poll()
        assert not [m for m in lake.runtime.mappings if m.event_source_arn == first_arn]  # dropped

        second_arn, _ = ensure_table(lake.clients, TableSpec("later"))
        assert second_arn != first_arn
        assert watcher.poll() == ["later"]
        put_items(lake.clients, 1, table="later", start=1)
        assert lake.wait_idle(20)
        watcher.stop()
    assert any(r["eventSourceARN"] == second_arn for e in HANDLED for r in e["Records"])
