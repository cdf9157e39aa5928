"""The Athena side of `compact` and `current_state` (docs/adr/0004), without an AWS account:

* the statements, built by pure functions, are parsed with sqlglot's Athena and Trino
  dialects (OPTIMIZE and VACUUM, which sqlglot knows only as opaque commands, against
  Athena's documented syntax) and their shape is checked on the parse tree;
* the door (`AthenaStatements`) is driven through botocore's Stubber: the request it sends
  (workgroup, database), how it polls QUEUED/RUNNING, and what FAILED, CANCELLED, a
  retryable failure, a timeout and a refused request become."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
import sqlglot
from botocore.stub import ANY, Stubber
from sqlglot import exp

from lake.errors import LakeError, QueryError
from lake.glue import jobs
from lake.glue.athena import (
    MAX_STATEMENT_BYTES,
    AthenaStatements,
    compact_statements,
    create_current,
    merge_current,
    optimize,
    validate,
)
from lake.settings import Settings

S = Settings(glue_database="dynamodb_lake")
COLUMNS = ["event_id", "event_name", "event_time", "sequence_number", "shard_id", "key", "is_ttl_delete", "status"]
DAYS = ["2024-01-01", "2024-01-03"]


def _both(sql: str) -> exp.Expr:
    """The statement parsed as Athena and as Trino SQL (Athena's engine v3 is Trino), each to
    the same tree; and our own validation passes."""
    validate(sql)
    athena = sqlglot.parse_one(sql, read="athena", error_level=sqlglot.ErrorLevel.RAISE)
    trino = sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert athena == trino
    return athena


# -- the statements ---------------------------------------------------------------------------------

def test_compaction_sets_the_window_optimizes_each_planned_partition_then_vacuums() -> None:
    statements = compact_statements(S, "changes", 128 * 1024 * 1024, 7 * 86_400,
                                    [(("table_name", "orders"), ("dt", "2024-01-01")),
                                     (("table_name", "orders"), ("dt", "2024-01-02"))])
    assert statements == [
        "ALTER TABLE \"dynamodb_lake\".\"changes\" SET TBLPROPERTIES ('write_target_data_file_size_bytes'="
        "'134217728', 'vacuum_max_snapshot_age_seconds'='604800')",
        "OPTIMIZE \"dynamodb_lake\".\"changes\" REWRITE DATA USING BIN_PACK "
        "WHERE \"table_name\" = 'orders' AND \"dt\" = '2024-01-01'",
        "OPTIMIZE \"dynamodb_lake\".\"changes\" REWRITE DATA USING BIN_PACK "
        "WHERE \"table_name\" = 'orders' AND \"dt\" = '2024-01-02'",
        'VACUUM "dynamodb_lake"."changes"',
    ]
    alter = _both(statements[0])
    assert isinstance(alter, exp.Alter)
    for sql in statements[1:]:
        assert isinstance(validate(sql), exp.Command)
    # properties already set and nothing small: the statements of a second run
    assert compact_statements(S, "changes", 1, 1, [], properties_needed=False) == ['VACUUM "dynamodb_lake"."changes"']


@pytest.mark.parametrize("bad", [
    'OPTIMIZE "dynamodb_lake"."t" REWRITE DATA',  # no BIN_PACK
    'OPTIMIZE "dynamodb_lake"."t" REWRITE DATA USING BIN_PACK WHERE dt =',  # a broken predicate
    'OPTIMIZE "dynamodb_lake"."t" REWRITE DATA USING BIN_PACK WHERE lower(dt) = \'x\'',  # not a partition test
    'VACUUM "dynamodb_lake"."t" RETAIN 7 DAYS',  # Delta's, not Athena's
    'MERGE INTO "d"."t" AS t USING (SELECT 1 AS k) AS s ON t.k = s.k WHEN MATCHED THEN DELET',
    'SELECT 1; SELECT 2',
    "SELECT '" + "x" * MAX_STATEMENT_BYTES + "'",
])
def test_a_statement_athena_would_refuse_is_refused_before_it_is_sent(bad: str) -> None:
    with pytest.raises(QueryError):
        validate(bad)


def test_optimize_quotes_its_names_and_values() -> None:
    sql = optimize(S, 'odd"table', (("dt", "2024-01-01'; DROP TABLE x; --"),))
    assert sql == ('OPTIMIZE "dynamodb_lake"."odd""table" REWRITE DATA USING BIN_PACK '
                   "WHERE \"dt\" = '2024-01-01''; DROP TABLE x; --'")
    validate(sql)


def _window(tree: exp.Expr) -> exp.Window:
    (window,) = list(tree.find_all(exp.Window))
    return window


def _order(window: exp.Window) -> list[tuple[str, bool]]:
    return [(o.this.name, bool(o.args.get("desc"))) for o in window.args["order"].expressions]


def test_incremental_merge_reduces_the_touched_items_whole_history() -> None:
    sql = merge_current(S, "orders_history", "orders_current", COLUMNS, DAYS)
    tree = _both(sql)
    assert isinstance(tree, exp.Merge)
    assert tree.this.name == "orders_current" and tree.this.db == "dynamodb_lake"
    window = _window(tree)
    assert isinstance(window.this, exp.RowNumber)
    assert [p.name for p in window.args["partition_by"]] == ["key"]
    assert _order(window) == [("event_time", True), ("sequence_number", True), ("event_id", True)]
    # the touched items: keys with a change in the added files' days, every change of theirs reduced
    (touched,) = [i for i in tree.find_all(exp.In) if i.this.name == "key"]
    inner = touched.args["query"].this
    (by_day,) = list(inner.find_all(exp.In))
    assert by_day.this.name == "dt" and [e.name for e in by_day.expressions] == DAYS
    assert inner.args["from_"].this.name == "orders_history"
    whens = [w for w in tree.find_all(exp.When)]
    assert [(bool(w.args.get("matched")), type(w.args["then"]).__name__) for w in whens] == \
        [(True, "Var"), (True, "Update"), (False, "Insert")]
    assert whens[0].args["then"].name == "DELETE"
    updated = [e.this.name for e in whens[1].args["then"].expressions]
    assert updated == [c for c in COLUMNS if c != "key"]  # the key is matched on, never updated
    for when in (whens[0], whens[2]):
        assert "REMOVE" in when.args["condition"].sql()


def test_full_merge_and_create_reduce_the_whole_history() -> None:
    merge = _both(merge_current(S, "orders_history", "orders_current", COLUMNS))
    assert not [i for i in merge.find_all(exp.In)]
    create = _both(create_current(S, "orders_history", "orders_current_at_x", COLUMNS, "s3://b/curated/x",
                                  as_of_us=1_704_067_200_000_000))
    assert isinstance(create, exp.Create) and create.kind == "TABLE"
    props = {p.name: p.args["value"].sql() for p in create.find_all(exp.Property) if type(p) is exp.Property}
    assert props == {"table_type": "'ICEBERG'", "is_external": "FALSE"}
    (location,) = list(create.find_all(exp.LocationProperty))
    assert location.this.name == "s3://b/curated/x"
    (as_of,) = [c for c in create.find_all(exp.LTE)]
    assert as_of.this.name == "event_time" and "2024-01-01 00:00:00" in as_of.expression.sql()
    assert _order(_window(create)) == [("event_time", True), ("sequence_number", True), ("event_id", True)]


# -- the door ---------------------------------------------------------------------------------------

def _door(**kwargs: Any) -> tuple[AthenaStatements, Stubber, list[float]]:
    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    slept: list[float] = []
    door = AthenaStatements(client, "dynamodb_lake", "lake-wg", "s3://b/athena-results/", sleep=slept.append,
                            **kwargs)
    return door, Stubber(client), slept


def _start(stub: Stubber, qid: str, sql: str) -> None:
    stub.add_response("start_query_execution", {"QueryExecutionId": qid}, {
        "QueryString": sql, "QueryExecutionContext": {"Database": "dynamodb_lake"}, "WorkGroup": "lake-wg",
        "ResultConfiguration": {"OutputLocation": "s3://b/athena-results/"}})


def _state(stub: Stubber, qid: str, state: str, reason: str | None = None, retryable: bool | None = None) -> None:
    status: dict[str, Any] = {"State": state, "SubmissionDateTime": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    if reason is not None:
        status["StateChangeReason"] = reason
    if retryable is not None:
        status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1000, "Retryable": retryable, "ErrorMessage": reason}
    stub.add_response("get_query_execution", {"QueryExecution": {"QueryExecutionId": qid, "Status": status}},
                      {"QueryExecutionId": qid})


VACUUM = 'VACUUM "dynamodb_lake"."orders_history"'


def test_a_statement_is_started_in_the_workgroup_and_polled_until_it_succeeds() -> None:
    door, stub, slept = _door()
    _start(stub, "q1", VACUUM)
    for state in ("QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"):
        _state(stub, "q1", state)
    with stub:
        assert door.run(VACUUM) == "q1"
    stub.assert_no_pending_responses()
    assert slept == [0.5, 1.0, 2.0]  # backing off between polls, never after the end


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED"])
def test_failed_or_cancelled_is_an_error_with_athenas_reason(state: str) -> None:
    door, stub, _ = _door()
    _start(stub, "q2", VACUUM)
    _state(stub, "q2", "RUNNING")
    _state(stub, "q2", state, "ICEBERG_COMMIT_ERROR: Failed to commit the transaction", retryable=False)
    with stub, pytest.raises(QueryError) as caught:
        door.run(VACUUM)
    stub.assert_no_pending_responses()
    message = str(caught.value)
    assert f"q2 {state}" in message and "ICEBERG_COMMIT_ERROR: Failed to commit the transaction" in message
    assert "lake-wg" in message and "VACUUM" in message


def test_a_retryable_failure_is_started_again_a_bounded_number_of_times() -> None:
    door, stub, _ = _door(retries=1)
    _start(stub, "q3", VACUUM)
    _state(stub, "q3", "FAILED", "ICEBERG_COMMIT_ERROR: conflict", retryable=True)
    _start(stub, "q4", VACUUM)
    _state(stub, "q4", "SUCCEEDED")
    with stub:
        assert door.run(VACUUM) == "q4"
    stub.assert_no_pending_responses()

    door, stub, _ = _door(retries=1)
    for qid in ("q5", "q6"):
        _start(stub, qid, VACUUM)
        _state(stub, qid, "FAILED", "ICEBERG_COMMIT_ERROR: conflict", retryable=True)
    with stub, pytest.raises(QueryError, match="q6 FAILED"):
        door.run(VACUUM)
    stub.assert_no_pending_responses()


def test_a_statement_still_running_past_the_timeout_is_stopped() -> None:
    door, stub, slept = _door(timeout_s=3.0)
    _start(stub, "q7", VACUUM)
    for _ in range(4):  # polls after 0, 0.5, 1.5, 3.5 s of waiting
        _state(stub, "q7", "RUNNING")
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q7"})
    with stub, pytest.raises(QueryError, match="q7 still RUNNING after 3 s: stopped"):
        door.run(VACUUM)
    stub.assert_no_pending_responses()
    assert slept == [0.5, 1.0, 2.0]


def test_a_refused_request_names_the_workgroup() -> None:
    door, stub, _ = _door()
    stub.add_client_error("start_query_execution", "AccessDeniedException",
                          "not authorized to perform: athena:StartQueryExecution on workgroup/lake-wg",
                          expected_params={"QueryString": VACUUM, "QueryExecutionContext": ANY, "WorkGroup": "lake-wg",
                                           "ResultConfiguration": ANY})
    with stub, pytest.raises(LakeError, match="lake-wg"):
        door.run(VACUUM)


def test_invalid_sql_never_reaches_athena() -> None:
    door, stub, _ = _door()
    with stub, pytest.raises(QueryError):  # a stubbed call with no response queued would fail differently
        door.run("VACUUM dynamodb_lake.orders_history RETAIN 0 HOURS")
    stub.assert_no_pending_responses()


# -- the workgroup through the job's arguments ----------------------------------------------------

def test_workgroup_argument_reaches_the_athena_door(monkeypatch: pytest.MonkeyPatch) -> None:
    from lake.glue import athena

    seen: list[str] = []

    def compact_on_athena(settings: Settings, *args: Any, **kwargs: Any) -> Any:
        door = AthenaStatements.of(settings, clients=type("C", (), {"athena": None})())  # type: ignore[arg-type]
        seen.append(door.workgroup)
        return jobs.JobReport("compact (athena)")

    monkeypatch.setattr(athena, "compact_on_athena", compact_on_athena)
    aws = Settings(athena_workgroup="lake-from-settings")
    jobs.run("compact", aws, {})  # on AWS the default engine is Athena, in the settings' workgroup
    jobs.run("compact", aws, {"workgroup": "maintenance"})
    # a Glue job's arguments: --workgroup as AWS Glue passes it
    given = jobs.glue_arguments("compact", ["script", "--workgroup", "glue-wg"],
                                lambda argv, names: {n: argv[argv.index(f"--{n}") + 1] for n in names})
    jobs.run("compact", aws, given)
    assert seen == ["lake-from-settings", "maintenance", "glue-wg"]


def test_the_engine_is_athena_on_aws_and_pyiceberg_on_an_endpoint() -> None:
    assert jobs.engine(Settings(), "auto") == "athena"
    assert jobs.engine(Settings(endpoint_url="http://127.0.0.1:4566"), "auto") == "pyiceberg"
    assert jobs.engine(Settings(), "pyiceberg") == "pyiceberg" and jobs.engine(Settings(), None) is None
    with pytest.raises(LakeError, match="--engine"):
        jobs.engine(Settings(), "spark")
