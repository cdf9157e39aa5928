"""`compact` and `current_state` on their Athena path (docs/adr/0004), without Athena.

`current_state --engine athena`: its statements run through a stand-in for Athena
(:class:`DuckAthena`) that validates each one, runs it on DuckDB over the lake's Iceberg
tables as they are when it starts, and writes its
effect back to the Iceberg table. So the very SQL the job would send to Athena is what
makes ``<table>_current`` here, and it must equal the live DynamoDB table item by item,
after a workload and again incrementally after more changes, and resolve late changes and
deletes as the local path does.

`compact --engine athena`: OPTIMIZE and VACUUM cannot run on DuckDB, so the job runs through
the real door (:class:`AthenaStatements`) on a botocore Stubber that expects exactly the
statements of the partitions holding small files, in order, in the lake's workgroup."""

from __future__ import annotations

import itertools
import time
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pytest
from botocore.stub import ANY, Stubber
from sqlglot import exp

from lake.aws.catalog import IcebergMaintenance, IcebergTables
from lake.aws.clients import Clients
from lake.curate import curate
from lake.curate.names import current_table, history_table
from lake.errors import QueryError
from lake.glue.athena import AthenaStatements, compact_on_athena, current_on_athena, validate
from lake.glue.current import WATERMARK, as_of_table
from lake.local.up import EmbeddedLake
from lake.settings import Settings
from tests.integration.test_curate_iceberg import kinesis, lake  # noqa: F401  (fixture)
from tests.integration.test_fanout_kinesis import stream_record
from tests.integration.test_glue_compact import BATCHES, _fill
from tests.integration.test_glue_current import _run, current_items, diff, live_items


def _naive(t: pa.DataType) -> pa.DataType:
    return pa.timestamp(t.unit) if pa.types.is_timestamp(t) and t.tz is not None else t


