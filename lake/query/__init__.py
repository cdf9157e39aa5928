"""Athena SQL over the lake: the same ``.sql`` text on Athena and, through sqlglot and
DuckDB, on the embedded AWS.

``LocalEngine(settings, clients).query(sql) -> pyarrow.Table`` runs locally
(``lake.query.local``); ``AthenaEngine(settings)`` runs on AWS (``lake.query.athena``);
``lake.query.engine.engine_for(settings, "local" | "athena")`` picks one;
``lake.query.local.demo_tables(settings)`` gives ``lake demo`` its audit rows and volumes.
"""
