"""A local runtime with AWS Lambda's event-source-mapping semantics for stream sources.

Per mapping, a coordinator thread discovers shards (children only after all their
parents are fully processed) and starts one worker thread per readable shard. A
worker reads its shard in order, filters, batches (BatchSize, batching window),
invokes the handler (in a worker thread with a time limit) and handles failures as
Lambda does: retries, bisection, partial batch responses, record age, the on-failure
destination, then checkpoints the batch and moves on.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from lake.aws.clients import Clients, translate
from lake.errors import ConfigError, LakeError, NotFoundError, TransientError
from lake.filters import compile_filters
from lake.local.runtime.checkpoint import CheckpointStore
from lake.local.runtime.events import ACCOUNT_ID, Condition, StreamRecord, failure_message
from lake.local.runtime.invoke import Handler, LambdaContext, Outcome, interpret, invoke, resolve_handler
from lake.local.runtime.sources import IteratorExpired, ShardInfo, StreamSource, open_source

log = logging.getLogger("lake.local.runtime")

StartingPosition = Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]
_GENERIC_MODULES = frozenset({"handler", "handlers", "app", "main", "index", "lambda_function", "function"})


@dataclass(frozen=True)
class EventSourceMapping:
    """One event source mapping, with the names and defaults of AWS's (in snake case)."""

    function: str | Callable[..., Any]  # "module:function" or a callable(event, context)
    event_source_arn: str  # DynamoDB stream (or table) ARN, or Kinesis stream ARN
    batch_size: int = 100
    maximum_batching_window_s: float = 0.0
    starting_position: StartingPosition = "TRIM_HORIZON"
    starting_position_timestamp: datetime | None = None  # AT_TIMESTAMP (Kinesis)
    maximum_retry_attempts: int = -1  # -1: until the record expires, like AWS
    maximum_record_age_s: float = -1
    bisect_batch_on_function_error: bool = False
    report_batch_item_failures: bool = False  # FunctionResponseTypes=["ReportBatchItemFailures"]
    on_failure_destination: str | None = None  # SQS queue ARN or URL
    filter_criteria: tuple[str | Mapping[str, Any], ...] = ()
    timeout_s: float = 30.0
    memory_mb: int = 128
    name: str | None = None  # function_name in the context

    @property
    def function_name(self) -> str:
        if self.name:
            return self.name
        if callable(self.function):
            return str(getattr(self.function, "__name__", type(self.function).__name__))
        parts = self.function.partition(":")[0].split(".")
        while len(parts) > 1 and parts[-1] in _GENERIC_MODULES:
            parts.pop()
        return parts[-1] or "handler"

    @property
    def mapping_id(self) -> str:
        """Stable across restarts: names the checkpoint file."""
        fn = self.function if isinstance(self.function, str) else (
            f"{getattr(self.function, '__module__', '')}.{getattr(self.function, '__qualname__', '')}")
        digest = hashlib.sha256(f"{self.event_source_arn}\n{fn}\n{self.name}".encode()).hexdigest()[:10]
        return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', self.function_name)}-{digest}"

    def validate(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ConfigError(f"mapping {self.function_name}: batch_size must be 1..10000")
        if self.starting_position not in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
            raise ConfigError(f"mapping {self.function_name}: unknown starting_position {self.starting_position!r}")
        if self.starting_position == "AT_TIMESTAMP" and self.starting_position_timestamp is None:
            raise ConfigError(f"mapping {self.function_name}: AT_TIMESTAMP needs starting_position_timestamp")
        if self.maximum_retry_attempts < -1 or self.timeout_s <= 0:
            raise ConfigError(f"mapping {self.function_name}: bad maximum_retry_attempts or timeout_s")


@dataclass
class MappingStats:
    """Counters of one mapping (read them; the runtime updates them under a lock)."""

    invocations: int = 0
    records_delivered: int = 0  # records passed to the handler, retries included
    records_succeeded: int = 0  # records whose processing the handler acknowledged
    records_filtered: int = 0  # skipped by FilterCriteria (count as processed, as AWS)
    retries: int = 0
    bisections: int = 0
    timeouts: int = 0
    function_errors: int = 0
    records_to_destination: int = 0
    destination_messages: int = 0
    records_discarded: int = 0  # failed with no destination: logged loudly, then skipped
    records_expired: int = 0  # older than MaximumRecordAgeInSeconds
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


@dataclass
class _Unit:
    """A batch in flight: the records, and how often this exact batch was invoked."""

    records: list[StreamRecord]
    invocations: int = 0
    last: Outcome | None = None
    request_id: str = ""


class _Stopped(Exception):
    pass


class _MappingRunner:
    def __init__(self, runtime: LocalRuntime, mapping: EventSourceMapping) -> None:
        self.rt, self.m = runtime, mapping
        self.stats = MappingStats()
        self.source: StreamSource | None = None
        self.handler: Handler | None = None
        self.predicate = compile_filters(mapping.filter_criteria)
        self.store = CheckpointStore(runtime.state_dir / f"{mapping.mapping_id}.json", mapping.mapping_id,
                                     mapping.event_source_arn)
        self.function_arn = f"arn:aws:lambda:{runtime.region}:{ACCOUNT_ID}:function:{mapping.function_name}"
        self.destination_url: str | None = None
        self.workers: dict[str, _ShardWorker] = {}
        self.shards: dict[str, ShardInfo] = {}
        self.done: set[str] = set()
        self.lock = threading.Lock()
        self.last_settled_pass = 0.0  # monotonic start of the last discovery pass that started nothing
        self.thread = threading.Thread(target=self._run, name=f"esm-{mapping.function_name}", daemon=True)
        self.error: BaseException | None = None

    # -- setup -------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.m.validate()
        self.handler = resolve_handler(self.m.function)
        self.source = open_source(self.rt.clients, self.m.event_source_arn)
        if self.m.starting_position == "AT_TIMESTAMP" and self.source.kind != "kinesis":
            raise ConfigError(f"mapping {self.m.function_name}: AT_TIMESTAMP is for Kinesis streams only")
        dest = self.m.on_failure_destination
        if dest:
            self.destination_url = self._queue_url(dest)
        for shard_id, entry in self.store.data["shards"].items():
            if entry.get("done"):
                self.done.add(shard_id)

    def _queue_url(self, dest: str) -> str:
        sqs = self.rt.clients.sqs
        try:
            if dest.startswith("arn:"):
                parts = dest.split(":")
                return str(sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])
            sqs.get_queue_attributes(QueueUrl=dest, AttributeNames=["QueueArn"])
            return dest
        except Exception as e:
            err = translate(e, "SQS queue", dest)
            raise (NotFoundError("SQS queue", dest, "the on-failure destination") if isinstance(
                err, NotFoundError) else err) from e

    # -- shard discovery -----------------------------------------------------------------------
    def _run(self) -> None:
        assert self.source is not None
        first = True
        while not self.rt._stop.is_set():
            started = time.monotonic()
            try:
                listing = self.source.shards()
            except LakeError as e:
                log.warning("%s: listing shards failed, will retry: %s", self.m.function_name, e)
                self.rt._stop.wait(self.rt.poll_interval_s * 5)
                continue
            new = self._discover(listing, first)
            first = False
            if not new:
                self.last_settled_pass = started
            self.rt._stop.wait(self.rt.poll_interval_s)

    def _discover(self, listing: list[ShardInfo], first: bool) -> int:
        present = {s.shard_id for s in listing}
        started = 0
        with self.lock:
            self.shards = {s.shard_id: s for s in listing}
            for s in listing:
                if s.shard_id in self.workers or s.shard_id in self.done:
                    continue
                if first and not self.store.existed and self.m.starting_position == "LATEST" and s.closed:
                    # LATEST starts at the tips of the open shards; closed history is not read.
                    self.mark_done(s.shard_id)
                    continue
                if any(p in present and p not in self.done for p in s.parents):
                    continue  # parent first: a child is read once its parents are fully processed
                position = self._position(s, first)
                worker = _ShardWorker(self, s.shard_id, position)
                self.workers[s.shard_id] = worker
                worker.thread.start()
                started += 1
        return started

    def _position(self, shard: ShardInfo, first: bool) -> str:
        entry = self.store.shard(shard.shard_id)
        if entry and entry.get("seq"):
            return "AFTER_SEQUENCE_NUMBER"
        if entry and entry.get("start"):
            return str(entry["start"])
        # Shards that exist when the mapping is created start at its position; shards
        # that appear later (children of a split or merge) are read from their start.
        if first and not self.store.existed:
            return self.m.starting_position
        return "TRIM_HORIZON"

    def mark_done(self, shard_id: str) -> None:
        self.done.add(shard_id)
        self.store.update(shard_id, done=True)

    def is_closed(self, shard_id: str) -> bool:
        with self.lock:
            info = self.shards.get(shard_id)
            return bool(info and info.closed)

    def idle_since(self, t0: float) -> bool:
        if self.last_settled_pass < t0:
            return False
        with self.lock:
            workers = list(self.workers.values())
            # A child whose parents just finished is work not yet started, not idleness.
            startable = any(
                sid not in self.workers and sid not in self.done
                and all(p not in self.shards or p in self.done for p in info.parents)
                for sid, info in self.shards.items()
            )
        return not startable and all(w.idle_since(t0) for w in workers)

    # -- delivery --------------------------------------------------------------------------------
    def context(self, shard_id: str) -> LambdaContext:
        day = time.strftime("%Y/%m/%d", time.gmtime())
        return LambdaContext(self.m.function_name, self.function_arn, self.m.memory_mb, self.m.timeout_s,
                             f"{day}/[$LATEST]{hashlib.md5(shard_id.encode()).hexdigest()}")

    def send_to_destination(self, shard_id: str, unit: _Unit, records: list[StreamRecord],
                            condition: Condition) -> None:
        assert self.source is not None
        first, last = records[0].seq, records[-1].seq
        if not self.destination_url:
            self.stats.add(records_discarded=len(records))
            log.error("%s: %d record(s) of shard %s (%s..%s) DISCARDED after %s, and the mapping has no "
                      "on-failure destination: %s", self.m.function_name, len(records), shard_id, first, last,
                      condition, unit.last.error if unit.last else "")
            return
        last_outcome = unit.last
        msg = failure_message(
            kind=self.source.kind, records=records, shard_id=shard_id, stream_arn=self.source.arn,
            function_arn=self.function_arn, request_id=unit.request_id or str(uuid.uuid4()),
            condition=condition, invoke_count=unit.invocations,
            function_error=last_outcome.function_error if last_outcome else None, now=time.time(),
        )
        body = orjson.dumps(msg).decode()
        attempt = 0
        while True:
            try:
                self.rt.clients.sqs.send_message(QueueUrl=self.destination_url, MessageBody=body)
                break
            except Exception as e:
                # The shard waits: moving on would lose the records, since the checkpoint would pass them.
                attempt += 1
                log.error("%s: could not send the failure of shard %s (%s..%s) to %s (attempt %d), "
                          "the shard waits: %s", self.m.function_name, shard_id, first, last,
                          self.destination_url, attempt, e)
                if self.rt._stop.wait(min(0.2 * 2 ** min(attempt, 5), 5.0)):
                    raise _Stopped from None
        self.stats.add(records_to_destination=len(records), destination_messages=1)
        log.warning("%s: %d record(s) of shard %s (%s..%s) sent to the on-failure destination (%s)",
                    self.m.function_name, len(records), shard_id, first, last, condition)