class DuckAthena:
    """Athena's stand-in: each statement validated, then run on DuckDB over the Iceberg tables it
    names, loaded as they are when it starts (timestamps as Athena shows them: UTC, no zone).
    A MERGE's target is written back in one commit; a CREATE TABLE AS creates the Iceberg table.
    ALTER … SET TBLPROPERTIES sets the properties; OPTIMIZE and VACUUM are only recorded."""

    def __init__(self, settings: Settings, clients: Clients) -> None:
        self.database = settings.glue_database
        self.tables = IcebergTables(settings, clients)
        self.maintenance = IcebergMaintenance(self.tables)
        self.statements: list[str] = []

    def run(self, sql: str) -> str:
        tree = validate(sql)
        self.statements.append(sql)
        qid = f"duck-{len(self.statements)}"
        if isinstance(tree, exp.Command):
            return qid
        if isinstance(tree, exp.Alter):
            props = {p.name: p.args["value"].name for p in tree.find_all(exp.Property)}
            self.tables.transact(tree.this.name, lambda c, tx: (tx.set_properties(props), True)[1])
            return qid
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f'CREATE SCHEMA "{self.database}"')
        for name in {t.name for t in tree.find_all(exp.Table) if t.db == self.database}:
            self._load(con, name)
        if isinstance(tree, exp.Merge):
            con.execute(tree.sql(dialect="duckdb"))
            self._write_back(con, tree.this.name)
        elif isinstance(tree, exp.Create):
            result = con.sql(tree.expression.sql(dialect="duckdb")).to_arrow_table()
            self._create(tree.this.name, result)
        else:
            raise AssertionError(f"the jobs send no {type(tree).__name__} to Athena")
        return qid

    def _load(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        table = self.tables.find(name)
        if table is None:
            return
        schema = pa.schema([f.with_type(_naive(f.type)) for f in table.schema().as_arrow()])
        parts = [pa.Table.from_batches([b]).cast(schema)
                 for ref in self.maintenance.data_files(table) for b in self.maintenance.read(table, [ref])]
        data = pa.concat_tables(parts) if parts else schema.empty_table()
        con.register("loaded", data)
        con.execute(f'CREATE TABLE "{self.database}"."{name}" AS SELECT * FROM loaded')
        con.unregister("loaded")

    def _write_back(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        from pyiceberg.expressions import AlwaysTrue

        result = con.sql(f'SELECT * FROM "{self.database}"."{name}"').to_arrow_table()
        table = self.tables.load(name)
        rows = result.cast(pa.schema([f for f in table.schema().as_arrow() if f.name in result.column_names]))

        def stage(c: Any, tx: Any) -> bool:
            tx.delete(AlwaysTrue())
            if rows.num_rows:
                tx.append(rows)
            return True

        self.tables.transact(name, stage)

    def _create(self, name: str, result: pa.Table) -> None:
        if self.tables.find(name) is not None:
            raise QueryError(f"TABLE_ALREADY_EXISTS: {name}")
        schema = pa.schema([f.with_type(pa.timestamp(f.type.unit, "UTC")) if pa.types.is_timestamp(f.type) else f
                            for f in result.schema])
        self.tables.ensure(name, schema, [], source=None, kind="current")
        if result.num_rows:
            def stage(c: Any, tx: Any) -> bool:
                tx.append(result.cast(schema))
                return True

            self.tables.transact(name, stage)


def test_current_state_on_athena_equals_the_live_table_then_incrementally(settings: Settings) -> None:
    with EmbeddedLake(settings.replace(source_tables=("orders:pk:sk",)), port=0, ttl_interval_s=None,
                      poll_interval_s=0.02) as embedded:
        s, clients = embedded.settings, embedded.clients
        assert clients is not None
        athena = DuckAthena(s, clients)
        _run(embedded, 300, seed=11)
        first = current_on_athena(s, [], None, None, False, clients, runner=athena)
        assert [type(validate(q)).__name__ for q in athena.statements] == ["Create"]
        live = live_items(clients, "orders")
        assert len(live) > 20
        assert diff(current_items(s, clients, "orders_current"), live) == []
        assert "full" in " ".join(first.tables[0].notes)
        time.sleep(1.1)  # event times have a resolution of a second: the as-of instant is between
        instant_us = int(time.time() * 1e6)
        kept = live
        time.sleep(1.1)

        _run(embedded, 200, seed=12)
        assert live_items(clients, "orders") != kept
        athena.statements.clear()
        second = current_on_athena(s, [], None, None, False, clients, runner=athena)
        (merge,) = athena.statements
        assert isinstance(validate(merge), exp.Merge) and '"dt" IN (' in merge
        assert "incremental" in " ".join(second.tables[0].notes) and second.tables[0].files_in > 0
        assert diff(current_items(s, clients, "orders_current"), live_items(clients, "orders")) == []
        tables = IcebergTables(s, clients)
        head = tables.load(history_table("orders")).current_snapshot()
        assert head is not None and tables.load("orders_current").properties[WATERMARK] == str(head.snapshot_id)

        athena.statements.clear()
        again = current_on_athena(s, [], None, None, False, clients, runner=athena)
        assert athena.statements == [] and "up to date" in " ".join(again.tables[0].notes)

        as_of = current_on_athena(s, ["orders"], instant_us, None, False, clients, runner=athena)
        name = as_of_table("orders", instant_us)
        assert as_of.tables[0].table == name
        assert diff(current_items(s, clients, name), kept) == []


def test_on_athena_a_late_older_change_never_revives_a_deleted_item(lake: Settings,  # noqa: F811
                                                                    clients: Clients) -> None:
    athena = DuckAthena(lake, clients)
    t = 1_700_000_000
    batch1 = [stream_record(1, "A", new={"v": {"S": "a1"}}, t=t), stream_record(2, "A", new={"v": {"S": "a2"}}, t=t),
              stream_record(3, "B", new={"v": {"S": "b1"}}, t=t),
              stream_record(4, "B", event="REMOVE", old={"pk": {"S": "B"}}, t=t + 5)]
    assert curate(lake, kinesis(batch1), clients).failures == []
    current_on_athena(lake, [], None, None, False, clients, runner=athena)
    got = current_items(lake, clients, current_table("orders"))
    assert got.keys() == {"pk=A|sk=0"} and got["pk=A|sk=0"]["v"] == "a2"  # same second: the later sequence

    late = [stream_record(5, "B", new={"v": {"S": "b-late"}}, t=t + 1),
            stream_record(6, "C", new={"v": {"S": "c1"}, "extra": {"N": "7"}}, t=t + 2)]  # a new column too
    assert curate(lake, kinesis(late, first=10), clients).failures == []
    ttl = stream_record(7, "A", event="REMOVE", old={"pk": {"S": "A"}}, t=t + 9)
    ttl["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert curate(lake, kinesis([ttl], first=20), clients).failures == []
    report = current_on_athena(lake, [], None, None, False, clients, runner=athena)
    assert "incremental" in " ".join(report.tables[0].notes)
    got = current_items(lake, clients, current_table("orders"))
    assert got.keys() == {"pk=C|sk=0"}, got  # B stays deleted, A's TTL delete applies
    assert (got["pk=C|sk=0"]["v"], got["pk=C|sk=0"]["extra"]) == ("c1", 7)  # the new column merged

    athena.statements.clear()
    full = current_on_athena(lake, ["orders"], None, None, False, clients, runner=athena, full=True)
    assert "full" in " ".join(full.tables[0].notes) and '"dt" IN' not in athena.statements[0]
    assert current_items(lake, clients, current_table("orders")) == got


def _stubbed_door(settings: Settings) -> tuple[AthenaStatements, Stubber]:
    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    door = AthenaStatements(client, settings.glue_database, "lake-wg", settings.athena_output_location,
                            sleep=lambda _: None)
    return door, Stubber(client)


def _expect(stub: Stubber, qids: Any, sql: str, states: tuple[str, ...] = ("RUNNING", "SUCCEEDED")) -> None:
    qid = next(qids)
    stub.add_response("start_query_execution", {"QueryExecutionId": qid},
                      {"QueryString": sql, "QueryExecutionContext": {"Database": "dynamodb_lake"},
                       "WorkGroup": "lake-wg", "ResultConfiguration": ANY})
    for state in states:
        stub.add_response("get_query_execution", {"QueryExecution": {"QueryExecutionId": qid, "Status": {
            "State": state, **({"StateChangeReason": "ICEBERG_OPTIMIZE_MORE_RUNS_NEEDED: ran out of time"}
                               if state == "FAILED" else {})}}}, {"QueryExecutionId": qid})


def test_compact_on_athena_sends_exactly_the_planned_statements(lake: Settings, clients: Clients) -> None:  # noqa: F811
    _fill(lake, clients)  # BATCHES small files in each of two days
    name = history_table("orders")
    tables = IcebergTables(lake, clients)
    files = IcebergMaintenance(tables).data_files(tables.load(name))
    days = sorted({dict(f.partition)["dt"] for f in files})
    assert len(files) == 2 * BATCHES and len(days) == 2
    door, stub = _stubbed_door(lake)
    qids = (f"q{i}" for i in itertools.count())
    ref = f'"dynamodb_lake"."{name}"'
    _expect(stub, qids, f"ALTER TABLE {ref} SET TBLPROPERTIES ('write_target_data_file_size_bytes'='67108864', "
                        "'vacuum_max_snapshot_age_seconds'='172800')")
    for day in days:
        _expect(stub, qids, f"OPTIMIZE {ref} REWRITE DATA USING BIN_PACK WHERE \"dt\" = '{day}'",
                ("QUEUED", "RUNNING", "SUCCEEDED"))
    _expect(stub, qids, f"VACUUM {ref}")
    with stub:
        report = compact_on_athena(lake, [name], 64 * 1024 * 1024, 2 * 86_400, False, clients, runner=door)
    stub.assert_no_pending_responses()
    assert report.tables[0].files_in == 2 * BATCHES
    assert "Athena query ids: q0, q1, q2, q3" in report.tables[0].notes

    # the properties as Athena would have set them: a second run does not set them again, and a
    # failed OPTIMIZE stops the job with Athena's reason (VACUUM is not sent)
    tables.transact(name, lambda c, tx: (tx.set_properties({"write_target_data_file_size_bytes": "67108864",
                                                             "vacuum_max_snapshot_age_seconds": "172800"}), True)[1])
    door, stub = _stubbed_door(lake)
    _expect(stub, qids, f"OPTIMIZE {ref} REWRITE DATA USING BIN_PACK WHERE \"dt\" = '{days[0]}'",
            ("RUNNING", "FAILED"))
    with stub, pytest.raises(QueryError, match="ICEBERG_OPTIMIZE_MORE_RUNS_NEEDED: ran out of time"):
        compact_on_athena(lake, [name], 64 * 1024 * 1024, 2 * 86_400, False, clients, runner=door)
    stub.assert_no_pending_responses()
