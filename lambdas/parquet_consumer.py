"""The lake's Kinesis stream → Parquet in the curated zone (+ Glue partitions)."""

from __future__ import annotations

from typing import Any

from lake.curate import curate
from lake.settings import Settings


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Curate a Kinesis batch; report records to retry as batch item failures."""
    return curate(Settings.resolve(), event.get("Records") or []).response()
