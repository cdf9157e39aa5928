"""Handlers in their own processes, as Lambda runs them apart from the services they call.

`lake up` is one Python process: the embedded AWS, the pollers and the handlers shared one
interpreter lock, one core. A mapping whose handler is named ``"module:function"`` can run it in
a worker process instead (``LocalRuntime(handler_processes=True)``): one process per shard of
the mapping (Lambda runs one invocation per shard at a time), started on the first invocation
and kept warm. The process reaches the embedded AWS over its loopback endpoint, like any other
client, with the settings the parent put in the environment.

The event goes over as the records' JSON, serialised once when they were read (the parent never
builds the event's objects); the reply comes back as the handler returned it. A handler past its
time limit has its process killed, as Lambda tears down a timed-out sandbox (a thread could
not be), and the next invocation starts a fresh one. A process that dies mid-invocation is that
invocation's error.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

from lake.clock import Clock
from lake.local.runtime.events import StreamRecord
from lake.local.runtime.invoke import Kind

log = logging.getLogger("lake.local.runtime")

_POLL_S = 0.05
INIT_TIMEOUT_S = 60.0
"""How long a worker process may take to start and import its handler (Lambda's init phase, apart
from the invocation's time limit)."""


_ORPHAN_CHECK_S = 0.1


def _die_with_parent(parent_pid: int) -> None:  # pragma: no cover - runs in the child
    """End this process within moments of its parent's death, however it died.

    A ``kill -9`` of ``lake up`` leaves its worker processes running (a daemon process is only
    ended by a parent that exits normally). An orphan mid-invocation goes on putting its batch's
    later records into whatever listens on the port next, a restarted ``lake up`` restored from
    an earlier state: ahead of records it had put before the kill, which the restore dropped,
    so a key's changes land out of order. A restart takes seconds; this check takes 0.1 s."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_ORPHAN_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="orphan-check", daemon=True).start()


def _serve(function: str, conn: Any, log_level: int, parent_pid: int) -> None:  # pragma: no cover - child
    """The worker process: import the handler once, then answer invocations until the pipe closes."""
    import orjson

    from lake.invocation import LambdaContext, resolve_handler

    _die_with_parent(parent_pid)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        handler = resolve_handler(function, task_root=os.getcwd())
    except BaseException as e:
        conn.send(("error", f"the handler could not be loaded: {type(e).__name__}: {e}"))
        return
    conn.send(("ready", None))  # initialised: the invocations' time limits start from here, as on Lambda
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        header, _, records = message.partition(b"\n")
        ctx_fields = orjson.loads(header)
        context = LambdaContext(**ctx_fields)
        event = {"Records": orjson.loads(records)}
        try:
            reply: tuple[str, Any] = ("ok", handler(event, context))
        except BaseException as e:  # a handler's SystemExit is still its failure
            reply = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}")
        try:
            conn.send(reply)
        except (TypeError, ValueError, AttributeError) as e:  # a reply that cannot be pickled
            conn.send(("ok", f"<unpicklable reply: {e}>"))


class ProcessHandler:
    """Invokes ``function`` ("module:function") in a warm worker process; one invocation at a time."""

    def __init__(self, function: str) -> None:
        self.function = function
        self._proc: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()
        self._exitcode: int | None = None

    def _start(self) -> str | None:
        """Start the process and wait for its handler to load; the reason it could not, if it could not."""
        ctx = mp.get_context("spawn")  # a fork would copy the parent's threads' locks mid-use
        parent, child = ctx.Pipe()
        level = logging.getLogger().getEffectiveLevel()
        self._proc = ctx.Process(target=_serve, args=(self.function, child, level, os.getpid()),
                                 name=f"lambda-{self.function}", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        try:
            if parent.poll(INIT_TIMEOUT_S):
                kind, detail = parent.recv()
                if kind == "ready":
                    return None
                self._kill()
                return str(detail)
        except (EOFError, OSError):
            pass
        self._kill()
        return f"the handler's process did not start within {INIT_TIMEOUT_S:g} s (exit code {self._exitcode})"

    def invoke(self, records: Sequence[StreamRecord], context: Any, timeout_s: float, clock: Clock,
               stopping: threading.Event) -> tuple[Kind, Any]:
        """``("ok", reply)``, ``("error", text)`` or ``("timeout", text)``, as :func:`invoke.invoke`.
        When ``stopping`` is set meanwhile the process is ended and the invocation fails."""
        import orjson

        from lake.local.runtime import invoke as hooks

        fault = hooks.draw_fault(context) if hooks.draw_fault is not None else None
        if fault == "handler.error":
            return "error", f"injected fault handler.error: {context.function_name} failed before it ran"
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                failed = self._start()
                if failed is not None:
                    return "error", failed
            header = orjson.dumps({
                "function_name": context.function_name, "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb, "log_stream_name": context.log_stream_name,
                "aws_request_id": context.aws_request_id,
                "timeout_s": context.get_remaining_time_in_millis() / 1000.0})
            body = b"[" + b",".join(r.body for r in records) + b"]"
            try:
                self._conn.send_bytes(header + b"\n" + body)
            except (OSError, ValueError) as e:
                self._kill()
                return "error", f"the handler's process could not be reached: {e}"
            deadline = clock.monotonic() + timeout_s
            while True:
                try:
                    if self._conn.poll(_POLL_S):
                        kind, result = self._conn.recv()
                        if fault == "handler.crash":  # it ran; its process dies before the reply counts
                            self._kill()
                            return "error", (f"injected fault handler.crash: {context.function_name}'s process "
                                             f"died after it ran (exit code {self._exitcode})")
                        return kind, result
                except (EOFError, OSError):
                    self._kill()  # reaped: its exit code is known
                    code = self._exitcode
                    return "error", f"the handler's process exited (code {code}) during the invocation"
                if stopping.is_set():
                    self._kill()
                    return "error", "the runtime stopped during the invocation"
                if clock.monotonic() >= deadline:
                    log.error("%s: handler timed out after %.2f s: its process is killed", self.function, timeout_s)
                    self._kill()
                    return "timeout", f"Task timed out after {timeout_s:.2f} seconds"

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(timeout=5)
            self._exitcode = self._proc.exitcode
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def close(self) -> None:
        """End the worker process (the runtime stopped, so no invocation is waiting for it)."""
        with self._lock:
            if self._proc is not None and self._conn is not None:
                self._conn.close()  # the child sees EOF and returns
                self._proc.join(timeout=2)
            self._kill()
