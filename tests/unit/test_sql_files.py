"""Every .sql file of athena_queries parses as Athena SQL, and every view transpiles to
DuckDB SQL that DuckDB itself accepts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlglot

from lake.errors import ConfigError
from lake.query import functions
from lake.query.dialect import transpile
from lake.query.sqlfiles import all_sql_files, load_views, queries_dir, render
from lake.settings import Settings

FILES = all_sql_files()


def test_the_tree_has_the_expected_files() -> None:
    names = {p.relative_to(queries_dir()).as_posix() for p in FILES}
    assert {"ddl/changes.sql", "ddl/raw_changes.sql", "views/audit_trail.sql", "views/current_state.sql",
            "views/change_volume.sql", "views/deletions.sql", "queries/current_state_as_of.sql",
            "queries/raw_objects_for_key.sql"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(queries_dir()).as_posix())
def test_parses_with_sqlglot_athena(path: Path) -> None:
    statements = [s for s in sqlglot.parse(path.read_text(), read="athena") if s is not None]
    assert len(statements) == 1


# athena_only/: queries of Athena's Iceberg metadata tables ("changes$files"), which DuckDB cannot name
@pytest.mark.parametrize("path", [p for p in FILES if p.parent.name not in ("ddl", "athena_only")],
                         ids=lambda p: p.relative_to(queries_dir()).as_posix())
def test_dml_transpiles_to_sql_duckdb_can_plan(path: Path) -> None:
    con = duckdb.connect()
    functions.prepare(con)
    # empty stand-ins with the contract's columns, so DuckDB binds every name
    con.execute("""CREATE TABLE changes (event_id VARCHAR, event_name VARCHAR, event_time TIMESTAMP,
        sequence_number VARCHAR, shard_id VARCHAR, source_sequence_number VARCHAR, keys VARCHAR, key VARCHAR,
        old_image VARCHAR, new_image VARCHAR, changed_attributes VARCHAR[], is_ttl_delete BOOLEAN,
        user_identity VARCHAR, size_bytes BIGINT, table_name VARCHAR, dt VARCHAR)""")
    con.execute("""CREATE TABLE raw_changes (lake STRUCT("table" VARCHAR, key VARCHAR, seq VARCHAR, t BIGINT,
        event VARCHAR, id VARCHAR, ttl BOOLEAN), record VARCHAR, "table" VARCHAR, dt VARCHAR, hour INTEGER,
        filename VARCHAR)""")
    for view in load_views(Settings()):
        con.execute(transpile(view.sql)[0])
    sql = transpile(render(path.read_text(), {"actor_attribute": "updated_by"}))[0]
    n_params = sql.count("?")
    con.execute(sql, ["2024-01-01 00:00:00"] * n_params if n_params else None).fetchall()


def test_actor_attribute_is_configurable_and_checked() -> None:
    views = {v.name: v for v in load_views(Settings(actor_attribute="changed_by"))}
    assert "'$.changed_by'" in views["audit_trail"].sql
    with pytest.raises(ConfigError):
        load_views(Settings(actor_attribute="bad name'"))


def test_views_come_dependencies_first() -> None:
    order = [v.name for v in load_views(Settings())]
    assert order.index("changes_unique") < min(order.index(n) for n in
                                               ("audit_trail", "current_state", "change_volume", "deletions"))
