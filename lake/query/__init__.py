"""Athena SQL over the lake: the same ``.sql`` text on Athena and, through sqlglot and
DuckDB, on the embedded AWS.

``LocalEngine(settings, clients).query(sql) -> pyarrow.Table`` runs locally
(``lake.query.local``); ``AthenaEngine(settings)`` runs on AWS (``lake.query.athena``);
``lake.query.engine.engine_for(settings, "local" | "athena")`` picks one;
``lake.query.local.demo_tables(settings)`` gives ``lake demo`` its audit rows and volumes.

Locally: ``dialect`` turns Athena SQL into DuckDB SQL, ``functions`` prepares and locks the
DuckDB session (Trino's functions as macros and Python functions from ``trino``), ``guard``
refuses what the local engine must not or cannot run (naming it, pointing at docs/SQL.md).
docs/SQL.md, generated from the corpus in
``tests/sql_corpus``, says what runs locally with Athena's answer.
"""
