"""The Iceberg door on the embedded AWS: create, commit, conflicts, refusals."""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa
import pytest

from lake.aws.catalog import Append, IcebergTables
from lake.aws.clients import Clients
from lake.errors import NotFoundError, TerminalError, TransientError
from lake.settings import Settings

SCHEMA = pa.schema([("event_id", pa.string()), ("dt", pa.string()), ("a", pa.int64())])


@pytest.fixture
def tables(settings: Settings, clients: Clients) -> IcebergTables:
    clients.s3.create_bucket(Bucket=settings.bucket)
    return IcebergTables(settings, clients, sleep=lambda s: None)


def rows(ids: list[str], **extra: pa.Array) -> pa.Table:
    cols: dict[str, Any] = {"event_id": pa.array(ids, pa.string()), "dt": pa.array(["2026-11-01"] * len(ids)),
                            "a": pa.array(range(len(ids)), pa.int64())}
    cols.update(extra)
    return pa.table(cols)


def test_commit_appends_with_a_summary_and_new_columns(tables: IcebergTables) -> None:
    tables.ensure("t_history", SCHEMA, ["dt"], source="T", kind="history")
    done = tables.commit("t_history", lambda t: Append(rows(["a", "b"]), summary={"lake.shard-id": "s-1"}))
    assert done.rows == 2 and done.snapshot_id is not None and done.attempts == 1
    done = tables.commit("t_history", lambda t: Append(rows(["c"], extra=pa.array(["x"])),
                                                         add_columns={"extra": pa.string()}))
    assert done.added_columns == ("extra",)
    got = tables.scan("t_history").sort_by("event_id")
    assert got.column("event_id").to_pylist() == ["a", "b", "c"]
    assert got.column("extra").to_pylist() == [None, None, "x"]
    summaries = snapshot_summaries(tables.load("t_history"))
    assert [s.get("lake.shard-id") for s in summaries] == ["s-1", None]


def test_a_table_of_another_source_is_refused(tables: IcebergTables) -> None:
    tables.ensure("orders_history", SCHEMA, ["dt"], source="orders", kind="history")
    with pytest.raises(TerminalError, match="holds source table 'orders'"):
        tables.ensure("orders_history", SCHEMA, ["dt"], source="Orders", kind="history")


def test_a_missing_table_is_not_found(tables: IcebergTables) -> None:
    with pytest.raises(NotFoundError):
        tables.load("nope")
    assert tables.find("nope") is None


def _conflict_on(clients: Clients, times: int) -> list[int]:
    """Make Glue refuse the next ``times`` UpdateTable calls as AWS does on a stale VersionId."""
    seen = [0]
    glue = clients.client("glue", one_attempt=True)  # the client pyiceberg commits through

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if seen[0] < times:
            seen[0] += 1
            error = {"Code": "ConcurrentModificationException", "Message": "concurrent modifications"}
            raise glue.exceptions.ConcurrentModificationException({"Error": error}, "UpdateTable")

    glue.meta.events.register("before-call.glue.UpdateTable", refuse)
    return seen


def test_a_conflicting_commit_is_replanned_against_the_new_table(tables: IcebergTables, clients: Clients) -> None:
    tables.ensure("t_history", SCHEMA, ["dt"], source="T", kind="history")
    seen = _conflict_on(clients, 6)  # more than pyiceberg's own retries: our loop must re-plan
    plans: list[int] = []

    def plan(table: Any) -> Append:
        plans.append(len(table.schema().fields))
        return Append(rows(["a"], extra=pa.array(["x"])), add_columns={"extra": pa.string()})

    done = tables.commit("t_history", plan)
    assert seen[0] == 6 and len(plans) >= 2 and done.attempts == len(plans)
    assert tables.scan("t_history").num_rows == 1


def test_a_commit_that_never_gets_through_is_transient(settings: Settings, clients: Clients) -> None:
    clients.s3.create_bucket(Bucket=settings.bucket)
    tables = IcebergTables(settings, clients, max_attempts=2, sleep=lambda s: None)
    tables.ensure("t_history", SCHEMA, ["dt"], source="T", kind="history")
    _conflict_on(clients, 1000)
    with pytest.raises(TransientError, match="conflict"):
        tables.commit("t_history", lambda t: Append(rows(["a"])))
    clients.client("glue", one_attempt=True).meta.events.unregister("before-call.glue.UpdateTable")


