"""`bootstrap` on the embedded AWS (issue 12): a table whose items were written before its
stream existed is exported and loaded, and `<table>_current` then equals the table; point-in-
time recovery off is said clearly; loading twice adds nothing."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from lake.aws.catalog import IcebergTables
from lake.aws.provision import ensure_table
from lake.errors import ConfigError
from lake.glue.bootstrap import BootstrapOptions, bootstrap
from lake.glue.current import CurrentOptions, current_state
from lake.glue.export import FULL_SHARD
from lake.local.up import EmbeddedLake, TableWatcher
from lake.settings import Settings, TableSpec
from tests.integration.test_glue_current import current_items, diff, live_items


def _item(i: int, version: int) -> dict:
    return {"pk": {"S": f"item-{i:03d}"}, "version": {"N": str(version)}, "name": {"S": f"n{i}"},
            "price": {"N": f"{i}.25"}, "tags": {"SS": ["a", f"t{i % 3}"]}}


def test_items_older_than_the_stream_reach_current_state(settings: Settings) -> None:
    with EmbeddedLake(settings, port=0, ttl_interval_s=None, poll_interval_s=0.02) as embedded:
        s, clients = embedded.settings, embedded.clients
        assert clients is not None
        ddb = clients.dynamodb
        ddb.create_table(TableName="legacy", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        for i in range(40):  # before any stream: no change record of these exists
            ddb.put_item(TableName="legacy", Item=_item(i, 1))

        watcher = TableWatcher(embedded, interval_s=3600)
        watcher.start()
        try:
            ensure_table(clients, TableSpec("legacy"))  # the stream is turned on now
            assert watcher.poll() == ["legacy"]
            for i in range(0, 10):
                ddb.put_item(TableName="legacy", Item=_item(i, 2))
            for i in range(10, 15):
                ddb.delete_item(TableName="legacy", Key={"pk": {"S": f"item-{i:03d}"}})
            ddb.put_item(TableName="legacy", Item=_item(100, 1))
            assert embedded.wait_idle(60)

            current_state(s, CurrentOptions(tables=("legacy",)), clients)
            streamed_only = current_items(s, clients, "legacy_current")
            assert len(streamed_only) == 11  # only what the stream carried
            assert len(live_items(clients, "legacy")) == 36

            with pytest.raises(ConfigError, match="point-in-time recovery"):
                bootstrap(s, BootstrapOptions("legacy"), clients)
            ddb.update_continuous_backups(TableName="legacy", PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True})

            report = bootstrap(s, BootstrapOptions("legacy"), clients)
            assert report.tables[0].rows_in == 36 and report.tables[0].rows_out == 36
            changes = IcebergTables(s, clients).scan("changes")
            exported = changes.filter(pc.equal(changes.column("shard_id"), FULL_SHARD))
            assert exported.num_rows == 36 and set(exported.column("event_name").to_pylist()) == {"INSERT"}
            assert all(e.startswith("export:") for e in exported.column("event_id").to_pylist())

            current_state(s, CurrentOptions(tables=("legacy",)), clients)
            assert diff(current_items(s, clients, "legacy_current"), live_items(clients, "legacy")) == []

            # changes after the export win over it; a second load adds nothing
            ddb.put_item(TableName="legacy", Item=_item(20, 3))
            ddb.delete_item(TableName="legacy", Key={"pk": {"S": "item-021"}})
            assert embedded.wait_idle(60)
            again = bootstrap(s, BootstrapOptions("legacy", source=_export_url(s)), clients)
            assert again.tables[0].rows_out == 0
            current_state(s, CurrentOptions(tables=("legacy",)), clients)
            assert diff(current_items(s, clients, "legacy_current"), live_items(clients, "legacy")) == []
        finally:
            watcher.stop()


def _export_url(s: Settings) -> str:
    """The first export's folder (each bootstrap exports under its own prefix)."""
    from lake.aws.clients import Clients

    store = Clients(s).store(s.bucket)
    key = next(k for k in store.list(f"{s.zone_prefix('exports')}legacy/") if "/data/" in k)
    return f"s3://{s.bucket}/{key.split('/data/')[0]}"


