"""Handlers for the runtime's worker-process tests: each appends what it got (and its pid) to the
file named by $LAKE_TEST_SINK, then behaves as its name says."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def _sink(event: dict[str, Any], context: Any, note: str = "") -> None:
    with open(os.environ["LAKE_TEST_SINK"], "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "note": note, "function": context.function_name,
                            "remaining_ms": context.get_remaining_time_in_millis(),
                            "seqs": [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]}) + "\n")


def record(event: dict[str, Any], context: Any) -> None:
    _sink(event, context)


def fail_first_seen(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Reports the batch's third record failed the first time it sees it."""
    _sink(event, context)
    seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    marker = os.environ["LAKE_TEST_SINK"] + ".seen"
    if len(seqs) >= 3 and not os.path.exists(marker):
        open(marker, "w").close()
        return {"batchItemFailures": [{"itemIdentifier": seqs[2]}]}
    return {"batchItemFailures": []}


def hang_once(event: dict[str, Any], context: Any) -> None:
    """The first invocation outlives its time limit; the next ones return at once."""
    marker = os.environ["LAKE_TEST_SINK"] + ".hung"
    if not os.path.exists(marker):
        open(marker, "w").close()
        _sink(event, context, "hanging")
        time.sleep(60)
    _sink(event, context)


def exit_once(event: dict[str, Any], context: Any) -> None:
    """The first invocation kills its own process."""
    marker = os.environ["LAKE_TEST_SINK"] + ".exited"
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    _sink(event, context)


def sleep_then_record(event: dict[str, Any], context: Any) -> None:
    """Busy for two seconds, then records: what an invocation does after its runtime died shows."""
    time.sleep(2)
    _sink(event, context, "after the sleep")
