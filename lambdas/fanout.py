"""Lambda: DynamoDB stream → the lake's Kinesis stream (per-key order kept, partial batch failures)."""

from __future__ import annotations

from typing import Any

from lake.aws.clients import HandlerRuntime
from lake.fanout import publish

_runtime = HandlerRuntime()
configure = _runtime.configure


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Fan a DynamoDB stream batch out to Kinesis; report what could not be put."""
    settings, clients = _runtime.get()
    return publish(settings, event.get("Records") or [], clients=clients).response()
