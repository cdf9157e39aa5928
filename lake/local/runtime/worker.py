"""One shard of one mapping: read in order, filter, batch, invoke, handle failures as Lambda, checkpoint.

Failures are handled as Lambda's stream mappings do: retries with exponential backoff,
bisection, partial batch responses (resuming at the lowest reported record), the record
age limit, and the on-failure destination. Only completed batches are checkpointed.

Each record is serialised once, when the shared feed reads it; one the runtime cannot serialise is poison
and goes to the destination alone, with its reason, and the shard goes on. An idle
shard is read less and less often (from the poll interval up to the runtime's maximum),
as Lambda's pollers do, and at the poll interval again as soon as it has records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lake.errors import NotFoundError, TransientError
from lake.invocation import Outcome
from lake.local.runtime.events import Condition, StreamRecord, event_of, serialise
from lake.local.runtime.invoke import invoke, outcome
from lake.local.runtime.sources import IteratorExpired, PositionTrimmed

if TYPE_CHECKING:
    from lake.local.runtime.runner import MappingRunner

log = logging.getLogger("lake.local.runtime")


@dataclass
class _Unit:
    """A batch in flight: the records, and how often this exact batch was invoked."""

    records: list[StreamRecord]
    invocations: int = 0
    last: Outcome | None = None
    request_id: str = ""


class _Stopped(Exception):
    pass


class ShardWorker:
    """The thread that reads one shard for one mapping, from ``position`` or its checkpoint."""

    def __init__(self, runner: MappingRunner, shard_id: str, position: str, resume_at: str | None = None) -> None:
        self.r, self.shard_id, self.position = runner, shard_id, position
        self.resume_at = resume_at  # a restarted worker with no checkpoint yet: the first record not done
        self.rt, self.clock = runner.rt, runner.rt.clock
        self.stopping = runner.stopping
        self.wake = threading.Event()  # set to end an idle wait early (wait_idle, stop)
        self.buffer: deque[StreamRecord] = deque()
        self.iterator: str | None = None
        self.last_read_seq: str | None = (runner.store.shard(shard_id) or {}).get("seq")
        self.busy = False
        self.finished = False
        self.last_empty_read = 0  # runtime tick at the start of the last read that found nothing new
        self.first_buffered_at = 0.0  # clock.monotonic() of the read that started the buffer
        self.in_flight: list[StreamRecord] = []  # the batch being delivered
        self.crashed: BaseException | None = None
        self.crashed_at = 0.0  # time.monotonic(): restarts are paced in real time, as polling
        self.thread = threading.Thread(target=self._run, name=f"shard-{shard_id}", daemon=True)

    def idle_since(self, tick: int) -> bool:
        """Finished, or nothing buffered or in flight and a read that began after ``tick`` found nothing."""
        if self.crashed is not None:
            return False  # waiting to be restarted: its records are not done
        return self.finished or (not self.busy and not self.buffer and self.last_empty_read > tick)

    # -- reading -----------------------------------------------------------------------------------
    def _new_iterator(self) -> str:
        src, m = self.r.source, self.r.m
        assert src is not None
        if self.last_read_seq is not None:
            return src.iterator(self.shard_id, "AFTER_SEQUENCE_NUMBER", seq=self.last_read_seq)
        if self.resume_at is not None:
            return src.iterator(self.shard_id, "AT_SEQUENCE_NUMBER", seq=self.resume_at)
        if self.position == "AT_TIMESTAMP":
            return src.iterator(self.shard_id, "AT_TIMESTAMP", timestamp=m.starting_position_timestamp)
        kind = "TRIM_HORIZON" if self.position == "AFTER_SEQUENCE_NUMBER" else self.position
        it = src.iterator(self.shard_id, kind)
        self.r.store.update(self.shard_id, start=kind)
        return it

    def first_pending(self) -> str | None:
        """The sequence number of the first record read and not done (in flight or buffered)."""
        pending = self.in_flight[:1] or list(self.buffer)[:1]
        return pending[0].seq if pending else None

    def lag(self, now: float) -> float:
        """Seconds since the oldest record read and not yet done arrived (the iterator age)."""
        pending = self.in_flight[:1] or list(self.buffer)[:1]
        return max(0.0, now - pending[0].arrival) if pending else 0.0

    def _run(self) -> None:
        base = self.rt.poll_interval_s
        interval = base
        try:
            while not self.stopping.is_set():
                if self._step():
                    interval = base
                    continue
                # Polling pace, not mapping time: how often an idle shard asks its source
                # again is real time even under a test clock, or a stopped clock would
                # stop the runtime from seeing new records at all. A shard gathering a
                # batch keeps the base pace; an idle one backs off.
                woken = self.wake.wait(base if self.buffer else interval)
                self.wake.clear()
                interval = base if woken or self.buffer else min(interval * 2, self.rt.max_idle_interval_s)
        except _Stopped:
            pass
        except Exception as e:
            # A bug of the runtime's own (the handler's errors never get here): the runner
            # restarts the shard from its checkpoint, so nothing is skipped.
            log.exception("%s: shard %s worker crashed", self.r.m.function_name, self.shard_id)
            self.crashed, self.crashed_at = e, time.monotonic()
            self.r.note_error(f"shard {self.shard_id} worker crashed: {type(e).__name__}: {e}")
            self.r.wake.set()
        finally:
            self.busy = False

    def _step(self) -> bool:
        """One read and, when due, one batch. False when there is nothing to do right now."""
        src, m = self.r.source, self.r.m
        assert src is not None
        read_tick = self.rt.tick()
        # One reading per step, taken before the read: the window is judged as of this read,
        # so records that arrived before a clock step are read before the window closes.
        now = self.clock.monotonic()
        got_new = False
        if self.iterator is None and not self.finished:
            try:
                self.iterator = self._new_iterator()
            except PositionTrimmed as e:
                # The checkpoint is older than the stream's retention (lake up was stopped for
                # longer than it): those records are gone, as on AWS once they expire. Go on
                # from the oldest record kept rather than asking for the lost position forever.
                log.error("%s: shard %s: the records after the checkpoint (%s) are past the stream's "
                          "retention and lost; reading on from TRIM_HORIZON: %s", m.function_name,
                          self.shard_id, self.last_read_seq or self.resume_at, e)
                self.r.note_error(f"checkpoint past the stream's retention: read on from TRIM_HORIZON ({e})")
                self.last_read_seq = self.resume_at = None
                self.position = "TRIM_HORIZON"
                return True
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
                self.r.note_error(f"read failed: {e}")
                return False
            except NotFoundError as e:
                # The stream is gone: the runner's next listing finds out and disables the mapping.
                self.r.note_error(f"read failed: {e}")
                self.r.wake.set()
                return False
            self.iterator = res.next_iterator
            for rec in res.records:
                rec.matched = self.r.predicate(rec.event)
                if rec.matched and not rec.body and rec.poison is None:
                    serialise(rec)  # the shared feed serialised it when read, once for every mapping
                if not self.buffer:
                    self.first_buffered_at = now
                self.buffer.append(rec)
                self.last_read_seq = rec.seq
            got_new = bool(res.records)
            if got_new:
                self.rt.note_activity()
            # AWS ends a closed shard with a null iterator; moto keeps handing out iterators,
            # so an empty read of a shard listed as closed ends it too.
            end_of_shard = res.next_iterator is None or (not res.records and self.r.is_closed(self.shard_id))
        if self.buffer:
            matched = sum(1 for r in self.buffer if r.matched)
            window_open = now - self.first_buffered_at < m.maximum_batching_window_s
            if matched < m.batch_size and window_open and not end_of_shard and matched:
                return got_new  # keep gathering until the batch is full or the window closes
            self._process_next_batch()
            return True
        if end_of_shard:
            self.finished = True
            with self.r.lock:
                self.r.mark_done(self.shard_id)
            log.info("%s: shard %s fully processed", m.function_name, self.shard_id)
            self.r.wake.set()  # its children may start now
            raise _Stopped
        if not got_new:
            self.last_empty_read = read_tick
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
            self.in_flight = taken
            if batch and not self._deliver(batch):
                # Stopped mid-batch: put it back so nothing past the checkpoint is skipped.
                self.buffer.extendleft(reversed(taken))
                self.in_flight = []
                raise _Stopped
            self.r.store.update(self.shard_id, seq=taken[-1].seq)
            self.in_flight = []
            # A handler may have written to a stream another mapping reads: that mapping's
            # earlier empty reads no longer prove it idle.
            self.rt.note_activity()
        finally:
            # in_flight stays set if this raised: a restarted worker resumes from its first record.
            self.busy = False

    def _expired_prefix(self, records: list[StreamRecord]) -> int:
        max_age = self.r.m.maximum_record_age_s
        if max_age < 0:
            return 0
        now = self.clock.now()
        n = 0
        while n < len(records) and now - records[n].arrival > max_age:
            n += 1
        return n

    def _give_up(self, unit: _Unit, records: list[StreamRecord], condition: Condition, reason: str = "") -> None:
        assert self.r.destination is not None
        first_line = reason.splitlines()[0] if reason else ""
        self.r.note_error(f"{len(records)} record(s) given up ({condition}): {first_line}")
        if not self.r.destination.send(self.shard_id, records, condition, unit.invocations, unit.request_id,
                                       unit.last, reason):
            raise _Stopped

    def _deliver(self, batch: list[StreamRecord]) -> bool:
        """Invoke until every record is acknowledged or sent to the destination; False if stopped."""
        r, m, rt = self.r, self.r.m, self.rt
        units: deque[_Unit] = deque([_Unit(batch)])
        while units:
            if self.stopping.is_set():
                return False
            unit = units[0]
            expired = self._expired_prefix(unit.records)
            if expired:
                r.stats.add(records_expired=expired)
                self._give_up(unit, unit.records[:expired], "RecordAgeExceeded",
                              f"older than MaximumRecordAgeInSeconds ({m.maximum_record_age_s:g} s)"
                              + (f"; last error: {unit.last.error}" if unit.last and unit.last.error else ""))
                unit.records = unit.records[expired:]
                if not unit.records:
                    units.popleft()
                    continue
            poison = next((i for i, rec in enumerate(unit.records) if rec.poison), None)
            if poison == 0:
                # Alone, in order: the records before it were delivered, those after it follow.
                bad = unit.records[0]
                r.stats.add(records_poison=1)
                self._give_up(_Unit([bad]), [bad], "PoisonRecord", bad.poison or "")
                unit.records = unit.records[1:]
                if not unit.records:
                    units.popleft()
                continue
            if poison is not None:
                units.popleft()
                units.extendleft([_Unit(unit.records[poison:]), _Unit(unit.records[:poison], unit.invocations,
                                                                        unit.last, unit.request_id)])
                continue
            seqs = [rec.seq for rec in unit.records]
            ctx = r.context(self.shard_id)
            unit.request_id = ctx.aws_request_id
            remote = r.process_handler(self.shard_id)
            if remote is not None:
                kind, result = remote.invoke(unit.records, ctx, m.timeout_s, self.clock, self.stopping)
            else:
                assert r.handler is not None
                kind, result = invoke(r.handler, event_of(unit.records), ctx, m.timeout_s, self.clock)
            if self.stopping.is_set():
                return False  # stopped meanwhile: leave the batch unacknowledged, it is redelivered
            out = outcome(kind, result, seqs, m.report_batch_item_failures)
            unit.invocations += 1
            unit.last = out
            r.stats.add(invocations=1, records_delivered=len(seqs), timeouts=int(out.timed_out),
                        function_errors=int(out.function_error is not None))
            resume = out.resume_index(seqs)
            if resume is None:
                r.stats.add(records_succeeded=len(seqs))
                log.info("%s: delivered %d record(s) of shard %s (%s..%s)", m.function_name, len(seqs),
                         self.shard_id, seqs[0], seqs[-1])
                units.popleft()
                continue
            # Resume at the lowest reported sequence number; what precedes it is done.
            r.stats.add(records_succeeded=resume)
            unit.records = unit.records[resume:]
            log.warning("%s: batch of shard %s (%s..%s, %d record(s)) failed: %s", m.function_name,
                        self.shard_id, unit.records[0].seq, unit.records[-1].seq, len(unit.records),
                        (out.error or "").splitlines()[0] if out.error else "")
            if m.bisect_batch_on_function_error and len(unit.records) > 1:
                half = len(unit.records) // 2
                units.popleft()
                # Each half is a new batch with its own retry budget; splitting is not a retry.
                units.extendleft([_Unit(unit.records[half:]), _Unit(unit.records[:half])])
                r.stats.add(bisections=1)
                log.info("%s: bisected into %d + %d record(s)", m.function_name, half, len(unit.records) - half)
                continue
            r.note_error((out.error or "the batch failed").splitlines()[0])
            if 0 <= m.maximum_retry_attempts < unit.invocations:
                self._give_up(unit, unit.records, "RetryAttemptsExhausted", out.error or "")
                units.popleft()
                continue
            r.stats.add(retries=1)
            # Lambda backs off exponentially between stream retries: an outage holds the
            # shard without hammering what is down, and nothing moves past the checkpoint.
            self.clock.wait(self.stopping, rt.retry_delay(unit.invocations))
        return True
