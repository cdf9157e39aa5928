"""The DuckDB session of the local Athena: Athena's settings, the Trino functions DuckDB
lacks (macros and Python functions from :mod:`lake.query.trino`), and the lock-down that
keeps DuckDB away from everything but the lake. Pure: no AWS."""

from __future__ import annotations

from typing import Any

import duckdb
from duckdb.func import FunctionNullHandling

from lake.query import dialect, trino
from lake.query.jsontext import member_text

# DuckDB renders a member by re-serialising it, which can round a non-integer number
# (through a double) or drop a trailing zero. Its text is kept when it provably equals
# the original literal: no digit followed by '.', 'e' or 'E' in it, or the document
# holds exactly `"name":<text>` followed by ',' or '}' (compact JSON, as the curated
# zone writes). Otherwise, and for names a DuckDB JSON path cannot spell, Python slices
# the original text (lake.query.jsontext).
_MEMBER_MACRO = f"""
CREATE OR REPLACE MACRO {dialect.JSON_MEMBER_FUNCTION}(doc, name) AS (
  CASE
    WHEN doc IS NULL OR name IS NULL THEN NULL
    WHEN contains(name, '"') OR contains(name, '\\') THEN lake_json_member_exact(doc, name)
    ELSE lake_json_member_checked(doc, name, CAST(json_extract(doc, '$."' || name || '"') AS VARCHAR))
  END
)
"""
_CHECKED_MACRO = """
CREATE OR REPLACE MACRO lake_json_member_checked(doc, name, fast) AS (
  CASE
    WHEN fast IS NULL THEN NULL
    WHEN NOT regexp_matches(fast, '[0-9][.eE]') THEN fast
    WHEN contains(doc, '"' || name || '":' || fast || ',') THEN fast
    WHEN ends_with(doc, '"' || name || '":' || fast || '}') THEN fast
    ELSE lake_json_member_exact(doc, name)
  END
)
"""

# Trino's json_extract_scalar: DuckDB's answer is kept for strings, booleans and integers
# (their text is exact); other numbers go to Python, which slices the original literal. A
# document that is not JSON gives NULL (TRY), as in Trino; one parse of the document per row.
_JSON_SCALAR_MACROS = (
    f"""
CREATE OR REPLACE MACRO lake_json_scalar_typed(doc, path, v) AS (
  CASE
    WHEN v IS NULL THEN NULL
    WHEN left(CAST(v AS VARCHAR), 1) IN ('{{', '[', 'n') THEN NULL
    WHEN left(CAST(v AS VARCHAR), 1) = '"' THEN json_extract_string(v, '$')
    WHEN left(CAST(v AS VARCHAR), 1) IN ('t', 'f') THEN CAST(v AS VARCHAR)
    WHEN NOT regexp_matches(CAST(v AS VARCHAR), '[.eE]') THEN CAST(v AS VARCHAR)
    ELSE {dialect.JSON_EXTRACT_SCALAR_EXACT}(doc, path)
  END
)""",
    f"""
CREATE OR REPLACE MACRO {dialect.JSON_EXTRACT_SCALAR_FUNCTION}(doc, path) AS
  lake_json_scalar_typed(doc, path, TRY(json_extract(doc, path)))""",
)
_JSON_ARRAY_CONTAINS_MACRO = f"""
CREATE OR REPLACE MACRO {dialect.JSON_ARRAY_CONTAINS_FUNCTION}(doc, v) AS
  lake_json_array_contains_py(CAST(doc AS VARCHAR), CAST(to_json(v) AS VARCHAR), CASE
    WHEN typeof(v) = 'BOOLEAN' THEN 'boolean'
    WHEN typeof(v) IN ('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT') THEN 'bigint'
    WHEN typeof(v) IN ('FLOAT', 'DOUBLE') OR starts_with(typeof(v), 'DECIMAL') THEN 'double'
    ELSE 'varchar'
  END)
"""
# map_agg: Trino skips NULL keys and keeps one value of a repeated key (the first, here).
_MAP_MACRO = f"""
CREATE OR REPLACE MACRO {dialect.MAP_FROM_ENTRIES_FUNCTION}(e) AS
  map_from_entries(list_filter(e, (x, i) -> list_position(list_transform(e, y -> y.k), x.k) = i))
"""



