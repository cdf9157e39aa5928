"""Calling a handler as Lambda does: in its own thread, with a time limit on the runtime's clock.

The context object, handler loading and the meaning of a reply are the product's
(:mod:`lake.invocation`, shared with replay); what is local is running the handler
beside the poller and abandoning it when its time is up.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Literal

from lake.clock import Clock
from lake.invocation import Handler, LambdaContext, Outcome, interpret

log = logging.getLogger("lake.local.runtime")

Kind = Literal["ok", "error", "timeout"]

# `lake up --faults` wraps every invocation here (lake.local.faults.install); None: none is.
wrap_handler: Callable[[Handler, LambdaContext], Handler] | None = None


def invoke(handler: Handler, event: dict[str, Any], context: LambdaContext, timeout_s: float,
           clock: Clock) -> tuple[Kind, Any]:
    """Run the handler in a worker thread; ``("ok", result)``, ``("error", text)`` or ``("timeout", msg)``.

    A handler past its time limit (``timeout_s`` on ``clock``) is abandoned, as Lambda's
    sandbox is torn down; the thread is a daemon so it cannot keep the process alive.
    """
    box: dict[str, Any] = {}
    done = threading.Event()
    if wrap_handler is not None:
        handler = wrap_handler(handler, context)

    def run() -> None:
        try:
            box["result"] = handler(event, context)
        except BaseException as e:  # a handler's SystemExit is still its failure, not ours
            box["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
        finally:
            done.set()

    worker = threading.Thread(target=run, name=f"invoke-{context.function_name}", daemon=True)
    worker.start()
    if not clock.wait(done, timeout_s):
        # Lambda kills a timed-out sandbox; a thread can't be killed. Give it one more
        # timeout to finish before the retry starts, so the retry doesn't run beside it
        # (two invocations writing the same keys at once would break per-key order).
        if not clock.wait(done, timeout_s):
            log.error("%s: handler still running %.0f s after its timeout; retrying beside it",
                      context.function_name, timeout_s)
        return "timeout", f"Task timed out after {timeout_s:.2f} seconds"
    if "error" in box:
        return "error", box["error"]
    return "ok", box.get("result")


def outcome(kind: Kind, result: Any, identifiers: Sequence[str], report_batch_item_failures: bool) -> Outcome:
    """What an invocation came to: a raise or a timeout is Lambda's ``Unhandled`` function
    error; a reply is read by :func:`lake.invocation.interpret`."""
    if kind == "timeout":
        return Outcome(False, error=str(result), function_error="Unhandled", timed_out=True)
    if kind == "error":
        return Outcome(False, error=str(result), function_error="Unhandled")
    return interpret(result, identifiers, report_batch_item_failures)
