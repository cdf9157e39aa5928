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

import threading
from typing import Any

from lake.archive.writer import archive_event
from lake.aws.clients import Clients
from lake.settings import Settings

_lock = threading.Lock()
_settings: Settings | None = None
_clients: Clients | None = None


def configure(settings: Settings | None = None, clients: Clients | None = None) -> None:
    """Inject settings and/or clients (``None`` resets to "resolve on next invocation")."""
    global _settings, _clients
    with _lock:
        _settings = settings if settings is not None else (clients.settings if clients else None)
        _clients = clients


def _runtime() -> tuple[Settings, Clients]:
    global _settings, _clients
    with _lock:
        if _settings is None:
            _settings = Settings.resolve()
        if _clients is None:
            _clients = Clients(_settings)
        return _settings, _clients


def lambda_handler(event: Any, context: Any = None) -> dict[str, list[dict[str, str]]]:
    """Archive the batch; report records whose S3 write failed so Lambda retries them."""
    settings, clients = _runtime()
    return archive_event(event, settings, clients).response()


handler = lambda_handler
