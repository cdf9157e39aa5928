"""One interface over the two engines: the embedded DuckDB and Athena."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pyarrow as pa

from lake.aws.clients import Clients
from lake.settings import Settings

EngineName = Literal["local", "athena"]


@dataclass(frozen=True)
class QueryResult:
    """Rows plus what the engine reports about the run."""

    table: pa.Table
    engine: EngineName
    data_scanned_bytes: int | None = None
    query_id: str | None = None


class Engine(Protocol):
    name: str

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table: ...


def run(engine: Any, sql: str, params: Sequence[Any] | None = None) -> QueryResult:
    """Run ``sql`` on ``engine``, with the Athena statistics when there are any."""
    if hasattr(engine, "query_with_stats"):
        result: QueryResult = engine.query_with_stats(sql, params)
        return result
    return QueryResult(engine.query(sql, params), "local")


def engine_for(settings: Settings, name: EngineName | None = None, clients: Clients | None = None) -> Any:
    """The engine to use: ``local`` on the embedded AWS, ``athena`` on AWS (default by endpoint)."""
    if name is None:
        name = "local" if settings.endpoint_url else "athena"
    if name == "local":
        from lake.query.local import LocalEngine

        return LocalEngine(settings, clients)
    from lake.query.athena import AthenaEngine

    return AthenaEngine(settings, clients)