def _aws_export(s: Settings, files: int, per_file: int) -> str:
    """An export as AWS writes it (manifest-summary.json, manifest-files.json, several
    data/*.json.gz), items of mixed types; its folder's URL."""
    import gzip
    import json

    from lake.aws.clients import Clients

    store = Clients(s).store(s.bucket)
    folder = f"{s.zone_prefix('exports')}legacy/AWSDynamoDB/01700000000000-abcdef01"
    manifest = []
    for f in range(files):
        items = []
        for j in range(per_file):
            i = f * per_file + j
            item = _item(i, 1)
            if i % 4 == 0:
                item["doc"] = {"M": {"a": {"L": [{"N": "1"}, {"S": "x"}]}, "b": {"BOOL": True}}}
            if i % 7 == 0:
                item["price"] = {"N": "12345678901234567890.5"}  # wider than the other prices
            item["qty"] = {"N": str(i) if f == 0 else f"{i}.5"}  # whole in one file: two units, two types
            items.append(json.dumps({"Item": item}))
        key = f"{folder}/data/file{f}.json.gz"
        store.put(key, gzip.compress("\n".join(items).encode()))
        manifest.append(json.dumps({"itemCount": per_file, "dataFileS3Key": key}))
    store.put(f"{folder}/manifest-files.json", "\n".join(manifest).encode())
    store.put(f"{folder}/manifest-summary.json", json.dumps({
        "exportArn": "arn:aws:dynamodb:us-east-1:123456789012:table/legacy/export/01700000000000-abcdef01",
        "exportTime": "2024-01-01T00:00:00Z", "exportType": "FULL_EXPORT", "itemCount": files * per_file,
        "manifestFilesS3Key": f"{folder}/manifest-files.json"}).encode())
    return f"s3://{s.bucket}/{folder}"


def test_distributed_bootstrap_loads_the_rows_the_one_process_load_makes(settings: Settings) -> None:
    """An AWS-layout export of three data files loaded by worker processes (one unit per file)
    into one database and in this process into another: the same `changes` rows and history
    values; a second distributed load adds nothing."""
    from lake.aws.clients import Clients
    from lake.aws.provision import ensure_bucket, ensure_glue_database
    from lake.glue.distributed import local_map
    from tests.integration.test_glue_backfill import _process_map, _without

    clients = Clients(settings)
    ensure_bucket(clients, settings.bucket, settings.region)
    clients.dynamodb.create_table(TableName="legacy", BillingMode="PAY_PER_REQUEST",
                                  AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                                  KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    url = _aws_export(settings, files=3, per_file=12)
    one, spread = settings.replace(glue_database="one_process"), settings.replace(glue_database="spread")
    for s in (one, spread):
        ensure_glue_database(clients, s.glue_database)
    local = bootstrap(one, BootstrapOptions("legacy", source=url), clients)
    report = bootstrap(spread, BootstrapOptions("legacy", source=url), clients, mapper=_process_map)
    assert report.job == "bootstrap (distributed)" and "3 unit(s)" in " ".join(report.tables[0].notes)
    assert [t.rows_out for t in report.tables] == [t.rows_out for t in local.tables] == [36, 36]

    def rows(s: Settings, name: str) -> list[dict]:
        return IcebergTables(s, clients).scan(name).to_pylist()

    assert _without(rows(spread, "changes"), ()) == _without(rows(one, "changes"), ())
    assert _values(spread, clients) == _values(one, clients)

    again = bootstrap(spread, BootstrapOptions("legacy", source=url), clients, mapper=local_map)
    assert [t.rows_out for t in again.tables] == [0, 0] and not again.changed


def _values(s: Settings, clients: object) -> dict[str, dict]:
    """event id → the history row as the item's attribute values (column layout aside)."""
    from tests.integration.test_glue_current import _from_row

    tables = IcebergTables(s, clients)  # type: ignore[arg-type]
    table = tables.load("legacy_history")
    return {r["event_id"]: _from_row(r, dict(table.properties)) for r in tables.scan("legacy_history").to_pylist()}
