"""Where replayed events go. A target spec is ``kind:name``:

* ``python:package.module:function`` — called in-process with the event dict and a
  Lambda-like context; a raised exception fails the whole batch, a returned
  ``{"batchItemFailures": [...]}`` fails from the lowest reported item (as Lambda).
* ``lambda:NAME_OR_ARN`` — ``Invoke`` (RequestResponse) with the event; a
  ``FunctionError`` fails the whole batch, ``batchItemFailures`` as above. Batches are
  also split to stay under Lambda's 6 MB synchronous payload limit.
* ``kinesis:STREAM`` — one Kinesis record per change (data = the stream record's JSON,
  unaltered; partition key :func:`lake.records.partition_key`), sent with the fan-out's
  :class:`lake.fanout.plan.SendPlan`: a ``PutRecords`` call never holds two changes of one
  item, so a partial failure cannot reorder an item.
* ``sqs:QUEUE`` (name or URL) — **one message per change** (body = the stream record's
  JSON). On a FIFO queue ``MessageGroupId`` is the item's partition key (order per item)
  and ``MessageDeduplicationId`` the eventID, so a retried send is not delivered twice
  (note: SQS deduplicates for 5 minutes, so replaying the same changes twice within
  5 minutes to a FIFO queue delivers them once).
* ``file:PATH`` — for inspection and tests. ``PATH`` ending in ``.jsonl``/``.ndjson``:
  one event (``{"Records": [...]}``) per line, appended. Otherwise a directory with one
  file per batch, ``batch-000001.json``, ... (numbering continues on ``--resume``).
* ``null:`` — discards the payloads (benchmarks, dry plumbing checks).

Boto3 appears only in the senders' calls, on injected clients.
"""

from __future__ import annotations

import hashlib
import operator
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from lake.aws.errors import AWS_ERRORS
from lake.clock import SYSTEM_CLOCK, Clock
from lake.errors import ConfigError, NotFoundError, TerminalError, TransientError
from lake.fanout.plan import Entry, SendPlan, chunks
from lake.invocation import Handler, LambdaContext, interpret, resolve_handler
from lake.records import partition_key
from lake.replay.source import Change

TargetKind = Literal["python", "lambda", "kinesis", "sqs", "file", "null"]
TARGET_KINDS: tuple[TargetKind, ...] = ("python", "lambda", "kinesis", "sqs", "file", "null")
REMOTE_KINDS = frozenset({"lambda", "kinesis", "sqs"})

LAMBDA_MAX_RECORDS = 10_000  # the largest DynamoDB-stream batch Lambda delivers
LAMBDA_MAX_PAYLOAD = 6 * 1024 * 1024  # synchronous Invoke request payload
SQS_MAX_ENTRIES, SQS_MAX_BYTES = 10, 256 * 1024


