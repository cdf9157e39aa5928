"""The Lambda invocation contract, as replay's ``python:`` target and the local runtime both need it.

Three things a caller of a Lambda handler owes it or must understand: the context object
(:class:`LambdaContext`), where a ``"module:function"`` handler comes from
(:func:`resolve_handler`), and what the handler's reply means for the batch
(:func:`interpret`, AWS's documented rules for ``batchItemFailures``). How the handler is
run (in this thread, in a thread with a time limit, through ``Invoke``) stays with the caller.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lake.clock import SYSTEM_CLOCK, Clock
from lake.errors import ConfigError

Handler = Callable[[dict[str, Any], Any], Any]

# The account in-process invocations claim (moto's default account, so ARNs line up with the
# embedded AWS).
ACCOUNT_ID = "123456789012"


def restore_environ(saved: Mapping[str, str | None]) -> None:
    """Put back the variables a handler's environment changed (``None``: it was unset)."""
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def function_arn(function_name: str, region: str = "us-east-1") -> str:
    """The ARN a function of that name has in :data:`ACCOUNT_ID`."""
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"


class LambdaContext:
    """The attributes of Lambda's Python context object that handlers (and Powertools) use.

    The remaining time counts down on ``clock`` from ``timeout_s``, so a test clock that
    stands still shows a handler exactly its time limit.
    """

    def __init__(self, function_name: str, *, invoked_function_arn: str | None = None, region: str = "us-east-1",
                 memory_limit_in_mb: int = 128, timeout_s: float = 900.0, log_stream_name: str | None = None,
                 aws_request_id: str | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = invoked_function_arn or function_arn(function_name, region)
        self.memory_limit_in_mb = memory_limit_in_mb
        self.log_group_name = f"/aws/lambda/{function_name}"
        if log_stream_name is None:
            day = time.strftime("%Y/%m/%d", time.gmtime(clock.now()))
            log_stream_name = f"{day}/[$LATEST]{uuid.uuid4().hex}"
        self.log_stream_name = log_stream_name
        self._clock = clock
        self._deadline = clock.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the time limit (0 once past it)."""
        return max(0, int((self._deadline - self._clock.monotonic()) * 1000))


def resolve_handler(function: str | Callable[..., Any], *, task_root: str | None = None) -> Handler:
    """``"package.module:function"`` (the function may be a dotted attribute path) imported now, or a callable.

    ``task_root``: a directory put first on ``sys.path`` (if it is not there yet) before
    importing, as Lambda's task root, so modules next to the user's code import.
    Raises :class:`ConfigError` naming what is missing.
    """
    if callable(function):
        return function
    module_name, sep, attr = function.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"handler {function!r}: expected 'module:function'")
    if task_root is not None and task_root not in sys.path:
        sys.path.insert(0, task_root)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"handler {function!r}: cannot import module {module_name!r}: {e}") from e
    for part in attr.split("."):
        obj = getattr(obj, part, _MISSING)
        if obj is _MISSING:
            raise ConfigError(f"handler {function!r}: module {module_name!r} has no attribute {attr!r}")
    if not callable(obj):
        raise ConfigError(f"handler {function!r} is not callable")
    return obj  # type: ignore[no-any-return]


_MISSING = object()


@dataclass(frozen=True)
class Outcome:
    """What one invocation came to, for a batch whose items are named by ``identifiers``."""

    ok: bool
    failed_items: tuple[str, ...] = ()  # partial failure: the item identifiers the handler reported
    error: str | None = None  # why the batch (or part of it) failed
    function_error: str | None = None  # "Unhandled" when the handler raised or timed out
    timed_out: bool = False

    def resume_index(self, identifiers: Sequence[str]) -> int | None:
        """Where Lambda takes the batch up again: None if it succeeded, the position of the
        lowest reported item after a partial failure, 0 after a failure of the whole batch."""
        if self.ok:
            return None
        if not self.failed_items:
            return 0
        reported = set(self.failed_items)
        return next(i for i, ident in enumerate(identifiers) if ident in reported)


def interpret(reply: Any, identifiers: Sequence[str], report_batch_item_failures: bool = True) -> Outcome:
    """What a handler's (returned, not raised) reply means, with AWS's rules for ``batchItemFailures``.

    Success: any reply without ReportBatchItemFailures; with it, ``None``, ``{}``, or a
    null, absent or empty ``batchItemFailures`` (AWS: "a null batchItemFailures list" is a
    complete success). Whole-batch failure: a reply that is not an object, an entry
    without a non-empty string ``itemIdentifier``, or an identifier that is not in the batch.
    Otherwise a partial failure naming the reported identifiers.
    """
    if not report_batch_item_failures or reply is None:
        return Outcome(True)
    if not isinstance(reply, Mapping):
        return Outcome(False, error=f"malformed batch response (not an object): {reply!r:.200}")
    failures = reply.get("batchItemFailures")
    if failures is None or failures == []:
        return Outcome(True)
    if not isinstance(failures, list):
        return Outcome(False, error=f"malformed batchItemFailures (not a list): {failures!r:.200}")
    known = set(identifiers)
    reported = []
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(ident, str) or not ident:
            return Outcome(False, error=f"malformed batchItemFailures entry: {item!r:.200}")
        if ident not in known:
            return Outcome(False, error=f"batchItemFailures names {ident!r}, which is not in the batch")
        reported.append(ident)
    return Outcome(False, failed_items=tuple(reported), error=f"{len(reported)} record(s) reported failed")