# Trino functions with a DuckDB equivalent under other rules (see lake.query.dialect)
_MACROS = (
    # Trino keeps the first occurrence of each element, in order
    "CREATE OR REPLACE MACRO lake_array_distinct(a) AS list_filter(a, (x, i) -> list_position(a, x) = i)",
    """CREATE OR REPLACE MACRO lake_array_except(a, b) AS
       CASE WHEN a IS NULL OR b IS NULL THEN NULL
            ELSE list_filter(lake_array_distinct(a), x -> NOT list_contains(b, x)) END""",
    "CREATE OR REPLACE MACRO lake_array_union(a, b) AS lake_array_distinct(list_concat(a, b))",
    """CREATE OR REPLACE MACRO lake_array_position(a, x) AS
       CASE WHEN a IS NULL THEN NULL ELSE coalesce(list_position(a, x), 0) END""",
    "CREATE OR REPLACE MACRO lake_array_histogram(a) AS list_aggregate(a, 'histogram')",
    "CREATE OR REPLACE MACRO lake_trim_array(a, n) AS list_slice(a, 1, len(a) - n)",
    """CREATE OR REPLACE MACRO lake_arrays_overlap(a, b) AS
       CASE WHEN a IS NULL OR b IS NULL THEN NULL
            WHEN list_has_any(a, b) THEN true
            WHEN list_contains(list_transform(a, x -> x IS NULL), true)
              OR list_contains(list_transform(b, x -> x IS NULL), true) THEN NULL
            ELSE false END""",
    # Trino: false if any element fails, else NULL if any is NULL, else true (the same for any/none)
    """CREATE OR REPLACE MACRO lake_all_match(a, f) AS
       CASE WHEN list_contains(list_transform(a, f), false) THEN false
            WHEN list_contains(list_transform(list_transform(a, f), x -> x IS NULL), true) THEN NULL
            ELSE true END""",
    """CREATE OR REPLACE MACRO lake_any_match(a, f) AS
       CASE WHEN list_contains(list_transform(a, f), true) THEN true
            WHEN list_contains(list_transform(list_transform(a, f), x -> x IS NULL), true) THEN NULL
            ELSE false END""",
    "CREATE OR REPLACE MACRO lake_none_match(a, f) AS NOT lake_any_match(a, f)",
    "CREATE OR REPLACE MACRO lake_e() AS exp(1)",
    "CREATE OR REPLACE MACRO lake_infinity() AS CAST('infinity' AS DOUBLE)",
    "CREATE OR REPLACE MACRO lake_nan() AS CAST('nan' AS DOUBLE)",
    "CREATE OR REPLACE MACRO lake_to_milliseconds(i) AS CAST(round(epoch(i) * 1000) AS BIGINT)",
    """CREATE OR REPLACE MACRO lake_width_bucket(x, lo, hi, n) AS
       CAST(CASE WHEN x < lo THEN 0 WHEN x >= hi THEN n + 1
                 ELSE floor((x - lo) * n / (hi - lo)) + 1 END AS BIGINT)""",
    "CREATE OR REPLACE MACRO lake_is_json_scalar(j) AS json_type(json(j)) NOT IN ('OBJECT', 'ARRAY')",
    """CREATE OR REPLACE MACRO lake_split_part(s, d, i) AS
       CASE WHEN i > len(string_split(s, d)) THEN NULL ELSE split_part(s, d, i) END""",
    """CREATE OR REPLACE MACRO lake_split_to_map(s, e, kv) AS
       map_from_entries(list_transform(string_split(s, e),
                                       p -> struct_pack(k := split_part(p, kv, 1), v := split_part(p, kv, 2))))""",
    "CREATE OR REPLACE MACRO lake_regexp_position(s, p, start := 1, n := 1) AS lake_regexp_position_py(s, p, start, n)",
)


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Athena's session settings and the functions the dialect routes Trino calls to."""
    for statement in dialect.SESSION_SETTINGS:
        con.execute(statement)
    udfs: list[tuple[str, Any, list[str], str]] = [
        ("lake_json_member_exact", member_text, ["VARCHAR", "VARCHAR"], "VARCHAR"),
        (dialect.JSON_EXTRACT_SCALAR_EXACT, trino.json_extract_scalar, ["VARCHAR", "VARCHAR"], "VARCHAR"),
        ("lake_json_array_contains_py", trino.json_array_contains, ["VARCHAR", "VARCHAR", "VARCHAR"], "BOOLEAN"),
        (dialect.FORMAT_DATETIME_FUNCTION, trino.format_datetime, ["TIMESTAMP", "VARCHAR"], "VARCHAR"),
        (dialect.TYPE_NAME_FUNCTION, trino.trino_type_name, ["VARCHAR"], "VARCHAR"),
        ("lake_json_array_get", trino.json_array_get, ["VARCHAR", "BIGINT"], "VARCHAR"),
        ("lake_json_size", trino.json_size, ["VARCHAR", "VARCHAR"], "BIGINT"),
        ("lake_split", trino.split, ["VARCHAR", "VARCHAR", "BIGINT"], "VARCHAR[]"),
        ("lake_strpos", trino.strpos, ["VARCHAR", "VARCHAR", "BIGINT"], "BIGINT"),
        ("lake_regexp_position_py", trino.regexp_position, ["VARCHAR", "VARCHAR", "BIGINT", "BIGINT"], "INTEGER"),
        ("lake_java_replacement", trino.java_replacement, ["VARCHAR"], "VARCHAR"),
        ("lake_cbrt", trino.cbrt, ["DOUBLE"], "DOUBLE"),
        ("lake_from_base", trino.from_base, ["VARCHAR", "BIGINT"], "BIGINT"),
        ("lake_parse_data_size", trino.parse_data_size, ["VARCHAR"], "DECIMAL(38,0)"),
        ("lake_format", trino.java_format, ["VARCHAR", "VARCHAR"], "VARCHAR"),
    ]
    for name, function, args, result in udfs:
        # each function answers NULL itself where Trino does (null_handling="special")
        con.create_function(name, function, args, result, side_effects=False,  # type: ignore[arg-type]
                            null_handling=FunctionNullHandling.SPECIAL)
    for macro in (_CHECKED_MACRO, _MEMBER_MACRO, *_JSON_SCALAR_MACROS, _JSON_ARRAY_CONTAINS_MACRO, _MAP_MACRO,
                  *_MACROS):
        con.execute(macro)


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """From here on DuckDB reads nothing but what is registered with it (Arrow data the engine
    reads through the lake's own S3 door): no file, no extension, no settings change."""
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
