"""A handler for e2e tests: appends every record it receives to the file named by $LAKE_SINK_FILE."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with open(os.environ["LAKE_SINK_FILE"], "a") as f:
        for record in event["Records"]:
            f.write(json.dumps({"received_at": time.time(), "record": record}) + "\n")
    return {"batchItemFailures": []}
