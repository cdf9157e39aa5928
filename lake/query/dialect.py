"""Athena (Trino) → DuckDB, through sqlglot, with the few fixes the lake needs.

Every difference between the two engines that the lake's SQL touches is fixed
here, once, in a subclass of sqlglot's DuckDB dialect; the ``.sql`` files stay
plain Athena. What sqlglot already transpiles well (json_extract_scalar,
from_unixtime, date_parse, try_cast, element_at, date_trunc, CROSS JOIN UNNEST,
UNNEST WITH ORDINALITY, map_keys) is left to sqlglot and covered by the tests.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.dialects.athena import Athena
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError, TokenError

from lake.errors import QueryError

#: DuckDB session settings that make it read SQL as Athena does: UTC session zone, and
#: Trino's integer division (7 / 2 = 3; DuckDB's default gives a double).
#: Trino's lambdas (``x -> x + 1``), which DuckDB 2 accepts only when asked to.
SESSION_SETTINGS = ("SET TimeZone = 'UTC'", "SET integer_division = true",
                    "SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")

#: DuckDB macro (defined by the local engine) giving the exact JSON text of an object member.
JSON_MEMBER_FUNCTION = "lake_json_member"
#: DuckDB functions and macros (defined by the local engine) standing in for Trino's.
JSON_EXTRACT_SCALAR_FUNCTION = "lake_json_extract_scalar"
JSON_EXTRACT_SCALAR_EXACT = "lake_json_extract_scalar_exact"
JSON_ARRAY_CONTAINS_FUNCTION = "lake_json_array_contains"
FORMAT_DATETIME_FUNCTION = "lake_format_datetime"
TYPE_NAME_FUNCTION = "lake_trino_type"
MAP_FROM_ENTRIES_FUNCTION = "lake_map_from_unique_entries"
#: Prefix of the temporary names given to unnamed result columns; the engine renames them
#: to Trino's ``_col<position>``.
UNNAMED_PREFIX = "_lake_unnamed_"
#: Name of the per-row source object column of the raw table in DuckDB (Athena's "$path").
PATH_COLUMN = "filename"


def _is_json_member(node: exp.Expression) -> tuple[exp.Expression, exp.Expression] | None:
    """Match ``element_at(CAST(json_parse(doc) AS MAP(VARCHAR, JSON)), name)`` → (doc, name)."""
    if not isinstance(node, exp.Bracket) or len(node.expressions) != 1:
        return None
    cast = node.this
    if not isinstance(cast, exp.Cast) or not isinstance(cast.this, exp.ParseJSON):
        return None
    to = cast.to
    if not to.is_type(exp.DataType.Type.MAP) or len(to.expressions) != 2:
        return None
    key_type, value_type = to.expressions
    if not key_type.is_type(*exp.DataType.TEXT_TYPES) or not value_type.is_type(exp.DataType.Type.JSON):
        return None
    return cast.this.this, node.expressions[0]


def _jsonformat_sql(self: Any, expression: exp.JSONFormat) -> str:
    # Trino's idiom for "the JSON text of one attribute of a JSON object". DuckDB would
    # round non-integer numbers through a double; the macro keeps the exact literal.
    match = _is_json_member(expression.this)
    if match is not None:
        doc, name = match
        return self.func(JSON_MEMBER_FUNCTION, doc, name)
    return _BASE_JSONFORMAT(self, expression)


def _column_sql(self: Any, expression: exp.Column) -> str:
    # Athena's hidden "$path" column is DuckDB's `filename` (read_json/read_parquet) —
    # the local engine exposes the raw table's object URL under that name.
    if expression.name == "$path":
        table = expression.args.get("table")
        return f"{self.sql(table)}.{PATH_COLUMN}" if table else PATH_COLUMN
    return _DuckDBGenerator.column_sql(self, expression)


def unnest_join_to_projection(expression: exp.Expr) -> exp.Expr:
    """``FROM t AS c CROSS JOIN UNNEST(c.xs) AS a (x)`` → ``FROM (SELECT c.*, UNNEST(c.xs) AS x
    FROM t AS c) AS c``, with ``a.x`` read as ``c.x``.

    The same rows (an empty or NULL array yields none either way), but DuckDB pushes a
    filter through a projected UNNEST and not through a lateral join: with the rewrite a
    ``dt`` predicate on audit_trail still prunes partitions.
    """
    for select in list(expression.find_all(exp.Select)):
        joins = select.args.get("joins") or []
        source = select.args.get("from_") or select.args.get("from")
        if len(joins) != 1 or source is None or not isinstance(source.this, exp.Table):
            continue
        join, table = joins[0], source.this
        unnest = join.this
        if (
            not isinstance(unnest, exp.Unnest) or join.args.get("on") or join.args.get("using")
            or unnest.args.get("offset") or len(unnest.expressions) != 1 or not table.alias
        ):
            continue
        alias = unnest.args.get("alias")
        if not isinstance(alias, exp.TableAlias) or len(alias.columns) != 1 or not alias.name:
            continue
        outer_name, column = alias.name, alias.columns[0].name
        inner_alias = table.alias
        inner = exp.select(
            exp.Column(this=exp.Star(), table=exp.to_identifier(inner_alias)),
            exp.alias_(exp.Unnest(expressions=[unnest.expressions[0].copy()]), column),
        ).from_(table.copy())
        select.set("joins", None)
        source.set("this", exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(inner_alias))))
        for col in select.find_all(exp.Column):
            if col.table == outer_name and col.name == column:
                col.set("table", exp.to_identifier(inner_alias))
    return expression


def _strip_parens(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _is_naive(node: exp.Expression) -> bool:
    # Lake columns are naive UTC timestamps (Athena's `timestamp`), as are TIMESTAMP literals.
    if isinstance(node, exp.Column):
        return True
    return isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.TIMESTAMP)


def naive_utc_at_time_zone(expression: exp.Expr) -> exp.Expr:
    """``ts AT TIME ZONE z`` (any chain of them) → ``ts AT TIME ZONE 'UTC' AT TIME ZONE z``.

    Athena (session zone UTC) reads a naive timestamp as a UTC instant and shows it in
    z; DuckDB reads a naive timestamp as wall-clock time *in* z. Pinning the naive
    value to UTC first, then converting once to the outermost zone, gives Athena's
    wall-clock result (as a naive timestamp). Only naive operands (columns, TIMESTAMP
    literals) are pinned; a time-zone-aware operand already means the same in both.
    """
    for node in list(expression.find_all(exp.AtTimeZone)):
        parent = node.parent
        while isinstance(parent, exp.Paren):
            parent = parent.parent
        if isinstance(parent, exp.AtTimeZone):
            continue  # not the outermost of a chain
        base = _strip_parens(node.this)
        while isinstance(base, exp.AtTimeZone):
            base = _strip_parens(base.this)
        if not _is_naive(base):
            continue
        pinned = exp.AtTimeZone(this=base.copy(), zone=exp.Literal.string("UTC"))
        node.replace(exp.AtTimeZone(this=pinned, zone=node.args["zone"].copy()))
    return expression



def _json_path_text(path: exp.Expression) -> str | None:
    """A parsed JSON path literal back to Trino's text (``$.a[0]["b c"]``)."""
    out = []
    for part in path.expressions:
        if isinstance(part, exp.JSONPathRoot):
            out.append("$")
        elif isinstance(part, exp.JSONPathKey) and isinstance(part.this, str):
            name = part.this
            out.append(f".{name}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else f"[{json.dumps(name)}]")
        elif isinstance(part, exp.JSONPathSubscript) and isinstance(part.this, int):
            out.append(f"[{part.this}]")
        else:
            return None
    return "".join(out)


# DuckDB reads these paths as Trino does; anything else goes to the Python implementation.
_DUCKDB_SAFE_PATH = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*")


def _json_extract_scalar_sql(self: Any, expression: exp.JSONExtractScalar) -> str:
    # Trino returns a number's exact text and NULL for an object or array; DuckDB's ->>
    # re-serialises numbers through a double and returns objects as JSON text.
    path = expression.expression
    if isinstance(path, exp.JSONPath):
        text = _json_path_text(path)
        if text is None:
            return self.func(JSON_EXTRACT_SCALAR_EXACT, expression.this, exp.Literal.string(path.sql()))
        literal = exp.Literal.string(text)
        if _DUCKDB_SAFE_PATH.fullmatch(text):
            return self.func(JSON_EXTRACT_SCALAR_FUNCTION, expression.this, literal)
        return self.func(JSON_EXTRACT_SCALAR_EXACT, expression.this, literal)
    return self.func(JSON_EXTRACT_SCALAR_EXACT, expression.this, path)


def _json_array_contains_sql(self: Any, expression: exp.JSONArrayContains) -> str:
    return self.func(JSON_ARRAY_CONTAINS_FUNCTION, expression.this, expression.expression)


def _typeof_sql(self: Any, expression: exp.Typeof) -> str:
    arg = expression.this
    if isinstance(arg, exp.Literal) and arg.is_string:  # Trino: a string literal is varchar(<length>)
        return self.sql(exp.Literal.string(f"varchar({len(arg.this)})"))
    return self.func(TYPE_NAME_FUNCTION, exp.Anonymous(this="typeof", expressions=[arg.copy()]))


def _anonymous_sql(self: Any, expression: exp.Anonymous) -> str:
    name = expression.name.lower()
    args = expression.expressions
    if name == "format_datetime" and len(args) == 2:
        return self.func(FORMAT_DATETIME_FUNCTION, exp.cast(args[0].copy(), "timestamp"), args[1])
    if name == "map_agg" and len(args) == 2:
        # Trino skips NULL keys and keeps one value per key; DuckDB's map rejects both.
        key, value = args
        entries = exp.Anonymous(this="list", expressions=[exp.Anonymous(this="struct_pack", expressions=[
            exp.PropertyEQ(this=exp.to_identifier("k"), expression=key.copy()),
            exp.PropertyEQ(this=exp.to_identifier("v"), expression=value.copy())])])
        filtered = exp.Filter(this=entries, expression=exp.Where(this=exp.Not(this=exp.Is(
            this=key.copy(), expression=exp.Null()))))
        return self.func(MAP_FROM_ENTRIES_FUNCTION, filtered)
    return _BASE_ANONYMOUS(self, expression)


def name_unnamed_columns(expression: exp.Expr) -> exp.Expr:
    """Name the result columns of the statement as Trino does: an expression without an alias
    gets a placeholder name (the engine renames it ``_col<position>`` once ``*`` is expanded);
    ``"$path"`` keeps its name."""
    select = expression
    while isinstance(select, exp.SetOperation):
        select = select.this
    if expression.parent is not None or not isinstance(select, exp.Select):
        return expression
    for i, projection in enumerate(list(select.expressions)):
        if isinstance(projection, (exp.Alias, exp.Star)):
            continue
        if isinstance(projection, exp.Column):
            if projection.name == "$path":
                projection.replace(exp.alias_(projection.copy(), "$path", quoted=True))
            continue
        projection.replace(exp.alias_(projection.copy(), f"{UNNAMED_PREFIX}{i}"))
    return expression

_BASE_JSONFORMAT = DuckDB.Generator.TRANSFORMS[exp.JSONFormat]
_BASE_ANONYMOUS: Any = DuckDB.Generator.anonymous_sql
_DuckDBGenerator: Any = DuckDB.Generator


class LakeDuckDB(DuckDB):
    """DuckDB as the lake's local Athena: sqlglot's DuckDB plus the fixes above."""

    class Generator(_DuckDBGenerator):
        TRANSFORMS: ClassVar[dict] = {  # type: ignore[type-arg]
            **DuckDB.Generator.TRANSFORMS,
            exp.JSONFormat: _jsonformat_sql,
            exp.Column: _column_sql,
            exp.JSONExtractScalar: _json_extract_scalar_sql,
            exp.JSONArrayContains: _json_array_contains_sql,
            exp.Typeof: _typeof_sql,
            exp.Anonymous: _anonymous_sql,
        }

        def preprocess(self, expression: exp.Expr) -> exp.Expr:
            fixed = name_unnamed_columns(naive_utc_at_time_zone(unnest_join_to_projection(expression.copy())))
            return super().preprocess(fixed)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Position:
    line: int
    col: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.col}"


