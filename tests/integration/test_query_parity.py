"""Issue 13, case by case: the six failures and four silent differences an analyst met with
`lake query`, each now giving Athena's documented answer; and the lock-down that keeps the local
engine to the lake (no file read or written, no extension, no setting changed)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from lake.errors import QueryError
from lake.local.embedded import EmbeddedAWS
from lake.query.local import LocalEngine
from tests.integration.test_query_corpus import corpus_lake


@pytest.fixture(scope="module")
def engine(embedded_aws: EmbeddedAWS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEngine]:
    local, _ = corpus_lake(embedded_aws, tmp_path_factory.mktemp("parity-state"))
    yield local
    local.close()


def one(engine: LocalEngine, sql: str) -> object:
    return engine.query(sql).to_pylist()[0]


# -- the four silent differences ----------------------------------------------------------------

@pytest.mark.parametrize("literal", ["0.12345678901234567890123", "12345678901234567.5", "-1E+400", "100"])
def test_json_extract_scalar_keeps_a_number_exact(engine: LocalEngine, literal: str) -> None:
    row = one(engine, f"SELECT json_extract_scalar('{{\"a\": {literal}}}', '$.a') AS v")
    assert row == {"v": literal}


def test_json_extract_scalar_of_an_object_or_array_is_null(engine: LocalEngine) -> None:
    row = one(engine, """SELECT json_extract_scalar('{"a": {"b": 1}}', '$.a') AS o,
                                json_extract_scalar('{"a": [1, 2]}', '$.a') AS a,
                                json_extract_scalar('{"a": null}', '$.a') AS n,
                                json_extract_scalar('not json', '$.a') AS bad""")
    assert row == {"o": None, "a": None, "n": None, "bad": None}


def test_json_extract_scalar_on_the_lake_images_is_exact(engine: LocalEngine) -> None:
    rows = engine.query("SELECT key, json_extract_scalar(item, '$.amount') AS amount FROM current_state").to_pylist()
    assert rows == [{"key": "order_id=o1", "amount": "0.12345678901234567890123"}]


def test_approx_percentile_of_a_decimal_is_a_double_without_noise(engine: LocalEngine) -> None:
    # i / 7 as decimal(38,18): DuckDB's sketch gave 71.428571428571414528 (a decimal showing
    # the double's error); Trino reads a decimal as a double and answers a double.
    result = engine.query("""SELECT approx_percentile(x, 0.5) AS p FROM (
        SELECT CAST(CAST(i AS DOUBLE) / 7 AS decimal(38,18)) AS x FROM UNNEST(sequence(1, 999)) AS t (i))""")
    assert result.schema.field("p").type == pa.float64()
    assert abs(result.column("p")[0].as_py() - 500 / 7) < 1.0


def test_unnamed_columns_are_named_as_athena_names_them(engine: LocalEngine) -> None:
    result = engine.query("SELECT count(*), event_name, max(event_time) AS latest, count(DISTINCT key) "
                          "FROM changes_unique GROUP BY event_name")
    assert result.column_names == ["_col0", "event_name", "latest", "_col3"]


def test_typeof_answers_trino_type_names(engine: LocalEngine) -> None:
    row = one(engine, "SELECT typeof(123) AS i, typeof('cat') AS s, typeof(cos(2) + 1.5) AS d, "
                      "typeof(changed_attributes) AS a, typeof(size_bytes) AS b FROM changes LIMIT 1")
    assert row == {"i": "integer", "s": "varchar(3)", "d": "double", "a": "array(varchar)", "b": "bigint"}


def test_show_tables_lists_the_lake_without_a_warning(engine: LocalEngine, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        names = engine.query("SHOW TABLES").column("tab_name").to_pylist()
        columns = engine.query("SHOW COLUMNS FROM deletions").column("field").to_pylist()
    assert names == ["audit_trail", "change_volume", "changes", "changes_unique", "current_state", "deletions",
                     "raw_changes", "things"]
    assert columns == ["table_name", "key", "event_time", "deletion_kind", "deleted_by", "last_image", "event_id",
                       "dt"]
    assert caplog.records == []


# -- the six failures -----------------------------------------------------------------------------

def test_format_datetime(engine: LocalEngine) -> None:
    row = one(engine, "SELECT format_datetime(event_time, 'yyyy-MM-dd''T''HH:mm:ss EEE') AS t "
                      "FROM deletions WHERE key = 'user_id=u1'")
    assert row == {"t": "2024-05-02T09:00:00 Thu"}


def test_json_array_contains(engine: LocalEngine) -> None:
    row = one(engine, """SELECT json_array_contains('[1, 2, 3]', 2) AS n, json_array_contains('["a"]', 'a') AS s,
                                json_array_contains('[1.5]', 2) AS miss, json_array_contains('{"a": 1}', 1) AS obj""")
    assert row == {"n": True, "s": True, "miss": False, "obj": None}


def test_map_agg(engine: LocalEngine) -> None:
    row = one(engine, "SELECT map_agg(attribute, new_value) AS m FROM audit_trail WHERE event_name = 'MODIFY'")
    assert sorted(row["m"]) == [("status", '"paid"'), ("updated_by", '"bob"')]  # type: ignore[index]


def test_path_on_a_curated_table(engine: LocalEngine) -> None:
    rows = engine.query('SELECT "$path", count(*) AS n FROM changes GROUP BY 1 ORDER BY 1').to_pylist()
    assert rows and all(r["$path"].startswith("s3://") and "/changes/table_name=" in r["$path"] for r in rows)
    assert sum(r["n"] for r in rows) == 7


def test_raw_record_is_the_ddl_struct(engine: LocalEngine) -> None:
    rows = engine.query("SELECT record.eventname AS e, record.dynamodb.keys AS k FROM raw_changes "
                        "WHERE record.eventid IN ('e1', 'e4') ORDER BY record.eventid").to_pylist()
    assert [r["e"] for r in rows] == ["INSERT", "REMOVE"]
    assert all('"order_id"' in r["k"] for r in rows)  # a string column holding the JSON text, as OpenX reads it


def test_an_unknown_function_is_named_never_a_duckdb_error(engine: LocalEngine) -> None:
    for sql, name in [("SELECT no_such_function(1)", "no_such_function"),
                      ("SELECT soundex('a')", "soundex"),
                      ("SELECT array_sort(ARRAY[2, 1], (x, y) -> 0)", "array_sort")]:
        with pytest.raises(QueryError) as refused:
            engine.query(sql)
        message = str(refused.value)
        assert name in message and "docs/SQL.md" in message
        assert "Binder Error" not in message and "Catalog Error" not in message


# -- the lake and nothing else --------------------------------------------------------------------

@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "credentials"
    path.write_text("[default]\naws_secret_access_key = not-for-lake-query\n")
    return path


@pytest.mark.parametrize("template", [
    "SELECT * FROM read_text('{path}')",
    "SELECT * FROM read_csv('{path}')",
    "SELECT * FROM read_csv_auto('{path}')",
    "SELECT * FROM read_parquet('{path}')",
    "SELECT * FROM read_json('{path}')",
    "SELECT * FROM read_blob('{path}')",
    "SELECT * FROM glob('{path}')",
    "SELECT * FROM '{path}'",
    "SELECT content FROM read_text('{path}') UNION ALL SELECT key FROM changes",
    "WITH x AS (SELECT * FROM read_text('{path}')) SELECT * FROM x",
    "COPY (SELECT 1) TO '{path}.out'",
    "COPY changes TO '{path}.out' (FORMAT parquet)",
    "ATTACH '{path}.db' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA enable_profiling",
    "EXPORT DATABASE '{path}.dir'",
    "CREATE TABLE t AS SELECT 1",
    "SELECT current_setting('home_directory')",
])
def test_local_files_are_refused_with_a_clear_message(engine: LocalEngine, secret: Path, template: str) -> None:
    with pytest.raises(QueryError) as refused:
        engine.query(template.format(path=secret))
    message = str(refused.value)
    assert "not supported by the local engine" in message and "docs/SQL.md" in message
    assert "not-for-lake-query" not in message
    assert not Path(f"{secret}.out").exists() and not Path(f"{secret}.db").exists()


def test_duckdb_itself_cannot_reach_the_disk(engine: LocalEngine, secret: Path) -> None:
    """The second layer: past the checks, DuckDB is locked (external access off, settings frozen)."""
    for sql in (f"SELECT * FROM read_text('{secret}')", f"COPY (SELECT 1) TO '{secret}.out'"):
        with pytest.raises(duckdb.PermissionException):
            engine.con.execute(sql)
    with pytest.raises(duckdb.Error, match="locked"):
        engine.con.execute("SET enable_external_access = true")
    assert not Path(f"{secret}.out").exists()
    # and the lake is still there
    assert one(engine, "SELECT count(*) AS n FROM changes") == {"n": 7}
