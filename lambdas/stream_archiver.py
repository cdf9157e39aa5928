"""Lambda: DynamoDB stream → raw zone of S3 (verbatim gzip JSON lines), partial batch failures.

Wire it to a table's stream with ``FunctionResponseTypes: [ReportBatchItemFailures]``.
Not Powertools' ``BatchProcessor``: that calls a handler per record, and the archiver
writes one object per partition of the whole batch; the response has the same shape
(``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}``).

Settings come from the environment (``Settings.resolve()``) and clients are built on
the first invocation, never at import; tests and the local runtime inject their own
with :func:`configure`.
"""

from __future__ import annotations

from typing import Any

from lake.archive.writer import archive_event
from lake.aws.clients import HandlerRuntime

_runtime = HandlerRuntime()
configure = _runtime.configure


def lambda_handler(event: Any, context: Any = None) -> dict[str, list[dict[str, str]]]:
    """Archive the batch; report records whose S3 write failed so Lambda retries them."""
    settings, clients = _runtime.get()
    return archive_event(event, settings, clients).response()


handler = lambda_handler