@dataclass(frozen=True)
class Target:
    """A parsed target spec; ``handler`` lets a library caller pass a function directly."""

    kind: TargetKind
    name: str
    handler: Handler | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, spec: str) -> Target:
        """``python:mod:func``, ``lambda:NAME``, ``kinesis:STREAM``, ``sqs:QUEUE``, ``file:PATH``, ``null:``."""
        kind, sep, name = spec.partition(":")
        if not sep or kind not in TARGET_KINDS:
            raise ConfigError(f"target {spec!r}: expected one of {', '.join(k + ':…' for k in TARGET_KINDS)}")
        if kind != "null" and not name:
            raise ConfigError(f"target {spec!r} names nothing after {kind}:")
        if kind == "python" and not re.match(r"^[\w.]+:[\w.]+$", name):
            raise ConfigError(f"target {spec!r}: expected python:package.module:function")
        return cls(kind, name)  # type: ignore[arg-type]

    @classmethod
    def python(cls, handler: Handler, name: str | None = None) -> Target:
        """An in-process target for a function object (not importable by name)."""
        label = name or f"{getattr(handler, '__module__', '?')}:{getattr(handler, '__qualname__', '?')}"
        return cls("python", label, handler)

    def render(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def is_remote(self) -> bool:
        """A target that changes something in an AWS account (needs a confirmation off-local)."""
        return self.kind in REMOTE_KINDS


@dataclass(frozen=True)
class SendResult:
    """What the target acknowledged: everything (``failed_index is None``) or the prefix
    before ``failed_index``, with the reason and the identifiers the target reported."""

    failed_index: int | None = None
    reason: str = ""
    reported: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.failed_index is None


class Sender(Protocol):
    max_payload_bytes: int | None

    def send(self, changes: Sequence[Change], payload: bytes) -> SendResult: ...

    def close(self) -> None: ...


def event_payload(changes: Sequence[Change]) -> bytes:
    """The Lambda event, built by splicing the archived record bytes (no re-serialisation)."""
    records = list(map(_RECORD, changes))
    if not records:
        return b'{"Records":[]}'
    # one join, so each record's bytes are copied once (the first and last twice, not all)
    records[0] = b'{"Records":[' + records[0]
    records[-1] += b"]}"
    return b",".join(records)


_RECORD = operator.itemgetter(8)  # Change.record


# -- Lambda-style responses ---------------------------------------------------------------

def failed_from_response(changes: Sequence[Change], response: Any) -> SendResult:
    """Honour ``batchItemFailures`` as Lambda does (:func:`lake.invocation.interpret`): resume
    from the lowest failed item; a malformed list, or an identifier that is empty or not in
    the batch, fails the whole batch.

    Replay cannot know whether the function's mapping has ReportBatchItemFailures on, so a
    reply that is not an object (anything a function without it may return) is a success.
    """
    if not isinstance(response, Mapping):
        return SendResult()
    ids = [str(c.seq) for c in changes]
    outcome = interpret(response, ids)
    at = outcome.resume_index(ids)
    if at is None:
        return SendResult()
    if outcome.failed_items:
        return SendResult(at, "reported in batchItemFailures", outcome.failed_items)
    return SendResult(at, f"{outcome.error}: the whole batch is retried (as Lambda)")


class PythonSender:
    max_payload_bytes: int | None = None

    def __init__(self, target: Target, region: str = "us-east-1", clock: Clock = SYSTEM_CLOCK) -> None:
        self.handler = target.handler or load_handler(target.name)
        self.name = target.name.rsplit(":", 1)[-1]
        self.region = region
        self.clock = clock

    def send(self, changes: Sequence[Change], payload: bytes) -> SendResult:
        ctx = LambdaContext(self.name, region=self.region, memory_limit_in_mb=1024, clock=self.clock)
        try:
            response = self.handler(orjson.loads(payload), ctx)
        except Exception as e:  # a handler error fails the batch; KeyboardInterrupt still stops us
            return SendResult(0, f"{type(e).__name__}: {e}")
        return failed_from_response(changes, response)

    def close(self) -> None:
        pass


def load_handler(spec: str) -> Handler:
    """The function ``package.module:function`` names, imported as from a Lambda task root (and
    `lake up --function`): modules in the working directory import."""
    try:
        return resolve_handler(spec, task_root=os.getcwd())
    except ConfigError as e:
        raise ConfigError(f"python target: {e}") from None


class LambdaSender:
    max_payload_bytes: int | None = LAMBDA_MAX_PAYLOAD

    def __init__(self, client: Any, function: str) -> None:
        self.client, self.function = client, function

    def send(self, changes: Sequence[Change], payload: bytes) -> SendResult:
        from lake.aws.clients import translate

        try:
            resp = self.client.invoke(FunctionName=self.function, InvocationType="RequestResponse",
                                      Payload=payload)
        except AWS_ERRORS as e:
            err = translate(e, "Lambda function", self.function)
            if isinstance(err, TransientError):
                return SendResult(0, str(err))
            raise err from e  # not found, access denied...: no use trying every batch
        body = resp.get("Payload")
        raw = body.read() if hasattr(body, "read") else (body or b"")
        if resp.get("FunctionError"):
            reason = raw.decode("utf-8", "replace")
            try:
                doc = orjson.loads(raw)
                reason = f"{doc.get('errorType', 'Error')}: {doc.get('errorMessage', '')}"
            except (orjson.JSONDecodeError, AttributeError):
                pass
            return SendResult(0, f"FunctionError {resp['FunctionError']}: {reason}")
        try:
            response = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            response = None  # a handler may return anything; only batchItemFailures means something
        return failed_from_response(changes, response)

    def close(self) -> None:
        pass


def _unique_key_chunks(items: Sequence[tuple[str, int]], max_n: int, max_bytes: int) -> Iterator[range]:
    """Consecutive index ranges with no key twice, at most ``max_n`` items and ``max_bytes``.

    Services do not stop a batch call at its first failed entry, so two changes of one
    item in one call could land in the wrong order; one per call per item cannot."""
    start, size = 0, 0
    seen: set[str] = set()
    for i, (key, n) in enumerate(items):
        if i > start and (key in seen or i - start >= max_n or size + n > max_bytes):
            yield range(start, i)
            start, seen, size = i, set(), 0
        seen.add(key)
        size += n
    if start < len(items):
        yield range(start, len(items))


def _keys_of(change: Change) -> Mapping[str, Any]:
    doc = orjson.loads(change.record)
    return doc["dynamodb"]["Keys"]  # type: ignore[no-any-return]


class KinesisSender:
    """One Kinesis record per change, put with the fan-out's order-safe plan
    (:class:`lake.fanout.plan.SendPlan`): a PutRecords request holds at most one change of an
    item, and an item's next change is put only after the previous one was and everything
    before that one in the batch, so the engine's retry from the first failure can repeat a
    change but never put an item's older change after a newer one."""

    max_payload_bytes: int | None = None

    def __init__(self, client: Any, stream: str) -> None:
        self.client = client
        self.kwargs = {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}
        self.stream = stream

    def send(self, changes: Sequence[Change], payload: bytes) -> SendResult:
        plan = SendPlan.of(Entry(i, str(c.seq), partition_key(c.table, _keys_of(c)), c.record, c.table, c.id)
                           for i, c in enumerate(changes))
        reasons: dict[int, str] = {}
        # Waves until every change before the first failure is put: the engine acknowledges
        # that prefix and sends the rest again (once a change fails, later ones are not put).
        while wave := plan.wave(prefix_safe=True):
            for chunk in chunks(wave):
                for entry, error in self._put(chunk):
                    if error is None:
                        plan.succeeded(entry)
                    else:
                        plan.failed(entry, max_attempts=1)  # retrying is the engine's job
                        reasons[entry.index] = error
                if reasons:
                    break  # the rest of this wave comes after the failure: not sent
        first = plan.first_given_up()
        return SendResult() if first is None else SendResult(first, reasons[first])

    def _put(self, chunk: list[Entry]) -> list[tuple[Entry, str | None]]:
        """One PutRecords call; each entry with its error (None: put)."""
        from lake.aws.clients import translate

        try:
            resp = self.client.put_records(Records=[{"Data": e.data, "PartitionKey": e.partition_key} for e in chunk],
                                           **self.kwargs)
        except AWS_ERRORS as e:
            err = translate(e, "Kinesis stream", self.stream)
            if isinstance(err, TransientError):
                return [(entry, str(err)) for entry in chunk]  # the request was refused: none was put
            raise err from e
        return [(entry, f"{r['ErrorCode']}: {r.get('ErrorMessage', '')}" if r.get("ErrorCode") else None)
                for entry, r in zip(chunk, resp["Records"], strict=True)]

    def close(self) -> None:
        pass


_SQS_ID = re.compile(r"^[\w!-/:-@\[-`{-~]{1,128}$")


class SQSSender:
    max_payload_bytes: int | None = None

    def __init__(self, client: Any, queue: str) -> None:
        from lake.aws.clients import translate

        self.client, self.queue = client, queue
        if re.match(r"^https?://", queue):
            self.url = queue
        else:
            try:
                self.url = client.get_queue_url(QueueName=queue)["QueueUrl"]
            except AWS_ERRORS as e:
                raise translate(e, "SQS queue", queue) from e
        self.fifo = self.url.endswith(".fifo")

    def _entry(self, i: int, c: Change) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": str(i),
            "MessageBody": c.record.decode(),
            "MessageAttributes": {
                "table": {"DataType": "String", "StringValue": c.table},
                "eventName": {"DataType": "String", "StringValue": c.event},
                "sequenceNumber": {"DataType": "String", "StringValue": str(c.seq)},
            },
        }
        if self.fifo:
            group = f"{c.table}|{c.key}"
            entry["MessageGroupId"] = group if _SQS_ID.match(group) else hashlib.sha256(group.encode()).hexdigest()
            dedup = c.id if _SQS_ID.match(c.id or "") else hashlib.sha256(c.record).hexdigest()
            entry["MessageDeduplicationId"] = dedup
        return entry

    def send(self, changes: Sequence[Change], payload: bytes) -> SendResult:
        from lake.aws.clients import translate

        keyed = [((f"{c.table}|{c.key}" if self.fifo else str(i)), len(c.record) + 200)
                 for i, c in enumerate(changes)]
        for chunk in _unique_key_chunks(keyed, SQS_MAX_ENTRIES, SQS_MAX_BYTES):
            entries = [self._entry(i, changes[i]) for i in chunk]
            try:
                resp = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            except AWS_ERRORS as e:
                err = translate(e, "SQS queue", self.queue)
                if isinstance(err, TerminalError) and "TooLong" in str(e):
                    return SendResult(chunk.start, str(err))  # this message can never go: report it
                if isinstance(err, TransientError):
                    return SendResult(chunk.start, str(err))
                raise err from e
            failed = resp.get("Failed") or []
            if failed:
                first = min(failed, key=lambda f: int(f["Id"]))
                return SendResult(int(first["Id"]), f"{first.get('Code')}: {first.get('Message', '')}")
        return SendResult()

    def close(self) -> None:
        pass


