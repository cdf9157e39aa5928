"""Calling a handler as Lambda does: a context object, a time limit, the partial-failure reply."""

from __future__ import annotations

import importlib
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lake.errors import ConfigError

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaContext:
    """The attributes of Lambda's Python context object that handlers use."""

    def __init__(self, function_name: str, function_arn: str, memory_mb: int, timeout_s: float,
                 log_stream: str) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def resolve_handler(function: str | Callable[..., Any]) -> Handler:
    """``"package.module:function"`` imported now (not at mapping definition), or a callable."""
    if callable(function):
        return function
    module_name, sep, attr = function.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"handler {function!r}: expected 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"handler {function!r}: cannot import module {module_name!r}: {e}") from e
    try:
        handler = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"handler {function!r}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(handler):
        raise ConfigError(f"handler {function!r} is not callable")
    return handler  # type: ignore[no-any-return]


log = logging.getLogger("lake.local.runtime")


@dataclass(frozen=True)
class Outcome:
    """What one invocation came to."""

    ok: bool
    failed_seqs: tuple[str, ...] = ()  # partial failure: the identifiers the handler reported
    error: str | None = None  # why the whole batch failed
    function_error: str | None = None  # "Unhandled" when it raised or timed out
    timed_out: bool = False


def invoke(handler: Handler, event: dict[str, Any], context: LambdaContext, timeout_s: float) -> tuple[str, Any]:
    """Run the handler in a worker thread; ``("ok", result)``, ``("error", text)`` or ``("timeout", msg)``.

    A handler past its time limit is abandoned, as Lambda's sandbox is torn down; the
    thread is a daemon so it cannot keep the process alive.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = handler(event, context)
        except BaseException as e:  # a handler's SystemExit is still its failure, not ours
            box["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"

    worker = threading.Thread(target=run, name=f"invoke-{context.function_name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        # Lambda kills a timed-out sandbox; a thread can't be killed. Give it one more
        # timeout to finish before the retry starts, so the retry doesn't run beside it
        # (two invocations writing the same keys at once would break per-key order).
        worker.join(timeout_s)
        if worker.is_alive():
            log.error("%s: handler still running %.0f s after its timeout; retrying beside it",
                      context.function_name, timeout_s)
        return "timeout", f"Task timed out after {timeout_s:.2f} seconds"
    if "error" in box:
        return "error", box["error"]
    return "ok", box.get("result")


def interpret(kind: str, result: Any, seqs: Sequence[str], report_batch_item_failures: bool) -> Outcome:
    """Map a handler's reply to an outcome, with AWS's rules for ``batchItemFailures``.

    Success: any reply without ReportBatchItemFailures; with it, ``None``, ``{}``, or a
    null, absent or empty ``batchItemFailures`` (AWS: "a null batchItemFailures list" is a
    complete success). Whole-batch failure: a reply that is not an object, an entry
    without a non-empty string ``itemIdentifier``, or an identifier that is not in the batch.
    """
    if kind == "timeout":
        return Outcome(False, error=str(result), function_error="Unhandled", timed_out=True)
    if kind == "error":
        return Outcome(False, error=str(result), function_error="Unhandled")
    if not report_batch_item_failures or result is None:
        return Outcome(True)
    if not isinstance(result, Mapping):
        return Outcome(False, error=f"malformed batch response (not an object): {result!r:.200}")
    failures = result.get("batchItemFailures")
    if failures is None or failures == []:
        return Outcome(True)
    if not isinstance(failures, list):
        return Outcome(False, error=f"malformed batchItemFailures (not a list): {failures!r:.200}")
    known = set(seqs)
    reported = []
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(ident, str) or not ident:
            return Outcome(False, error=f"malformed batchItemFailures entry: {item!r:.200}")
        if ident not in known:
            return Outcome(False, error=f"batchItemFailures names {ident!r}, which is not in the batch")
        reported.append(ident)
    return Outcome(False, failed_seqs=tuple(reported), error=f"{len(reported)} record(s) reported failed")
