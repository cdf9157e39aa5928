"""The re-drive loop: read the dead-letter queue, find each batch's records, send them back
through their stage, delete a message only once all its records succeeded, report per function.

A message whose records still fail (or cannot be found) stays in the queue, visible again at
the end of the run. Within a message the records are sent in order, a partial failure retried
from its lowest failed record (as Lambda does); messages are taken in stream order per
function and shard. The stages are idempotent (the raw zone's keys, the curated zone's
dedupe on eventID), so records of a message that succeeded before a later one failed may be
sent again by a later run without duplicating anything.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lake.clock import SYSTEM_CLOCK, Clock
from lake.errors import ConfigError, MalformedRecordError
from lake.prompt import refuse_unconfirmed
from lake.redrive.invokers import Invoker, LambdaInvoker, PythonInvoker
from lake.redrive.message import DeadLetter, parse_message, sequence_of
from lake.redrive.queue import DeadLetterQueue, Message
from lake.redrive.sources import Source, Unavailable, records_of
from lake.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedriveOptions:
    """How to re-drive. ``functions``: only messages of these functions (or stages); ``attempts``:
    invocations of a batch before it is left in the queue; ``yes`` / ``confirm`` as `lake replay`."""

    source: Source = "auto"
    dry_run: bool = False
    attempts: int = 3
    backoff_s: float = 0.5
    visibility_s: int = 300
    max_messages: int | None = None
    functions: tuple[str, ...] = ()
    queue: str | None = None
    handlers: tuple[tuple[str, str], ...] = ()  # (function, module:function) for the in-process invoker
    invoke: str = "auto"  # "python" (in this process), "lambda" (Invoke), "auto": python when local
    yes: bool = False
    confirm: Callable[[str], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError("--attempts must be at least 1")
        if self.invoke not in ("auto", "python", "lambda"):
            raise ConfigError(f"--invoke {self.invoke!r}: expected python, lambda or auto")


@dataclass
class FunctionReport:
    """What was re-driven for one function."""

    function: str
    messages: int = 0  # messages read
    records: int = 0  # records re-driven (or, in a dry run, that would be)
    succeeded: int = 0
    failing: int = 0  # records still failing (or not found): their messages stay in the queue
    deleted: int = 0  # messages deleted (all their records succeeded)
    sources: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, "messages": self.messages, "records": self.records,
                "succeeded": self.succeeded, "failing": self.failing, "deleted": self.deleted,
                "sources": dict(self.sources), "errors": self.errors[:20]}


@dataclass
class RedriveReport:
    queue_url: str
    dry_run: bool
    source: str
    functions: dict[str, FunctionReport] = field(default_factory=dict)
    unreadable: int = 0  # messages that are not stream on-failure messages: left alone
    skipped: int = 0  # messages of other functions than asked for: left alone

    @property
    def ok(self) -> bool:
        return not any(f.failing for f in self.functions.values())

    def totals(self) -> FunctionReport:
        total = FunctionReport("total")
        for f in self.functions.values():
            total.messages += f.messages
            total.records += f.records
            total.succeeded += f.succeeded
            total.failing += f.failing
            total.deleted += f.deleted
            total.sources.update(f.sources)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"queue_url": self.queue_url, "dry_run": self.dry_run, "source": self.source,
                "functions": [f.to_dict() for f in self.functions.values()], "total": self.totals().to_dict(),
                "unreadable": self.unreadable, "skipped": self.skipped}


def _refuse_remote(settings: Settings, options: RedriveOptions) -> None:
    if not (options.dry_run or settings.is_local):
        refuse_unconfirmed(settings, "redrive would invoke the lake's functions with dead-lettered records",
                           options.yes, options.confirm)


def _order(item: tuple[Message, DeadLetter]) -> tuple[str, str, str, int]:
    d = item[1]
    return d.function, d.stream_arn, d.shard_id, int(d.start_sequence)


def redrive(settings: Settings, options: RedriveOptions | None = None, clients: Any = None,
            invoker: Invoker | None = None, clock: Clock = SYSTEM_CLOCK) -> RedriveReport:
    """Send the dead-lettered records of ``settings``' queue back through their stages.

    ``clients`` (a :class:`lake.aws.clients.Clients`) is built from settings when not given;
    ``invoker`` overrides how a stage is invoked (in this process when the lake is local,
    else its Lambda function).
    """
    options = options or RedriveOptions()
    _refuse_remote(settings, options)
    if clients is None:
        from lake.aws.clients import Clients

        clients = Clients(settings)
    if invoker is None:
        local = options.invoke == "python" or (options.invoke == "auto" and settings.is_local)
        invoker = PythonInvoker(settings, dict(options.handlers)) if local else LambdaInvoker(clients.client("lambda"))
    queue = DeadLetterQueue(clients.sqs, options.queue or settings.dlq)
    report = RedriveReport(queue.url, options.dry_run, options.source)
    held: list[Message] = []  # received, to be made visible again at the end unless deleted
    work: list[tuple[Message, DeadLetter]] = []
    try:
        for msg in queue.receive(options.visibility_s, options.max_messages):
            held.append(msg)
            try:
                dead = parse_message(msg.body)
            except MalformedRecordError as e:
                report.unreadable += 1
                log.warning("message %s is not a stream on-failure message, left alone: %s", msg.id, e)
                continue
            if options.functions and not {dead.function, dead.stage} & set(options.functions):
                report.skipped += 1
                continue
            work.append((msg, dead))
        work.sort(key=_order)
        for msg, dead in work:
            rep = report.functions.setdefault(dead.function, FunctionReport(dead.function))
            rep.messages += 1
            try:
                used, records = records_of(dead, options.source, clients, settings.bucket, settings.prefix,
                                           settings.region)
            except Unavailable as e:
                rep.failing += dead.batch_size or 1
                rep.errors.append(f"{dead.shard_id} {dead.start_sequence}..{dead.end_sequence}: records not found "
                                  f"({e})")
                continue
            rep.sources[used] += 1
            rep.records += len(records)
            if options.dry_run:
                continue
            left = _send(invoker, dead, records, options, clock, rep)
            if left == 0:
                queue.delete(msg)
                held.remove(msg)
                rep.deleted += 1
    finally:
        for msg in held:
            queue.release(msg)
    return report


def _send(invoker: Invoker, dead: DeadLetter, records: list[Any], options: RedriveOptions, clock: Clock,
          rep: FunctionReport) -> int:
    """Invoke until every record succeeded or the attempts ran out; the number still failing."""
    pending = records
    for attempt in range(1, options.attempts + 1):
        out = invoker.invoke(dead.function_arn, dead.stage, pending)
        at = out.resume_index([sequence_of(r) for r in pending])
        if at is None:
            rep.succeeded += len(pending)
            return 0
        rep.succeeded += at
        pending = pending[at:]
        if attempt < options.attempts:
            clock.sleep(options.backoff_s * 2 ** (attempt - 1))
        else:
            first = (out.error or "failed").splitlines()[0]
            rep.errors.append(f"{dead.shard_id} {sequence_of(pending[0])}..{dead.end_sequence}: {first}")
    rep.failing += len(pending)
    return len(pending)
