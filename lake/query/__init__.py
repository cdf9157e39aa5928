"""Athena SQL over the lake: the same ``.sql`` text on Athena and, through sqlglot and
DuckDB, on the embedded AWS.

``LocalEngine(settings, clients).query(sql) -> pyarrow.Table`` runs locally;
``AthenaEngine(settings).query(sql)`` runs on AWS; :func:`engine_for` picks one.
"""

from __future__ import annotations

from lake.query.engine import Engine, QueryResult, engine_for
from lake.query.local import LocalEngine

__all__ = ["Engine", "LocalEngine", "QueryResult", "engine_for"]