def test_concurrent_writers_lose_no_row_and_no_column(settings: Settings, clients: Clients) -> None:
    clients.s3.create_bucket(Bucket=settings.bucket)
    IcebergTables(settings, clients).ensure("t_history", SCHEMA, ["dt"], source="T", kind="history")
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        tables = IcebergTables(settings, Clients(settings))  # one process per shard on AWS
        try:
            for b in range(3):
                ids = [f"w{w}-b{b}-{i}" for i in range(5)]
                col = f"col_{w}"
                tables.commit("t_history", lambda t, ids=ids, col=col: Append(
                    rows(ids, **{col: pa.array([w] * len(ids), pa.int64())}), add_columns={col: pa.int64()}))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = IcebergTables(settings, clients).scan("t_history")
    assert got.num_rows == 4 * 3 * 5
    assert {f"col_{w}" for w in range(4)} <= set(got.column_names)
    for w in range(4):
        mine = got.filter(pa.compute.starts_with(got.column("event_id"), f"w{w}-"))
        assert mine.column(f"col_{w}").to_pylist() == [w] * 15


def test_the_embedded_glue_refuses_a_stale_version_id(clients: Clients) -> None:
    # as AWS Glue does: the optimistic check Iceberg commits rely on
    glue = clients.glue
    glue.create_database(DatabaseInput={"Name": "db"})
    glue.create_table(DatabaseName="db", TableInput={"Name": "t", "Parameters": {"v": "0"}})
    version = glue.get_table(DatabaseName="db", Name="t")["Table"]["VersionId"]
    glue.update_table(DatabaseName="db", TableInput={"Name": "t", "Parameters": {"v": "1"}}, VersionId=version)
    with pytest.raises(glue.exceptions.ConcurrentModificationException):
        glue.update_table(DatabaseName="db", TableInput={"Name": "t", "Parameters": {"v": "2"}}, VersionId=version)
    assert glue.get_table(DatabaseName="db", Name="t")["Table"]["Parameters"] == {"v": "1"}


def snapshot_summaries(table: Any) -> list[dict[str, Any]]:
    """Every snapshot's id, time and summary, oldest first."""
    return [{"snapshot_id": s.snapshot_id, "timestamp_ms": s.timestamp_ms,
             **(s.summary.additional_properties if s.summary else {})} for s in table.snapshots()]


def test_a_commit_whose_response_was_lost_keeps_its_files(tables: IcebergTables, clients: Clients) -> None:
    # UpdateTable lands but its response is lost: the client must not repeat the call (the
    # repeat would be refused as a conflict and pyiceberg would delete the landed commit's
    # files); the batch fails, its retry finds the rows there, and the table stays readable
    tables.ensure("t_history", SCHEMA, ["dt"], source="T", kind="history")
    glue = clients.client("glue", one_attempt=True)
    assert glue is tables.glue and glue.meta.config.retries["total_max_attempts"] == 1
    lost = [0]

    def lose(http_response: Any, **_: Any) -> None:
        if not lost[0]:
            lost[0] += 1
            raise ConnectionResetError("the response was lost")

    glue.meta.events.register("after-call.glue.UpdateTable", lose)
    try:
        with pytest.raises(TransientError):
            tables.commit("t_history", lambda t: Append(rows(["a", "b"])))
    finally:
        glue.meta.events.unregister("after-call.glue.UpdateTable", lose)
    assert tables.scan("t_history").num_rows == 2  # landed, and every file it names is there
    tables.commit("t_history", lambda t: Append(rows(["c"])))
    assert sorted(tables.scan("t_history").column("event_id").to_pylist()) == ["a", "b", "c"]


def test_the_retry_switch_is_never_stored_on_the_table(tables: IcebergTables) -> None:
    # Athena and Spark read commit.retry.num-retries from the table: ours must stay in memory
    tables.ensure("t_history", SCHEMA, ["dt"], source="T", kind="history")
    tables.commit("t_history", lambda t: Append(rows(["a"]), add_columns={"x": pa.string()},
                                                  properties={"lake.attribute.x": "x"}))
    props = tables.load("t_history").properties
    assert "commit.retry.num-retries" not in props
    assert props["write.metadata.delete-after-commit.enabled"] == "true"


def test_a_table_created_by_another_writer_between_staging_and_commit_is_used(
        tables: IcebergTables, settings: Settings, clients: Clients) -> None:
    # two shards' consumers creating `changes` at once: the loser's create transaction fails its
    # AssertCreate ("Table already exists") at commit and must take the winner's table
    other = IcebergTables(settings, Clients(settings), sleep=lambda s: None)
    real = tables.catalog.create_table_transaction

    def staged_then_beaten(*args: Any, **kwargs: Any) -> Any:
        tx = real(*args, **kwargs)
        other.ensure("raced", SCHEMA, ["dt"], source="T", kind="history")
        other.commit("raced", lambda t: Append(rows(["won"])))
        return tx

    tables.catalog.create_table_transaction = staged_then_beaten  # type: ignore[method-assign]
    table = tables.ensure("raced", SCHEMA, ["dt"], source="T", kind="history")
    assert table.current_snapshot() is not None  # the winner's table, with its row
    assert tables.scan("raced").column("event_id").to_pylist() == ["won"]
