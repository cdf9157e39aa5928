"""DynamoDB stream → the lake's Kinesis stream (per-key order kept, partial batch failures)."""

from __future__ import annotations

from typing import Any

from lake.fanout import publish
from lake.settings import Settings


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Fan a DynamoDB stream batch out to Kinesis; report what could not be put."""
    return publish(Settings.resolve(), event.get("Records") or []).response()
