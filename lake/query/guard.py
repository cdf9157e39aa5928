"""What ``lake query`` refuses to run locally, and how it says so. Pure, no AWS.

The local engine reads the lake and nothing else: one read-only statement (a query, or
``SHOW``/``DESCRIBE``), over the lake's tables and views. DuckDB's own ways out — table
functions over files (``read_text``, ``read_csv``, ``read_parquet``, ``glob``...), ``COPY``,
``ATTACH``, ``INSTALL``, ``LOAD``, ``SET``, ``PRAGMA`` — are refused here with a clear
message, and DuckDB's external access is disabled as well (``lake.query.local``), so a
statement that slipped past these checks still could not open a file.

Trino functions the local engine does not implement are refused by name, pointing at the
support matrix (docs/SQL.md), before DuckDB could answer with a binder error.
"""

from __future__ import annotations

import itertools
import re

from sqlglot import exp
from sqlglot.dialects.athena import Athena
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from lake.errors import QueryError

SUPPORT_DOC = "docs/SQL.md"

#: Trino/Athena functions of the analyst's families that the local engine does not run
#: (the matrix in docs/SQL.md shows each with the documented example that proves it).
UNSUPPORTED_FUNCTIONS: dict[str, str] = {
    "approx_most_frequent": "no stream-summary sketch in DuckDB",
    "approx_set": "HyperLogLog values are Trino's own type",
    "at_timezone": "no time zone kept with a timestamp locally",
    "checksum": "Trino's checksum is an implementation-specific hash",
    "combinations": "not implemented locally",
    "contains_sequence": "not implemented locally",
    "from_unixtime_nanos": "nanosecond timestamps are not kept locally",
    "map_zip_with": "not implemented locally",
    "parse_datetime": "Joda-Time parsing is not implemented locally; use date_parse",
    "to_iso8601": "not implemented locally; use format_datetime or date_format",
    "format_number": "not implemented locally",
    "from_iso8601_timestamp_nanos": "nanosecond timestamps are not kept locally",
    "human_readable_seconds": "not implemented locally",
    "json_exists": "SQL/JSON path functions are not implemented locally",
    "json_query": "SQL/JSON path functions are not implemented locally",
    "json_value": "SQL/JSON path functions are not implemented locally",
    "luhn_check": "not implemented locally",
    "map_union": "not implemented locally",
    "cosine_similarity": "not implemented locally",
    "merge": "sketch types are Trino's own",
    "multimap_agg": "not implemented locally",
    "multimap_from_entries": "not implemented locally",
    "ngrams": "not implemented locally",
    "numeric_histogram": "not implemented locally",
    "parse_duration": "not implemented locally",
    "qdigest_agg": "sketch types are Trino's own",
    "reduce_agg": "not implemented locally",
    "soundex": "not implemented locally",
    "split_to_multimap": "not implemented locally",
    "tdigest_agg": "sketch types are Trino's own",
    "with_timezone": "no time zone kept with a timestamp locally",
    "word_stem": "not implemented locally",
}

#: DuckDB functions that look outside the lake (files, settings, the catalog of DuckDB
#: itself); none is an Athena function.
_OUTSIDE = re.compile(
    r"(read_\w+|\w+_scan|glob|sniff_csv|parquet_\w+|duckdb_\w+|pragma_\w+|current_setting|getvariable|"
    r"getenv|which_secret|query|query_table|iceberg_\w+|delta_\w+|load_aws_credentials|"
    r"json_execute_serialized_sql|sql_auto_complete|test_\w+)",
    re.IGNORECASE,
)

