"""What every trigger of an app shares: calling a function as Lambda does, counting, polling a queue.

A :class:`FunctionTarget` is one declared function: its handler, resolved once, called
through the runtime's :func:`lake.local.runtime.invoke.invoke` (own thread, time limit on
the clock) with a :class:`lake.invocation.LambdaContext`, every event kept for tests.

A :class:`QueuePoller` is a thread that receives from one SQS queue of the embedded AWS
and hands each batch to its subclass. Every trigger that is not a stream is one: an SQS
event source mapping polls the user's queue; SNS, S3 and EventBridge deliveries to Lambda
or Step Functions arrive in a hidden queue the runtime subscribed on the embedded AWS (its
own SNS → SQS, S3 → SQS, EventBridge → SQS deliveries, filters included), which keeps one
mechanism for polling, backoff and idleness.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lake.aws.clients import Clients
from lake.aws.errors import AWS_ERRORS
from lake.clock import Clock
from lake.invocation import Handler, LambdaContext
from lake.local.runtime.invoke import Kind, invoke
from lake.local.runtime.mapping import Counters

log = logging.getLogger("lake.local.triggers")

# Lambda's asynchronous invocations (SNS, S3, EventBridge) retry a failed event twice.
ASYNC_RETRIES = 2


@dataclass
class TriggerStats(Counters):
    """Counters of one trigger (read them; the trigger updates them under a lock)."""

    received: int = 0  # messages or events taken from the source
    invocations: int = 0
    function_errors: int = 0  # invocations that raised, timed out or reported failures
    retries: int = 0  # asynchronous re-invocations of an event that failed
    succeeded: int = 0  # records or events processed (deleted from the queue)
    failed_items: int = 0  # records left on the queue (whole-batch failures and batchItemFailures)
    blocked_in_group: int = 0  # FIFO: records kept back behind a failed one of their message group
    dead_lettered: int = 0  # records that reached maxReceiveCount: the queue's redrive moves them next
    dropped: int = 0  # asynchronous events given up after their retries
    filtered: int = 0  # skipped (S3 test events)
    executions: int = 0  # state machine executions started
    sent: int = 0  # messages sent to a queue target


class FunctionTarget:
    """One declared function, called in this process as Lambda would, every event recorded."""

    def __init__(self, name: str, handler: Handler, *, region: str, clock: Clock, timeout_s: float = 30.0,
                 memory_mb: int = 128) -> None:
        self.name, self.handler, self.region, self.clock = name, handler, region, clock
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def context(self) -> LambdaContext:
        return LambdaContext(self.name, region=self.region, memory_limit_in_mb=self.memory_mb,
                             timeout_s=self.timeout_s, clock=self.clock)

    def record(self, trigger: str, event: Any, kind: str, result: Any) -> None:
        with self._lock:
            self.received.append({"trigger": trigger, "event": event, "outcome": kind,
                                  "result": result if kind == "ok" else str(result)[:2000]})

    def call(self, trigger: str, event: dict[str, Any]) -> tuple[Kind, Any]:
        """One invocation: ``("ok", reply)``, ``("error", text)`` or ``("timeout", text)``."""
        kind, result = invoke(self.handler, event, self.context(), self.timeout_s, self.clock)
        self.record(trigger, event, kind, result)
        if kind != "ok":
            log.warning("%s (%s): %s", self.name, trigger, str(result).splitlines()[0] if result else kind)
        return kind, result

    def call_async(self, trigger: str, event: dict[str, Any], stats: TriggerStats) -> bool:
        """An asynchronous invocation (SNS, S3, EventBridge): retried twice, then dropped (False).

        Lambda waits a minute, then two, between the attempts; locally they follow at once.
        """
        for attempt in range(ASYNC_RETRIES + 1):
            stats.add(invocations=1, retries=1 if attempt else 0)
            kind, _ = self.call(trigger, event)
            if kind == "ok":
                return True
            stats.add(function_errors=1)
        stats.add(dropped=1)
        log.error("%s (%s): event dropped after %d retries", self.name, trigger, ASYNC_RETRIES)
        return False

    def as_stream_handler(self, trigger: str) -> Handler:
        """The handler given to the stream runtime (lake.local.runtime), recording each event."""
        def handler(event: dict[str, Any], context: Any) -> Any:
            try:
                result = self.handler(event, context)
            except BaseException as e:
                self.record(trigger, event, "error", f"{type(e).__name__}: {e}")
                raise
            self.record(trigger, event, "ok", result)
            return result

        # The mapping's id (its checkpoint's name) is derived from these: stable across runs.
        handler.__module__ = "lake.apps"
        handler.__qualname__ = f"{self.name}.{trigger}"
        handler.__name__ = self.name
        return handler


class QueuePoller:
    """A thread receiving batches from one queue; subclasses say what a batch means (:meth:`handle`).

    Idle polls back off from ``poll_interval_s`` to ``max_idle_s`` (real time); :meth:`wake`
    makes the next poll happen now. A batch in flight or a visible message makes it busy.
    """

    def __init__(self, name: str, clients: Clients, queue_url: str, *, batch_size: int = 10,
                 poll_interval_s: float = 0.05, max_idle_s: float = 0.5) -> None:
        self.name, self.clients, self.queue_url = name, clients, queue_url
        self.batch_size = batch_size
        self.poll_interval_s, self.max_idle_s = poll_interval_s, max(poll_interval_s, max_idle_s)
        self.stats = TriggerStats()
        self.on_activity: Callable[[], None] = lambda: None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._busy = False
        self._batches = 0  # batches received: idle() sees one handled while it looked
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # -- what subclasses provide ------------------------------------------------------------
    def receive(self, count: int | None = None) -> list[dict[str, Any]]:
        resp = self.clients.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=max(1, min(10, count or self.batch_size)), WaitTimeSeconds=0,
            AttributeNames=["All"], MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
        return list(resp.get("Messages", []))

    def handle(self, messages: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def delete(self, messages: list[dict[str, Any]]) -> None:
        for i in range(0, len(messages), 10):
            chunk = messages[i:i + 10]
            self.clients.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)])

    # -- the loop ---------------------------------------------------------------------------
    def poll_once(self) -> bool:
        """Receive one batch and handle it; True if there was one.

        Busy only while handling: a receive in progress leaves its messages counted by
        :meth:`pending` (visible before, in flight after), so idle() cannot miss them.
        """
        messages = self.receive()
        if not messages:
            return False
        self._batches += 1
        self._busy = True
        try:
            self.stats.add(received=len(messages))
            self.handle(messages)
            return True
        finally:
            self._busy = False
            self.on_activity()

    def _run(self) -> None:
        idle = self.poll_interval_s
        while not self._stop.is_set():
            try:
                did = self.poll_once()
                self.last_error = None
            except AWS_ERRORS as e:
                did = False
                self.last_error = str(e)
                log.warning("%s: polling failed: %s", self.name, e)
            except Exception as e:  # a bug in one trigger must not stop the others
                did = False
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("%s: trigger failed", self.name)
            if did:
                idle = self.poll_interval_s
                continue
            self._wake.wait(idle)
            if self._wake.is_set():
                self._wake.clear()
                idle = self.poll_interval_s
            else:
                idle = min(idle * 2, self.max_idle_s)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"trigger-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def pending(self) -> int:
        """Messages on the queue, visible or in flight (a failed one waiting for its visibility timeout)."""
        attrs = self.clients.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                     "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
            attrs.get("ApproximateNumberOfMessagesNotVisible", 0))

    def idle(self) -> bool:
        """Nothing being handled and nothing on the queue, visible or in flight: a message that
        failed and waits for its visibility timeout is work still to do (a queue without a
        redrive policy and a message that always fails is never idle, as on AWS it never drains)."""
        before = self._batches
        if self._busy or self.pending() != 0:
            return False
        return not self._busy and self._batches == before

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "queue": self.queue_url, "last_error": self.last_error, **self.stats.as_dict()}