class FileSender:
    max_payload_bytes: int | None = None

    def __init__(self, path: str, start_batch: int = 0) -> None:
        self.path = Path(path)
        self.lines = self.path.suffix in (".jsonl", ".ndjson")
        self.n = start_batch
        if self.lines:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: Any = self.path.open("ab")
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self._fh = None

    def send(self, changes: Sequence[Change], payload: bytes) -> SendResult:
        self.n += 1
        if self._fh is not None:
            self._fh.write(payload + b"\n")
            self._fh.flush()  # acknowledged means on disk: the checkpoint follows
        else:
            tmp = self.path / f".batch-{self.n:06d}.json.tmp"
            tmp.write_bytes(payload)
            tmp.replace(self.path / f"batch-{self.n:06d}.json")
        return SendResult()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class NullSender:
    max_payload_bytes: int | None = None

    def __init__(self) -> None:
        self.events = self.bytes = 0

    def send(self, changes: Sequence[Change], payload: bytes) -> SendResult:
        self.events += len(changes)
        self.bytes += len(payload)
        return SendResult()

    def close(self) -> None:
        pass


def open_sender(target: Target, clients: Any, region: str = "us-east-1", start_batch: int = 0,
                clock: Clock = SYSTEM_CLOCK) -> Sender:
    """A sender for ``target``; ``clients`` (a :class:`lake.aws.clients.Clients`) is only
    touched by AWS targets; ``clock`` is the one a ``python:`` handler's context counts down on."""
    if target.kind == "python":
        return PythonSender(target, region, clock)
    if target.kind == "lambda":
        return LambdaSender(clients.client("lambda"), target.name)
    if target.kind == "kinesis":
        return KinesisSender(clients.client("kinesis"), target.name)
    if target.kind == "sqs":
        return SQSSender(clients.client("sqs"), target.name)
    if target.kind == "file":
        return FileSender(target.name, start_batch)
    if target.kind == "null":
        return NullSender()
    raise NotFoundError("replay target kind", target.kind)