#: Statements that are not queries: refused before parsing (sqlglot does not know all of
#: DuckDB's, and a parse error would hide the real reason).
_STATEMENT = re.compile(
    r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(copy|attach|detach|install|load|export|import|pragma|set|reset|"
    r"call|checkpoint|insert|update|delete|merge|create|drop|alter|use|vacuum|analyze|truncate|"
    r"grant|revoke|begin|commit|rollback|prepare|execute|deallocate|unload|msck|optimize|summarize)\b",
    re.IGNORECASE | re.DOTALL,
)


def called_functions(sql: str) -> list[str]:
    """The names of the functions ``sql`` calls, as written (lower case)."""
    try:
        tokens = Athena().tokenize(sql)
    except TokenError:
        return []
    return [t.text.lower() for t, nxt in itertools.pairwise(tokens)
            if nxt.token_type == TokenType.L_PAREN and t.token_type != TokenType.STRING]


# A table "name" DuckDB would read as a file: a path or a file name.
_PATH_LIKE = re.compile(r"[/\\~:*]|\.\w+$")


def unsupported(name: str, why: str) -> QueryError:
    return QueryError(f"{name} is not supported by the local engine ({why}); see {SUPPORT_DOC}")


def check_text(sql: str) -> None:
    """Refuse a statement that is not a query, by its first keyword."""
    m = _STATEMENT.match(sql)
    if m:
        keyword = m.group(1).upper()
        raise unsupported(keyword, "lake query runs read-only queries over the lake's tables and views")
    # by the name as written: sqlglot maps some of these onto functions DuckDB has (and
    # fails to parse a few of DuckDB's own)
    for name in called_functions(sql):
        if name in UNSUPPORTED_FUNCTIONS:
            raise unsupported(f"function {name}()", UNSUPPORTED_FUNCTIONS[name])
        if _OUTSIDE.fullmatch(name):
            raise unsupported(f"function {name}()", "not an Athena function; lake query reads only the lake")


def function_name(node: exp.Func) -> str:
    """The SQL name of a function call as written (for a function sqlglot does not know) or
    as sqlglot names it."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def check(statement: exp.Expression) -> None:
    """Refuse what the local engine must not or cannot run; QueryError names it."""
    if isinstance(statement, exp.Command):
        raise unsupported(str(statement.this).upper(), "not a query")
    if not isinstance(statement, exp.Query):
        raise unsupported(statement.key.upper(), "lake query runs read-only queries over the lake's tables and views")
    for table in statement.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            name = function_name(table.this)
            raise unsupported(f"table function {name}()",
                              "lake query reads only the lake's tables and views, never local files")
        if isinstance(table.this, exp.Literal) or _PATH_LIKE.search(table.name):
            raise unsupported(f"reading {table.name!r}",
                              "lake query reads only the lake's tables and views, never local files")
    for node in statement.find_all(exp.Func):
        if isinstance(node, exp.ArraySort) and node.expression is not None:
            raise unsupported("array_sort with a comparator function", "DuckDB sorts lists by value only")
        name = function_name(node)
        if name in UNSUPPORTED_FUNCTIONS:
            raise unsupported(f"function {name}()", UNSUPPORTED_FUNCTIONS[name])
        if _OUTSIDE.fullmatch(name):
            raise unsupported(f"function {name}()", "not an Athena function; lake query reads only the lake")


def translate_duckdb_error(message: str) -> QueryError:
    """A DuckDB error → QueryError; a missing function is named, with the matrix to read."""
    m = re.search(r"(Scalar|Table|Aggregate) Function with name (\S+) does not exist", message)
    if m:
        return unsupported(f"function {m.group(2).lower()}()", "not an Athena function, or not available locally")
    m = re.search(r"No function matches the given name and argument types '([^']*)'", message)
    if m and m.group(1).lower().startswith("unnest("):
        return unsupported("UNNEST of several arrays at once", "DuckDB unnests one array at a time")
    if m:
        return unsupported(f"{m.group(1)}", "no local implementation for these argument types")
    if "UNNEST requires a single list" in message:
        return unsupported("UNNEST of a map or of several arrays at once", "DuckDB unnests one array at a time")
    first = message.split("\n", 1)[0]
    return QueryError(f"query failed locally: {first}")
