"""``lake query [--engine local|athena] [--format table|csv|json] [--param V]... SQL_OR_FILE``.

SQL_OR_FILE is SQL text, a path to a ``.sql`` file, or the name of a query in
``athena_queries/queries`` (``current_state_as_of``). ``?`` placeholders are bound, in
order, to the ``--param`` values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lake.errors import QueryError
from lake.query import output
from lake.query.engine import engine_for
from lake.query.engine import run as run_query
from lake.query.sqlfiles import load_query, placeholders, queries_dir, render
from lake.settings import Settings


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``lake query``."""
    p = subparsers.add_parser(
        "query", parents=parents, help="run Athena SQL on the lake (locally: DuckDB; on AWS: Athena)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sql", metavar="SQL_OR_FILE", help="SQL text, a .sql file, or a named query")
    p.add_argument("--engine", choices=("local", "athena"), default=None,
                   help="default: local when --endpoint-url is set, else athena")
    p.add_argument("--format", dest="output_format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--param", action="append", default=[], metavar="VALUE",
                   help="value for the next ? placeholder (repeatable)")
    p.set_defaults(func=run)
    return p


def resolve_sql(text: str, settings: Settings) -> str:
    """SQL text, a ``.sql`` file path or a named query → rendered SQL."""
    path = Path(text)
    if text.endswith(".sql") or (len(text) < 256 and "\n" not in text and path.is_file()):
        if not path.is_file():
            raise QueryError(f"no such SQL file: {text}")
        return render(path.read_text(), placeholders(settings))
    named = queries_dir() / "queries" / f"{text}.sql"
    if text.isidentifier() and named.is_file():
        return load_query(text, settings)
    return render(text, placeholders(settings)) if "${" in text else text


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the query and print the result (and, on Athena, the data scanned)."""
    sql = resolve_sql(args.sql, settings)
    engine = engine_for(settings, args.engine)
    result = run_query(engine, sql, args.param or None)
    output.render(result.table, args.output_format)
    if result.data_scanned_bytes is not None:
        print(f"data scanned: {result.data_scanned_bytes / 1e6:.3f} MB (query {result.query_id})",
              file=sys.stderr)
    return 0
