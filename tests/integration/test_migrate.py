"""``lake migrate`` on the embedded AWS: a lake as the previous version wrote it (hive-partitioned
Parquet without the partition columns in the files, Hive tables in Glue) becomes the Iceberg
tables, its files registered as they are; what needs a rewrite is rewritten, what cannot be
registered is said; a second run and a dry run change nothing; the consumer appends after it."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lake.aws.catalog import IcebergTables
from lake.aws.clients import Clients
from lake.aws.provision import ensure_bucket, ensure_glue_database
from lake.aws.storage import s3_filesystem
from lake.cli import main
from lake.curate import curate
from lake.curate.commit import days
from lake.curate.consumer import CurateResult, convert_batch
from lake.curate.evolve import ATTRIBUTE_PROPERTY, DYNAMODB_TYPE_PROPERTY
from lake.curate.migrate import BACKUP_SUFFIX, STATE, Migration, migrate, old_history_name
from lake.curate.names import history_table
from lake.curate.tables import HISTORY_META_GLUE, HistorySchema
from lake.errors import TransientError
from lake.query.local import LocalEngine
from lake.settings import Settings
from tests.integration.test_query_pipeline import kinesis_event
from tests.synthetic import Delivered, curated_table, generate, register_changes, write_lake

PARQUET_SD = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                  "Parameters": {"serialization.format": "1"}},
}


# -- the previous version's lake ---------------------------------------------------------

def write_old_history(settings: Settings, clients: Clients, deliveries: Sequence[Delivered],
                      rows_per_file: int = 25) -> dict[str, dict[str, Any]]:
    """``<glue_name(t)>_history`` as the previous version wrote it: the current conversion's
    history rows (its type rules are the previous version's), in files per ``dt`` without the
    ``dt`` column, and a Hive table whose columns carry ``attribute <name> (<type>)``."""
    fs = s3_filesystem(settings)
    catalog = clients.catalog(settings.glue_database)
    out: dict[str, dict[str, Any]] = {}
    parts = convert_batch(settings, clients, kinesis_event(deliveries), CurateResult())
    for i, part in enumerate(parts):
        name = old_history_name(part.source)
        # Orders and orders shared one table (and its columns) in the previous version
        known = out.get(name, {}).get("schema", HistorySchema())
        batch = part.history(known)
        rows = batch.table
        base = f"{settings.bucket}/{settings.zone_prefix('curated')}{name}"
        dts = days(rows.column("event_time"))
        partitions = sorted(set(dts.to_pylist()) | set(out.get(name, {}).get("partitions", [])))
        for d in sorted(set(dts.to_pylist())):
            group = rows.filter(pc.equal(dts, d))
            for n, offset in enumerate(range(0, group.num_rows, rows_per_file)):
                pq.write_table(group.slice(offset, rows_per_file),
                               f"{base}/dt={d}/shardId-00000000000{i}-{offset:08d}-{n}.parquet", filesystem=fs)
        columns: list[dict[str, Any]] = [{"Name": n, "Type": t} for n, t in HISTORY_META_GLUE.items()]
        for c in batch.schema.columns.values():
            columns.append({"Name": c.name, "Type": c.type.glue, "Comment": f"attribute {c.attribute} ({c.type.ddb})",
                            "Parameters": {"dynamodb.attribute": c.attribute, "dynamodb.type": c.type.ddb}})
        storage = {"Columns": columns, "Location": f"s3://{base}/", **PARQUET_SD}
        catalog.put_table({"Name": name, "TableType": "EXTERNAL_TABLE",
                           "Description": f"typed change history of DynamoDB table {part.source}",
                           "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
                           "PartitionKeys": [{"Name": "dt", "Type": "string"}], "StorageDescriptor": storage})
        catalog.add_partitions(name, [{"Values": [d], "StorageDescriptor": {**storage, "Location": f"s3://{base}/dt={d}/"}}
                                      for d in partitions])
        out[name] = {"source": part.source, "columns": {c.name: c for c in batch.schema.columns.values()},
                     "schema": batch.schema, "partitions": partitions}
    return out


def old_lake(settings: Settings, clients: Clients, deliveries: Sequence[Delivered]) -> dict[str, dict[str, Any]]:
    ensure_bucket(clients, settings.bucket, settings.region)
    ensure_glue_database(clients, settings.glue_database)
    base = f"{settings.bucket}/{settings.zone_prefix('curated')}changes"
    parts = write_lake(curated_table(deliveries), s3_filesystem(settings), base, "batch-a", rows_per_file=30)
    register_changes(clients.catalog(settings.glue_database), f"s3://{base}/",
                     sorted({(p.split("table_name=")[1].split("/")[0], p.split("dt=")[1]) for p in parts}))
    return write_old_history(settings, clients, deliveries)


def objects(clients: Clients, settings: Settings) -> dict[str, str]:
    """Every object of the bucket → its ETag."""
    out = {}
    for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return out


def catalog_state(clients: Clients, settings: Settings) -> dict[str, Any]:
    """Every Glue table's name → what a change would alter (Iceberg: its metadata location)."""
    tables = clients.glue.get_tables(DatabaseName=settings.glue_database)["TableList"]
    return {t["Name"]: (t.get("Parameters"), t.get("StorageDescriptor", {}).get("Columns"), t.get("PartitionKeys"))
            for t in tables}


def state(clients: Clients, settings: Settings) -> tuple[dict[str, str], dict[str, Any]]:
    return objects(clients, settings), catalog_state(clients, settings)


def data_files(settings: Settings, clients: Clients, table: str) -> set[str]:
    return {t.file.file_path for t in IcebergTables(settings, clients).load(table).scan().plan_files()}


def query(settings: Settings, clients: Clients, sql: str) -> list[dict[str, Any]]:
    return LocalEngine(settings, clients).query(sql).to_pylist()


def history_sql(table: str) -> str:
    return f"SELECT * FROM {table} ORDER BY event_id"


def same_rows(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    """Equal rows; a column the old table had is in the new one with the same values."""
    assert len(after) == len(before)
    for b, a in zip(before, after, strict=True):
        assert {k: a.get(k) for k in b} == b


@pytest.fixture
def workload() -> list[Delivered]:
    return generate(240, tables=("orders", "users", "Inventory.v2"), seed=31)


# -- the promises ----------------------------------------------------------------------------

def test_migrate_registers_the_old_files_as_they_are(settings: Settings, clients: Clients,
                                                     workload: list[Delivered]) -> None:
    old = old_lake(settings, clients, workload)
    assert set(old) == {"orders_history", "users_history", "inventory_v2_history"}
    changes_sql = ("SELECT event_id, event_name, event_time, sequence_number, shard_id, keys, key, new_image, "
                   "old_image, changed_attributes, is_ttl_delete, size_bytes, table_name, dt FROM changes "
                   "ORDER BY event_id")
    before_changes = query(settings, clients, changes_sql)
    before_history = {name: query(settings, clients, history_sql(name)) for name in old}
    per_day = query(settings, clients, "SELECT table_name, dt, count(*) AS n FROM changes "
                                       "WHERE dt = '2024-05-02' GROUP BY 1, 2 ORDER BY 1, 2")
    old_objects = objects(clients, settings)
    parquet = {k for k in old_objects if k.endswith(".parquet")}

    # a dry run reads and plans, and changes nothing
    dry_before = state(clients, settings)
    plan = migrate(settings, clients, dry_run=True)
    assert state(clients, settings) == dry_before
    assert [t.status for t in plan.tables] == ["planned"] * 4
    assert sum(t.registered for t in plan.tables) == len(parquet)
    assert all(not t.rewrites and not t.unregistered for t in plan.tables), plan.to_dict()

    report = migrate(settings, clients)
    assert report.ok, report.to_dict()
    by_old = {t.old: t for t in report.tables}
    assert by_old["changes"].registered_rows == len(workload)
    assert sum(t.registered for t in report.tables) == len(parquet)
    assert all(t.rewritten == 0 and not t.unregistered for t in report.tables)
    inventory = history_table("Inventory.v2")
    assert inventory != "inventory_v2_history"  # a non-plain source table gets its collision-free name
    assert by_old["inventory_v2_history"].targets == [inventory]

    # the Iceberg tables hold the original objects, untouched: same keys, same ETags, nothing new but metadata
    after_objects = objects(clients, settings)
    assert {k: v for k, v in after_objects.items() if k in old_objects} == old_objects
    assert all("/metadata/" in k for k in set(after_objects) - set(old_objects))
    registered = set().union(*(data_files(settings, clients, t) for t in ("changes", "orders_history",
                                                                        "users_history", inventory)))
    assert registered == {f"s3://{settings.bucket}/{k}" for k in parquet}

    # the old Hive definitions are kept, done; the names hold Iceberg tables now
    glue = catalog_state(clients, settings)
    for name in old | {"changes": None}:
        params = glue[name + BACKUP_SUFFIX][0]
        assert params[STATE] == "done"
    assert "inventory_v2_history" not in glue  # its name was not kept: the backup holds it
    tables = IcebergTables(settings, clients)
    for name in ("changes", "orders_history", "users_history", inventory):
        assert tables.load(name).properties.get("lake.table-kind") in ("changes", "history")

    # same rows through pyiceberg and through lake query, partition columns from the paths
    assert tables.scan("changes").num_rows == len(workload)
    assert query(settings, clients, changes_sql) == before_changes
    assert query(settings, clients, "SELECT table_name, dt, count(*) AS n FROM changes "
                                    "WHERE dt = '2024-05-02' GROUP BY 1, 2 ORDER BY 1, 2") == per_day
    for name, rows in before_history.items():
        new_name = history_table(old[name]["source"])
        same_rows(rows, query(settings, clients, history_sql(new_name)))
        assert tables.scan(new_name).num_rows == len(rows)

    # each history column records its attribute and DynamoDB type as the consumer reads them
    props = tables.load("orders_history").properties
    for column in old["orders_history"]["columns"].values():
        assert props[ATTRIBUTE_PROPERTY + column.name] == column.attribute
        assert props[DYNAMODB_TYPE_PROPERTY + column.name] == column.type.ddb

    # a second run changes nothing
    again_before = state(clients, settings)
    again = migrate(settings, clients)
    assert state(clients, settings) == again_before
    assert [t.status for t in again.tables] == ["already migrated"] * 4
    assert not again.changed


def test_the_consumer_appends_to_migrated_tables(settings: Settings, clients: Clients,
                                                 workload: list[Delivered]) -> None:
    old_lake(settings, clients, workload)
    assert migrate(settings, clients).ok
    tables = IcebergTables(settings, clients)
    before = {t: tables.scan(t).num_rows for t in ("changes", "orders_history", "users_history")}

    # the old changes redelivered: every one is already there
    result = curate(settings, kinesis_event(workload[:150]), clients)
    assert result.failures == [] and result.rows == 0
    assert {t: tables.scan(t).num_rows for t in before} == before

    # new changes land beside the registered files
    fresh = generate(60, tables=("orders", "users"), seed=77)
    fresh = [Delivered({**d.record, "eventID": "new-" + d.record["eventID"]}, d.shard_id, d.sequence_number)
             for d in fresh]
    result = curate(settings, kinesis_event(fresh), clients)
    assert result.failures == []
    assert tables.scan("changes").num_rows == before["changes"] + len(fresh)
    history = sum(tables.scan(t).num_rows for t in ("orders_history", "users_history"))
    assert history == before["orders_history"] + before["users_history"] + len(fresh)
    n = query(settings, clients, "SELECT count(*) AS n FROM changes")[0]["n"]
    assert n == before["changes"] + len(fresh)


def test_files_whose_types_differ_are_rewritten_and_what_cannot_be_read_is_reported(
        settings: Settings, clients: Clients) -> None:
    workload = generate(80, tables=("orders",), seed=5)
    old = old_lake(settings, clients, workload)
    before = query(settings, clients, "SELECT event_id, qty, updated_by FROM orders_history ORDER BY event_id")
    fs = s3_filesystem(settings)
    base = f"{settings.bucket}/{settings.zone_prefix('curated')}orders_history"
    # a file the previous version's widening never reached: qty still bigint where Glue says decimal(38,18)
    catalog = clients.catalog(settings.glue_database)
    table = catalog.get_table("orders_history")
    assert table is not None
    for col in table["StorageDescriptor"]["Columns"]:
        if col["Name"] == "qty":
            assert col["Type"] == "bigint"
            col["Type"], col["Comment"], col["Parameters"] = "decimal(38,18)", "attribute qty (N)", {
                "dynamodb.attribute": "qty", "dynamodb.type": "N"}
    # and a column the catalog lost (two writers' update_table): in the files, not in Glue
    table["StorageDescriptor"]["Columns"] = [c for c in table["StorageDescriptor"]["Columns"]
                                             if c["Name"] != "updated_by"]
    catalog.put_table({k: v for k, v in table.items() if k in ("Name", "Description", "TableType", "Parameters",
                                                               "PartitionKeys", "StorageDescriptor")}, exists=True)
    keys = sorted(k for k in objects(clients, settings) if k.startswith("curated/orders_history/")
                  and k.endswith(".parquet"))
    stale = keys[0]
    for key in keys[1:]:  # the others were rewritten by the widening: qty as decimal(38,18)
        data = pq.read_table(f"{settings.bucket}/{key}", filesystem=fs)
        i = data.schema.get_field_index("qty")
        data = data.set_column(i, "qty", pc.cast(data.column(i), pa.decimal128(38, 18)))
        pq.write_table(data, f"{settings.bucket}/{key}", filesystem=fs)
    stale_rows = pq.read_table(f"{settings.bucket}/{stale}", filesystem=fs)
    clients.s3.put_object(Bucket=settings.bucket, Key=f"{base.split('/', 1)[1]}/dt=2024-05-01/garbage.parquet",
                          Body=b"not parquet at all")
    clients.s3.put_object(Bucket=settings.bucket, Key=f"{base.split('/', 1)[1]}/stray.parquet", Body=b"x")

    report = migrate(settings, clients)
    history = next(t for t in report.tables if t.old == "orders_history")
    assert history.rewritten == 1 and [r.key for r in history.rewrites] == [stale]
    assert "qty is bigint" in history.rewrites[0].reason
    assert sorted((u.key.rsplit("/", 1)[-1], u.reason.split(":")[0]) for u in history.unregistered) == [
        ("garbage.parquet", "not a Parquet file"), ("stray.parquet", "not in the layout dt=…/<file>")]
    assert not report.ok
    assert any("updated_by" in n for n in history.notes)

    files = data_files(settings, clients, "orders_history")
    assert f"s3://{settings.bucket}/{stale}" not in files  # its rows were written anew ...
    assert {f"s3://{settings.bucket}/{k}" for k in keys[1:]} <= files  # ... the others are the originals
    rows = {r["event_id"]: r for r in IcebergTables(settings, clients).scan("orders_history").to_pylist()}
    assert len(rows) == sum(1 for _ in before)
    for r in stale_rows.to_pylist():  # the bigint values, exactly, in the decimal column
        assert rows[r["event_id"]]["qty"] == (Decimal(r["qty"]) if r["qty"] is not None else None)
    after = query(settings, clients, "SELECT event_id, qty, updated_by FROM orders_history ORDER BY event_id")
    assert after == before
    assert IcebergTables(settings, clients).load("orders_history").properties[
        ATTRIBUTE_PROPERTY + "updated_by"] == "updated_by"
    assert old["orders_history"]["source"] == "orders"


def test_a_history_table_two_sources_shared_is_split_by_changes(settings: Settings, clients: Clients) -> None:
    workload = generate(90, tables=("Orders", "orders"), seed=13)
    old = old_lake(settings, clients, workload)
    assert list(old) == ["orders_history"]  # the previous version wrote both into one table
    report = migrate(settings, clients)
    assert report.ok, report.to_dict()
    shared = next(t for t in report.tables if t.old == "orders_history")
    assert sorted(shared.targets) == sorted([history_table("Orders"), "orders_history"])
    assert shared.registered == 0 and shared.rewritten > 0
    tables = IcebergTables(settings, clients)
    for source in ("Orders", "orders"):
        want = sorted(d.record["eventID"] for d in workload if d.record["eventSourceARN"].split("/")[1] == source)
        got = sorted(tables.scan(history_table(source)).column("event_id").to_pylist())
        assert got == want
        assert tables.load(history_table(source)).properties["lake.source-table"] == source
    before = state(clients, settings)
    assert not migrate(settings, clients).changed
    assert state(clients, settings) == before


def test_an_interrupted_migration_resumes(settings: Settings, clients: Clients, workload: list[Delivered],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    old_lake(settings, clients, workload)
    calls = {"n": 0}
    real = Migration.register

    def flaky(self: Migration, name: str, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if name == "users_history":
            raise TransientError("S3 went away")
        real(self, name, *args, **kwargs)

    monkeypatch.setattr(Migration, "register", flaky)
    first = migrate(settings, clients)
    users = next(t for t in first.tables if t.old == "users_history")
    assert users.status == "incomplete"
    glue = catalog_state(clients, settings)
    assert glue["users_history" + BACKUP_SUFFIX][0][STATE] == "in-progress"  # the definition is safe
    monkeypatch.setattr(Migration, "register", real)
    second = migrate(settings, clients)
    statuses = {t.old: t.status for t in second.tables}
    assert statuses["users_history"] == "migrated"
    assert statuses["changes"] == "already migrated"
    n = IcebergTables(settings, clients).scan("users_history").num_rows
    assert n == sum(1 for d in workload if d.record["eventSourceARN"].split("/")[1] == "users")


def test_the_command(settings: Settings, clients: Clients, workload: list[Delivered],
                     capsys: pytest.CaptureFixture[str]) -> None:
    old_lake(settings, clients, workload[:60])
    common = ["--endpoint-url", str(settings.endpoint_url), "--state-dir", settings.state_dir]
    assert main(["migrate", "--dry-run", *common]) == 0
    out = capsys.readouterr().out
    assert "changes → Iceberg changes: planned" in out and "dry run: nothing was changed" in out
    assert clients.catalog(settings.glue_database).get_table("changes" + BACKUP_SUFFIX) is None
    assert main(["migrate", "--no-progress", *common]) == 0
    out = capsys.readouterr().out
    assert "changes → Iceberg changes: migrated; old definition kept as changes_hive_backup" in out
    assert main(["migrate", *common]) == 0
    assert "already migrated" in capsys.readouterr().out


def test_a_remote_lake_needs_yes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["migrate", "--endpoint-url", "https://glue.example.com", "--region", "eu-west-1"]) == 2
    assert "pass --yes to confirm" in capsys.readouterr().err