class _ShardWorker:
    def __init__(self, runner: _MappingRunner, shard_id: str, position: str) -> None:
        self.r, self.shard_id, self.position = runner, shard_id, position
        self.buffer: deque[StreamRecord] = deque()
        self.iterator: str | None = None
        self.last_read_seq: str | None = (runner.store.shard(shard_id) or {}).get("seq")
        self.busy = False
        self.finished = False
        self.last_empty_read = 0.0  # monotonic start of the last read that found nothing new
        self.first_buffered_at = 0.0
        self.thread = threading.Thread(target=self._run, name=f"shard-{shard_id}", daemon=True)

    def idle_since(self, t0: float) -> bool:
        return self.finished or (not self.busy and not self.buffer and self.last_empty_read >= t0)

    # -- reading -----------------------------------------------------------------------------------
    def _new_iterator(self) -> str:
        src, m = self.r.source, self.r.m
        assert src is not None
        if self.last_read_seq is not None:
            return src.iterator(self.shard_id, "AFTER_SEQUENCE_NUMBER", seq=self.last_read_seq)
        if self.position == "AT_TIMESTAMP":
            return src.iterator(self.shard_id, "AT_TIMESTAMP", timestamp=m.starting_position_timestamp)
        kind = "TRIM_HORIZON" if self.position == "AFTER_SEQUENCE_NUMBER" else self.position
        it = src.iterator(self.shard_id, kind)
        self.r.store.update(self.shard_id, start=kind)
        return it

    def _run(self) -> None:
        rt = self.r.rt
        try:
            while not rt._stop.is_set():
                if not self._step():
                    rt._stop.wait(rt.poll_interval_s)
        except _Stopped:
            pass
        except Exception:
            log.exception("%s: shard %s worker died", self.r.m.function_name, self.shard_id)
            self.r.error = self.r.error or RuntimeError(f"shard {self.shard_id} worker died")
        finally:
            self.busy = False

    def _step(self) -> bool:
        """One read and, when due, one batch. False when there is nothing to do right now."""
        src, m = self.r.source, self.r.m
        assert src is not None
        read_started = time.monotonic()
        got_new = False
        if self.iterator is None and not self.finished:
            try:
                self.iterator = self._new_iterator()
            except (IteratorExpired, TransientError) as e:
                log.warning("%s: shard %s: no iterator yet: %s", m.function_name, self.shard_id, e)
                return False
        matched = sum(1 for r in self.buffer if r.matched)
        end_of_shard = False
        if matched < m.batch_size and self.iterator is not None:
            try:
                res = src.read(self.shard_id, self.iterator, m.batch_size - matched)
            except IteratorExpired:
                self.iterator = None  # a new one from the last position read
                return True
            except TransientError as e:
                log.warning("%s: shard %s: read failed, will retry: %s", m.function_name, self.shard_id, e)
                return False
            self.iterator = res.next_iterator
            for rec in res.records:
                rec.matched = self.r.predicate(rec.event)
                if not self.buffer:
                    self.first_buffered_at = time.monotonic()
                self.buffer.append(rec)
                self.last_read_seq = rec.seq
            got_new = bool(res.records)
            if got_new:
                self.r.rt.note_activity()
            # AWS ends a closed shard with a null iterator; moto keeps handing out iterators,
            # so an empty read of a shard listed as closed ends it too.
            end_of_shard = res.next_iterator is None or (not res.records and self.r.is_closed(self.shard_id))
        if self.buffer:
            matched = sum(1 for r in self.buffer if r.matched)
            window_open = time.monotonic() - self.first_buffered_at < m.maximum_batching_window_s
            if matched < m.batch_size and window_open and not end_of_shard and matched:
                return got_new  # keep gathering until the batch is full or the window closes
            self._process_next_batch()
            return True
        if end_of_shard:
            self.finished = True
            with self.r.lock:
                self.r.mark_done(self.shard_id)
            log.info("%s: shard %s fully processed", m.function_name, self.shard_id)
            raise _Stopped
        if not got_new:
            self.last_empty_read = read_started
        return got_new

    # -- batches -----------------------------------------------------------------------------------
    def _process_next_batch(self) -> None:
        m = self.r.m
        self.busy = True
        try:
            taken: list[StreamRecord] = []
            batch: list[StreamRecord] = []
            # A batch: up to BatchSize matching records, plus the filtered ones among and after them.
            while self.buffer and (self.buffer[0].matched is False or len(batch) < m.batch_size):
                rec = self.buffer.popleft()
                taken.append(rec)
                if rec.matched:
                    batch.append(rec)
            filtered = len(taken) - len(batch)
            if filtered:
                self.r.stats.add(records_filtered=filtered)
            if batch and not self._deliver(batch):
                # Stopped mid-batch: put it back so nothing past the checkpoint is skipped.
                self.buffer.extendleft(reversed(taken))
                raise _Stopped
            self.r.store.update(self.shard_id, seq=taken[-1].seq)
            # A handler may have written to a stream another mapping reads: that mapping's
            # earlier empty reads no longer prove it idle.
            self.r.rt.note_activity()
        finally:
            self.busy = False

    def _expired_prefix(self, records: list[StreamRecord]) -> int:
        max_age = self.r.m.maximum_record_age_s
        if max_age < 0:
            return 0
        now = time.time()
        n = 0
        while n < len(records) and now - records[n].arrival > max_age:
            n += 1
        return n

    def _deliver(self, batch: list[StreamRecord]) -> bool:
        """Invoke until every record is acknowledged or sent to the destination; False if stopped."""
        r, m, rt = self.r, self.r.m, self.r.rt
        assert r.handler is not None
        units: deque[_Unit] = deque([_Unit(batch)])
        while units:
            if rt._stop.is_set():
                return False
            unit = units[0]
            expired = self._expired_prefix(unit.records)
            if expired:
                r.stats.add(records_expired=expired)
                r.send_to_destination(self.shard_id, unit, unit.records[:expired], "RecordAgeExceeded")
                unit.records = unit.records[expired:]
                if not unit.records:
                    units.popleft()
                    continue
            seqs = [rec.seq for rec in unit.records]
            ctx = r.context(self.shard_id)
            unit.request_id = ctx.aws_request_id
            event = {"Records": orjson.loads(orjson.dumps([rec.event for rec in unit.records]))}
            kind, result = invoke(r.handler, event, ctx, m.timeout_s)
            if rt._stop.is_set():
                return False  # stopped meanwhile: leave the batch unacknowledged, it is redelivered
            outcome = interpret(kind, result, seqs, m.report_batch_item_failures)
            unit.invocations += 1
            unit.last = outcome
            r.stats.add(invocations=1, records_delivered=len(seqs), timeouts=int(outcome.timed_out),
                        function_errors=int(outcome.function_error is not None))
            if outcome.ok:
                r.stats.add(records_succeeded=len(seqs))
                log.info("%s: delivered %d record(s) of shard %s (%s..%s)", m.function_name, len(seqs),
                         self.shard_id, seqs[0], seqs[-1])
                units.popleft()
                continue
            if outcome.failed_seqs:
                # Resume at the lowest reported sequence number; what precedes it is done.
                lowest = min(seqs.index(s) for s in outcome.failed_seqs)
                r.stats.add(records_succeeded=lowest)
                unit.records = unit.records[lowest:]
            log.warning("%s: batch of shard %s (%s..%s, %d record(s)) failed: %s", m.function_name,
                        self.shard_id, unit.records[0].seq, unit.records[-1].seq, len(unit.records),
                        (outcome.error or "").splitlines()[0] if outcome.error else "")
            if m.bisect_batch_on_function_error and len(unit.records) > 1:
                half = len(unit.records) // 2
                units.popleft()
                # Each half is a new batch with its own retry budget; splitting is not a retry.
                units.extendleft([_Unit(unit.records[half:]), _Unit(unit.records[:half])])
                r.stats.add(bisections=1)
                log.info("%s: bisected into %d + %d record(s)", m.function_name, half, len(unit.records) - half)
                continue
            if 0 <= m.maximum_retry_attempts < unit.invocations:
                r.send_to_destination(self.shard_id, unit, unit.records, "RetryAttemptsExhausted")
                units.popleft()
                continue
            r.stats.add(retries=1)
            # Lambda backs off between stream retries; locally a short, bounded pause.
            rt._stop.wait(min(rt.poll_interval_s * (2 ** min(unit.invocations - 1, 4)), 1.0))
        return True