_SQLGLOT_LOG = logging.getLogger("sqlglot")


def parse(sql: str) -> list[exp.Expression]:
    """Parse Athena SQL (one or more statements), raising QueryError with the position."""
    try:
        # sqlglot logs a warning when it falls back to an opaque command; the guard
        # (lake.query.guard) refuses those with a message of its own.
        level = _SQLGLOT_LOG.level
        _SQLGLOT_LOG.setLevel(logging.ERROR)
        try:
            parsed: list[Any] = sqlglot.parse(sql, read=Athena)
        finally:
            _SQLGLOT_LOG.setLevel(level)
        return [e for e in parsed if e is not None]
    except ParseError as e:
        first = e.errors[0] if e.errors else {}
        line, col = first.get("line"), first.get("col")
        where = f" at line {line}, column {col}" if line else ""
        desc = str(first.get("description") or e).split(". Line")[0]
        raise QueryError(f"SQL syntax error{where}: {desc}") from None
    except TokenError as e:
        raise QueryError(f"SQL syntax error: {e}") from None


def to_duckdb(statement: exp.Expression) -> str:
    """One parsed Athena statement as DuckDB SQL."""
    return statement.sql(dialect=LakeDuckDB)


def transpile(sql: str) -> list[str]:
    """Athena SQL text → DuckDB statements."""
    return [to_duckdb(e) for e in parse(sql)]


def referenced_tables(statement: exp.Expression) -> list[exp.Table]:
    """Tables a statement reads (CTE names excluded), with their source positions."""
    ctes = {c.alias_or_name.lower() for c in statement.find_all(exp.CTE)}
    out = []
    for table in statement.find_all(exp.Table):
        if not table.name or isinstance(table.this, exp.Func) or table.name.lower() in ctes:
            continue
        out.append(table)
    return out


def position(node: exp.Expression) -> Position | None:
    """Where ``node`` starts in the source text, when sqlglot recorded it."""
    meta = node.this.meta if isinstance(node.this, exp.Expression) else node.meta
    if "line" in meta:
        # sqlglot's col is the token's last column; report its first.
        length = max(1, int(meta.get("end", 0)) - int(meta.get("start", 0)) + 1)
        return Position(int(meta["line"]), int(meta["col"]) - length + 1)
    return None
