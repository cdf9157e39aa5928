"""The ``athena_queries/`` tree: find the files, fill their ``${...}`` placeholders, order views.

Placeholders appear only inside string literals (locations, JSON paths, table
properties), so every file parses as Athena SQL before it is rendered.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp

from lake.errors import ConfigError, QueryError
from lake.query.dialect import parse, referenced_tables
from lake.settings import Settings

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def queries_dir() -> Path:
    """``athena_queries/`` of this checkout (``LAKE_QUERIES_DIR`` overrides)."""
    override = os.environ.get("LAKE_QUERIES_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "athena_queries"


def placeholders(settings: Settings) -> dict[str, str]:
    """Values of the ``${...}`` placeholders for ``settings``."""
    if not _SIMPLE_NAME.match(settings.actor_attribute):
        # It lands in a JSON path ('$.name'), which both engines accept only for plain names.
        raise ConfigError(f"actor_attribute {settings.actor_attribute!r} must be a plain attribute name")
    return {
        "bucket": settings.bucket,
        "prefix": settings.prefix.strip("/"),
        "database": settings.glue_database,
        "region": settings.region,
        "raw_url": settings.s3_url("raw"),
        "curated_url": settings.s3_url("curated"),
        "raw_location": settings.s3_url("raw"),
        "curated_location": settings.s3_url("curated"),
        "source_tables": ",".join(settings.table_names),
        "actor_attribute": settings.actor_attribute,
    }


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace ``${name}``; an unknown placeholder is an error, not an empty string."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise ConfigError(f"unknown placeholder ${{{name}}} (known: {', '.join(sorted(values))})")
        return values[name]

    return _PLACEHOLDER.sub(sub, text)


@dataclass(frozen=True)
class View:
    """A ``CREATE VIEW`` file: its name, rendered text and the tables/views it reads."""

    name: str
    path: Path
    sql: str
    depends_on: frozenset[str]


def load_views(settings: Settings, directory: Path | None = None) -> list[View]:
    """The views of ``athena_queries/views``, rendered, dependencies first."""
    directory = directory or queries_dir() / "views"
    values = placeholders(settings)
    views: dict[str, View] = {}
    for path in sorted(directory.glob("*.sql")):
        sql = render(path.read_text(), values)
        try:
            statements = parse(sql)
        except QueryError as e:
            raise QueryError(f"{path}: {e}") from None
        if len(statements) != 1 or not isinstance(statements[0], exp.Create):
            raise QueryError(f"{path}: expected exactly one CREATE VIEW statement")
        create = statements[0]
        name = create.this.name if isinstance(create.this, exp.Table) else create.this.this.name
        deps = frozenset(t.name.lower() for t in referenced_tables(create.expression))
        views[name.lower()] = View(name.lower(), path, sql, deps)
    return _toposort(views)


def _toposort(views: Mapping[str, View]) -> list[View]:
    out: list[View] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise QueryError(f"views depend on each other in a cycle: {' -> '.join((*chain, name))}")
        state[name] = 1
        for dep in sorted(views[name].depends_on):
            if dep in views:
                visit(dep, (*chain, name))
        state[name] = 2
        out.append(views[name])

    for name in sorted(views):
        visit(name, ())
    return out


def load_query(name_or_path: str, settings: Settings) -> str:
    """A named query (``current_state_as_of``) or a ``.sql`` path, rendered."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = queries_dir() / "queries" / f"{name_or_path}.sql"
    return render(path.read_text(), placeholders(settings))


def all_sql_files(root: Path | None = None) -> list[Path]:
    """Every ``.sql`` file under ``athena_queries/``."""
    return sorted((root or queries_dir()).rglob("*.sql"))
