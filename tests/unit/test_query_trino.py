"""The Trino functions the local engine implements in Python (lake.query.trino), against
Trino's documented behaviour, and the guard's refusals, without DuckDB or AWS."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from lake.errors import QueryError
from lake.query import dialect, guard, trino


@pytest.mark.parametrize(("doc", "path", "expected"), [
    ('{"a": 0.12345678901234567890123}', "$.a", "0.12345678901234567890123"),
    ('{"a": 12345678901234567.5}', "$.a", "12345678901234567.5"),
    ('{"a": 1.50}', "$.a", "1.50"),
    ('{"a": "x\\"y"}', "$.a", 'x"y'),
    ('{"a": true}', "$.a", "true"),
    ('{"a": null}', "$.a", None),
    ('{"a": {"b": 1}}', "$.a", None),
    ('{"a": [1, 2]}', "$.a", None),
    ('{"a": [1, {"b": 2.25}]}', "$.a[1].b", "2.25"),
    ('{"a b": 3}', '$["a b"]', "3"),
    ("[1, 2, 3]", "$[2]", "3"),
    ("[1, 2, 3]", "$[3]", None),
    ('{"a": 1', "$.a", None),
    ('{"a": 1}', "$.missing", None),
])
def test_json_extract_scalar(doc: str, path: str, expected: str | None) -> None:
    assert trino.json_extract_scalar(doc, path) == expected


def test_json_paths_outside_trinos_subset_are_errors() -> None:
    with pytest.raises(ValueError):
        trino.parse_json_path("a.b")
    with pytest.raises(ValueError):
        trino.parse_json_path("$..a")


@pytest.mark.parametrize(("doc", "value", "kind", "expected"), [
    ("[1, 2, 3]", "2", "bigint", True),
    ("[1.0, 2.5]", "1", "bigint", False),   # a bigint matches integral numbers only
    ("[1.0, 2.5]", "1", "double", True),
    ('["a", "b"]', '"b"', "varchar", True),
    ('["1"]', "1", "bigint", False),
    ("[true]", "true", "boolean", True),
    ('{"a": 1}', "1", "bigint", None),
])
def test_json_array_contains(doc: str, value: str, kind: str, expected: bool | None) -> None:
    assert trino.json_array_contains(doc, value, kind) is expected


def test_json_array_get_and_size() -> None:
    # json_array_get's documented (broken) semantics: a string element loses its quotes
    assert trino.json_array_get('["a", [3, 9], "c"]', 0) == "a"
    assert trino.json_array_get('["a", [3, 9], "c"]', 1) == "[3,9]"
    assert trino.json_array_get('["c", [3, 9], "a"]', -2) == "[3,9]"
    assert trino.json_array_get('["a", "b", "c"]', 10) is None
    assert trino.json_size('{"x": {"a": 1, "b": 2}}', "$.x") == 2
    assert trino.json_size('{"x": 1}', "$.x") == 0


@pytest.mark.parametrize(("pattern", "expected"), [
    ("yyyy-MM-dd HH:mm:ss.SSS", "2001-08-22 03:04:05.321"),
    ("EEEE, d MMMM yy", "Wednesday, 22 August 01"),
    ("EEE h:mm a", "Wed 3:04 AM"),
    ("yyyy-MM-dd'T'HH:mm", "2001-08-22T03:04"),
    ("D 'day' w", "234 day 34"),
    ("'it''s' H", "it's 3"),
])
def test_format_datetime_joda_patterns(pattern: str, expected: str) -> None:
    assert trino.format_datetime(datetime(2001, 8, 22, 3, 4, 5, 321000), pattern) == expected


def test_format_datetime_refuses_unknown_letters() -> None:
    with pytest.raises(trino.UnsupportedPatternError, match=r"docs/SQL\.md"):
        trino.format_datetime(datetime(2001, 8, 22), "yyyy q")


@pytest.mark.parametrize(("pattern", "args", "expected"), [
    ("%s%%", '{"a0": 123}', "123%"),
    ("%.5f", '{"a0": 3.141592653589793}', "3.14159"),
    ("%03d", '{"a0": 8}', "008"),
    ("%,.2f", '{"a0": 1234567.89}', "1,234,567.89"),
    ("%-7s,%7s", '{"a0": "hello", "a1": "world"}', "hello  ,  world"),
    ("%2$s %3$s %1$s", '{"a0": "a", "a1": "b", "a2": "c"}', "b c a"),
    ("%x %S", '{"a0": 255, "a1": "ok"}', "ff OK"),
])
def test_java_format(pattern: str, args: str, expected: str) -> None:
    assert trino.java_format(pattern, args) == expected


def test_java_format_refuses_date_conversions() -> None:
    with pytest.raises(ValueError, match=r"docs/SQL\.md"):
        trino.java_format("%1$tA", '{"a0": "2006-07-04"}')


def test_string_helpers() -> None:
    assert trino.split("a.b.c", ".", 2) == ["a", "b.c"]
    assert trino.split("a.b.c", ".", 5) == ["a", "b", "c"]
    assert trino.strpos("hello hello", "l", 3) == 9
    assert trino.strpos("hello", "l", -1) == 4
    assert trino.strpos("hello", "z", 1) == 0
    assert trino.regexp_position("I have 23 apples, 5 pears and 13 oranges", r"\b\d+\b", 12, 2) == 31
    assert trino.regexp_position("abc", r"\d", 1, 1) == -1
    assert trino.java_replacement("3c$2 ") == "3c\\2 "
    assert trino.java_replacement("\\$1") == "$1"
    assert trino.cbrt(27.0) == 3.0 and trino.cbrt(-8.0) == -2.0
    assert trino.from_base("ff", 16) == 255
    assert trino.parse_data_size("2.3MB") == Decimal(2411724)


@pytest.mark.parametrize(("duckdb_type", "trino_type"), [
    ("INTEGER", "integer"), ("VARCHAR", "varchar"), ("DECIMAL(38,18)", "decimal(38,18)"),
    ("INTEGER[]", "array(integer)"), ("MAP(VARCHAR, INTEGER[])", "map(varchar, array(integer))"),
    ('STRUCT("key" VARCHAR, "value" BIGINT)', "row(key varchar, value bigint)"),
    ("TIMESTAMP WITH TIME ZONE", "timestamp(6) with time zone"), ("DOUBLE", "double"),
])
def test_type_names(duckdb_type: str, trino_type: str) -> None:
    assert trino.trino_type_name(duckdb_type) == trino_type


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 1) TO '/tmp/x'", "  attach '/tmp/x.db'", "-- a comment\nINSTALL httpfs", "LOAD httpfs",
    "SET threads = 1", "PRAGMA version", "/* c */ EXPORT DATABASE '/tmp/d'", "CALL f()",
    "SELECT json_query('{}', 'lax $.a')", "SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM glob('*')",
])
def test_guard_refuses_before_parsing(sql: str) -> None:
    with pytest.raises(QueryError, match=r"not supported by the local engine.*docs/SQL\.md"):
        guard.check_text(sql)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv_auto('x.csv')", "SELECT * FROM \"data.parquet\"", "SELECT * FROM \"/etc/passwd\"",
    "INSERT INTO t VALUES (1)", "SELECT current_setting('x')", "SELECT array_sort(a, (x, y) -> 0) FROM t",
])
def test_guard_refuses_after_parsing(sql: str) -> None:
    (statement,) = dialect.parse(sql)
    with pytest.raises(QueryError, match=r"not supported by the local engine.*docs/SQL\.md"):
        guard.check(statement)


def test_guard_lets_queries_through() -> None:
    sql = ("WITH x AS (SELECT 1 AS a) SELECT a, json_extract_scalar('{}', '$.a') "
           "FROM x CROSS JOIN UNNEST(ARRAY[1]) AS u (v)")
    guard.check_text(sql)
    (statement,) = dialect.parse(sql)
    guard.check(statement)


def test_duckdb_errors_name_the_function() -> None:
    err = guard.translate_duckdb_error("Catalog Error: Scalar Function with name foo does not exist!\nDid you mean")
    assert "function foo()" in str(err) and "docs/SQL.md" in str(err) and "Catalog Error" not in str(err)
