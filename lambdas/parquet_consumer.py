"""Lambda: the lake's Kinesis stream → the curated zone's Apache Iceberg tables (docs/adr/0003)."""

from __future__ import annotations

from typing import Any

from lake.aws.clients import HandlerRuntime
from lake.curate import curate

_runtime = HandlerRuntime()
configure = _runtime.configure


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Curate a Kinesis batch; report records to retry as batch item failures."""
    settings, clients = _runtime.get()
    return curate(settings, event.get("Records") or [], clients=clients).response()
