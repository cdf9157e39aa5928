"""Athena through awswrangler: the same SQL text, run where the lake lives on AWS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lake.aws.clients import Clients
from lake.aws.errors import AWS_ERRORS, translate
from lake.errors import QueryError, TerminalError
from lake.query import dialect
from lake.query.engine import QueryResult
from lake.settings import Settings


class AthenaEngine:
    """Run Athena SQL in ``settings.athena_workgroup``, results to ``settings.athena_output_location``."""

    name = "athena"

    def __init__(self, settings: Settings, clients: Clients | None = None) -> None:
        self.settings = settings
        self.clients = clients or Clients(settings)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        return self.query_with_stats(sql, params).table

    def query_with_stats(self, sql: str, params: Sequence[Any] | None = None) -> QueryResult:
        """Run ``sql``; ``?`` placeholders become Athena execution parameters."""
        import awswrangler as wr

        dialect.parse(sql)  # syntax errors with a position, before paying for a query
        try:
            df = wr.athena.read_sql_query(
                sql,
                database=self.settings.glue_database,
                workgroup=self.settings.athena_workgroup,
                s3_output=self.settings.athena_output_location,
                ctas_approach=False,
                params=[_param(p) for p in params] if params else None,
                paramstyle="qmark",
                boto3_session=self.clients.session,
            )
        except wr.exceptions.QueryFailed as e:
            raise QueryError(f"Athena: {e}") from None
        except AWS_ERRORS as e:
            err = translate(e, "Athena workgroup", self.settings.athena_workgroup)
            # a refused request (bad SQL, an unknown table) is the query's fault; throttling, a
            # missing workgroup or an unreachable endpoint say so themselves
            raise (QueryError(f"Athena: {e}") if isinstance(err, TerminalError) else err) from None
        meta = getattr(df, "query_metadata", None) or {}
        stats = meta.get("Statistics", {})
        return QueryResult(
            table=pa.Table.from_pandas(df, preserve_index=False),
            engine="athena",
            data_scanned_bytes=stats.get("DataScannedInBytes"),
            query_id=meta.get("QueryExecutionId"),
        )


def _param(value: Any) -> str:
    # Athena substitutes execution parameters as SQL literals.
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