class LocalRuntime:
    """Runs event source mappings in this process against the configured AWS endpoint."""

    def __init__(self, clients: Clients, mappings: Sequence[EventSourceMapping], state_dir: str | Path,
                 poll_interval_s: float = 0.1) -> None:
        self.clients = clients
        self.region = clients.settings.region
        self.state_dir = Path(state_dir)
        self.poll_interval_s = poll_interval_s
        ids = [m.mapping_id for m in mappings]
        if len(set(ids)) != len(ids):
            raise ConfigError("two mappings share a function and a source: give them distinct names")
        self._stop = threading.Event()
        self._last_activity = 0.0  # monotonic time of the last record read or batch completed
        self._runners = [_MappingRunner(self, m) for m in mappings]
        self.stats: dict[str, MappingStats] = {}
        for runner in self._runners:
            key = runner.m.name or runner.m.function_name
            if key in self.stats:
                key = runner.m.mapping_id
            self.stats[key] = runner.stats
        self.started = False

    def add_mapping(self, mapping: EventSourceMapping) -> bool:
        """Add a mapping to a runtime (running or not), as creating an event source mapping on AWS.

        Idempotent: a mapping already present is left alone (False). Nothing is registered
        unless its source, handler and destination check out.
        """
        if any(r.m.mapping_id == mapping.mapping_id for r in self._runners):
            return False
        runner = _MappingRunner(self, mapping)
        if self.started:
            runner.prepare()
        key = mapping.name or mapping.function_name
        self.stats[mapping.mapping_id if key in self.stats else key] = runner.stats
        self._runners.append(runner)
        if self.started:
            runner.thread.start()
        log.info("mapping added: %s <- %s", mapping.function_name, mapping.event_source_arn)
        return True

    def start(self) -> None:
        """Check every source, handler and destination, then start polling in background threads."""
        if self.started:
            return
        if any(r.thread.ident is not None for r in self._runners):
            # Started before and stopped: fresh runners (threads start once), reading on from
            # the checkpoints, with the counters carried over.
            fresh = []
            for old_runner in self._runners:
                runner = _MappingRunner(self, old_runner.m)
                runner.stats = old_runner.stats
                fresh.append(runner)
            self._runners = fresh
        for runner in self._runners:
            runner.prepare()
        self._stop.clear()
        for runner in self._runners:
            runner.thread.start()
        self.started = True
        log.info("local runtime started: %d mapping(s)", len(self._runners))

    def stop(self, timeout: float = 10) -> None:
        """Stop polling. A batch in flight is abandoned unacknowledged: it is redelivered after
        a restart, since only completed batches are checkpointed."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for runner in self._runners:
            threads = [runner.thread] + [w.thread for w in list(runner.workers.values())]
            for t in threads:
                if t.is_alive():
                    t.join(max(0.0, deadline - time.monotonic()))
        self.started = False

    def note_activity(self) -> None:
        self._last_activity = time.monotonic()

    def wait_idle(self, timeout: float) -> bool:
        """True once every shard of every mapping has been read to its end after this call began
        and after the last activity anywhere (so a record a handler wrote to a stream another
        mapping reads is waited for), with no record buffered and no batch in flight."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            for runner in self._runners:
                if runner.error is not None:
                    raise runner.error
            since = max(t0, self._last_activity)
            if all(r.idle_since(since) for r in list(self._runners)):
                return True
            time.sleep(min(self.poll_interval_s, 0.05))
        return False

    def run_until_idle(self, timeout: float) -> bool:
        """Start if needed, then wait until idle (convenient for tests and the demo)."""
        self.start()
        return self.wait_idle(timeout)

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
