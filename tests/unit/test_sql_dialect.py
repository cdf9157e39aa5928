"""The Athena → DuckDB dialect: the Trino functions the lake's SQL relies on give the
same answers in DuckDB, and the lake's own fixes (exact JSON members, "$path",
CROSS JOIN UNNEST) hold."""

from __future__ import annotations

import duckdb
import pytest

from lake.errors import QueryError
from lake.query import dialect, functions
from lake.query.jsontext import member_text, members


def run(sql: str, con: duckdb.DuckDBPyConnection | None = None) -> list[tuple[object, ...]]:
    con = con or duckdb.connect()
    functions.prepare(con)
    (local,) = dialect.transpile(sql)
    return con.execute(local).fetchall()


@pytest.mark.parametrize(("athena", "expected"), [
    ("SELECT json_extract_scalar('{\"a\": {\"b\": \"x\"}}', '$.a.b')", "x"),
    ("SELECT CAST(from_unixtime(86400) AS VARCHAR)", "1970-01-02 00:00:00+00"),
    ("SELECT CAST(date_parse('2024-05-01 10', '%Y-%m-%d %H') AS VARCHAR)", "2024-05-01 10:00:00"),
    ("SELECT try_cast('x' AS bigint)", None),
    ("SELECT element_at(ARRAY['a', 'b'], 2)", "b"),
    ("SELECT element_at(MAP(ARRAY['k'], ARRAY[1]), 'missing')", None),
    ("SELECT cardinality(map_keys(CAST(json_parse('{\"a\":1,\"b\":2}') AS MAP(VARCHAR, JSON))))", 2),
    ("SELECT CAST(date_trunc('hour', TIMESTAMP '2024-05-01 10:59:59') AS VARCHAR)", "2024-05-01 10:00:00"),
    # integer division as Trino's, truncating toward zero
    ("SELECT 7 / 2", 3),
    ("SELECT -7 / 2", -3),
    ("SELECT 7.0 / 2", 3.5),
    # a naive (UTC) timestamp shown in a zone: Athena's wall-clock time
    ("SELECT CAST(TIMESTAMP '2015-04-09 00:00:00' AT TIME ZONE 'Europe/Paris' AS VARCHAR)", "2015-04-09 02:00:00"),
    ("SELECT CAST((TIMESTAMP '2015-04-09 00:00:00' AT TIME ZONE 'UTC') AT TIME ZONE 'Asia/Tokyo' AS VARCHAR)",
     "2015-04-09 09:00:00"),
])
def test_trino_functions_transpile(athena: str, expected: object) -> None:
    assert run(athena) == [(expected,)]


def test_cross_join_unnest_with_ordinality() -> None:
    rows = run("SELECT t.id, u.v, u.i FROM (SELECT 1 AS id, ARRAY['x', 'y'] AS xs) AS t "
               "CROSS JOIN UNNEST(t.xs) WITH ORDINALITY AS u (v, i) ORDER BY u.i")
    assert rows == [(1, "x", 1), (1, "y", 2)]


def test_cross_join_unnest_becomes_a_projection_with_the_same_rows() -> None:
    sql = ("SELECT c.id, a.x FROM (VALUES (1, ARRAY['p', 'q']), (2, ARRAY[]), (3, NULL)) AS c (id, xs) "
           "CROSS JOIN UNNEST(c.xs) AS a (x)")
    plain = duckdb.connect().execute(sql.replace("VALUES (1", "VALUES (1")).fetchall()
    assert sorted(run(sql)) == sorted(plain) == [(1, "p"), (1, "q")]


def test_path_column_is_duckdb_filename() -> None:
    (local,) = dialect.transpile('SELECT "$path", r."$path" FROM raw_changes AS r WHERE "$path" > \'\'')
    # the result column keeps Athena's name
    assert local == (f'SELECT {dialect.PATH_COLUMN} AS "$path", r.{dialect.PATH_COLUMN} AS "$path" '
                     f"FROM raw_changes AS r WHERE {dialect.PATH_COLUMN} > ''")


def test_json_member_idiom_becomes_the_exact_macro() -> None:
    (local,) = dialect.transpile(
        "SELECT json_format(element_at(CAST(json_parse(doc) AS MAP(VARCHAR, JSON)), name)) FROM t")
    assert dialect.JSON_MEMBER_FUNCTION.upper() + "(doc, name)" in local.upper().replace("DOC", "doc").replace(
        "NAME", "name")
    # any other json_format stays DuckDB's
    (other,) = dialect.transpile("SELECT json_format(json_parse('[1]'))")
    assert dialect.JSON_MEMBER_FUNCTION.upper() not in other.upper()


def test_syntax_error_reports_line_and_column() -> None:
    with pytest.raises(QueryError, match=r"line 2, column 14"):
        dialect.parse("SELECT a\nFROM t WHERE (")


def test_referenced_tables_skip_ctes_and_give_positions() -> None:
    (stmt,) = dialect.parse("WITH x AS (SELECT 1)\nSELECT * FROM x JOIN   real_one ON true")
    tables = dialect.referenced_tables(stmt)
    assert [t.name for t in tables] == ["real_one"]
    assert str(dialect.position(tables[0])) == "line 2, column 24"


def test_member_text_keeps_literals() -> None:
    doc = '{"a": 0.12345678901234567890123456789012345678, "n": null, "s": "x\\"y", "m": {"k": [1.50, 2]}}'
    assert member_text(doc, "a") == "0.12345678901234567890123456789012345678"
    assert member_text(doc, "n") == "null"
    assert member_text(doc, "missing") is None
    assert member_text(None, "a") is None
    assert members(doc)["m"] == '{"k": [1.50, 2]}'
    assert members(doc)["s"] == '"x\\"y"'
    with pytest.raises(ValueError):
        members("[1, 2]")
