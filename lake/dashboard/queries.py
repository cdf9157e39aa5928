"""The dashboard's SQL: ``athena_queries/dashboard/<query>.sql``, rendered like every other file there.

The same text runs on DuckDB (``lake dashboard``), on Athena, and as QuickSight's custom SQL.
A ``?`` is bound to a setting: by the engine locally, as a quoted literal in QuickSight's text
(custom SQL has no execution parameters).
"""

from __future__ import annotations

from pathlib import Path

from sqlglot import exp

from lake.dashboard.visuals import Visual, check_attribute
from lake.errors import QueryError
from lake.query.dialect import parse
from lake.query.sqlfiles import placeholders, queries_dir, render
from lake.settings import Settings


def query_path(v: Visual) -> Path:
    return queries_dir() / "dashboard" / f"{v.query}.sql"


def query_text(v: Visual, settings: Settings) -> str:
    """The visual's SQL with its ``${...}`` placeholders filled, ``?`` left for the engine."""
    return render(query_path(v).read_text(), placeholders(settings))


def query_params(v: Visual, settings: Settings) -> list[str]:
    values = []
    for name in v.params:
        value = str(getattr(settings, name))
        values.append(check_attribute(value) if name == "dashboard_attribute" else value)
    return values


def bound_text(v: Visual, settings: Settings) -> str:
    """The SQL with each ``?`` replaced by its value as a SQL string literal (QuickSight's custom SQL)."""
    text = query_text(v, settings)
    params = query_params(v, settings)
    placeholders_found = sum(1 for _ in parse(text)[0].find_all(exp.Placeholder))
    if placeholders_found != len(params) or text.count("?") != len(params):
        # a '?' inside a comment or a string would be replaced too: refuse rather than guess
        raise QueryError(f"{query_path(v)}: {placeholders_found} placeholder(s), {text.count('?')} '?' "
                         f"characters and {len(params)} value(s)")
    for value in params:
        text = text.replace("?", "'" + value.replace("'", "''") + "'", 1)
    return text

