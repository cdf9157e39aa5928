"""A local runtime with AWS Lambda's event-source-mapping semantics for stream sources.

Per mapping, a coordinator thread discovers shards (``runner``) and starts one worker
thread per readable shard (``worker``). A worker reads its shard in order, through the
feed every mapping of the stream shares (``feed``: each shard read once, each record
serialised once), filters, batches (BatchSize, batching window), invokes the handler (in a
thread with a time limit, ``invoke``, or in a worker process, ``process``) and handles
failures as Lambda does (retries, bisection, partial batch responses, record age, the
on-failure destination: ``destination``), then checkpoints the batch (``checkpoint``) and
moves on.

Mapping time (record ages, batching windows, time limits, retry pauses) is read from the
runtime's :class:`lake.clock.Clock`, so tests can stop it and move it by hand. Polling
pace (idle reads backing off from ``poll_interval_s`` to ``max_idle_interval_s``, shard
discovery every ``discovery_interval_s``) is real time.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lake.aws.clients import Clients
from lake.clock import SYSTEM_CLOCK, Clock
from lake.errors import ConfigError
from lake.local.runtime.feed import SharedSource, StreamFeeds
from lake.local.runtime.mapping import EventSourceMapping, MappingStats
from lake.local.runtime.runner import MappingRunner
from lake.local.runtime.sources import StreamSource

log = logging.getLogger("lake.local.runtime")


class LocalRuntime:
    """Runs event source mappings in this process against the configured AWS endpoint.

    ``clock`` is the mapping time; ``poll_interval_s`` how often (real time) a shard with
    records is read, and where an idle shard's backoff starts; ``max_idle_interval_s``
    where that backoff stops; ``discovery_interval_s`` how often shards are listed
    when nothing else asks for it; ``max_retry_backoff_s`` the longest pause (mapping
    time) between retries of a failing batch; ``handler_processes`` runs each mapping's
    ``"module:function"`` handler in worker processes (:mod:`lake.local.runtime.process`)
    instead of threads of this process.
    """

    def __init__(self, clients: Clients, mappings: Sequence[EventSourceMapping], state_dir: str | Path,
                 poll_interval_s: float = 0.1, clock: Clock = SYSTEM_CLOCK, max_idle_interval_s: float = 1.0,
                 discovery_interval_s: float = 10.0, max_retry_backoff_s: float = 30.0,
                 handler_processes: bool = False) -> None:
        self.clients = clients
        self.region = clients.settings.region
        self.state_dir = Path(state_dir)
        self.poll_interval_s = poll_interval_s
        self.max_idle_interval_s = max(poll_interval_s, max_idle_interval_s)
        self.discovery_interval_s = discovery_interval_s
        self.max_retry_backoff_s = max_retry_backoff_s
        self.handler_processes = handler_processes
        self.clock = clock
        self._idle_waiters = 0  # wait_idle calls in progress: activity then wakes every idle shard
        ids = [m.mapping_id for m in mappings]
        if len(set(ids)) != len(ids):
            raise ConfigError("two mappings share a function and a source: give them distinct names")
        self.stopping = threading.Event()  # set by stop(); every thread of the runtime waits on it
        # Idleness is about order (did a read start after the last activity?), not duration:
        # a logical clock answers it whatever the mapping clock does, even standing still.
        self._ticks = itertools.count(1)
        self._last_activity = 0  # tick of the last record read or batch completed
        self._activity_lock = threading.Lock()
        self.feeds: dict[str, StreamFeeds] = {}  # stream ARN -> what its mappings read once for all
        self._feeds_lock = threading.Lock()
        self._runners = [MappingRunner(self, m) for m in mappings]
        self.stats: dict[str, MappingStats] = {}
        for runner in self._runners:
            key = runner.m.name or runner.m.function_name
            if key in self.stats:
                key = runner.m.mapping_id
            self.stats[key] = runner.stats
        self.started = False

    @property
    def mappings(self) -> list[EventSourceMapping]:
        """The mappings of this runtime, in the order they were added."""
        return [r.m for r in self._runners]

    def shared_source(self, source: StreamSource) -> SharedSource:
        """A mapping's view of ``source`` through the feeds every mapping of that stream shares."""
        with self._feeds_lock:
            feeds = self.feeds.get(source.arn)
            if feeds is None:
                feeds = self.feeds[source.arn] = StreamFeeds(source)
            return SharedSource(feeds)

    def retry_delay(self, invocations: int) -> float:
        """The pause before retrying a batch invoked ``invocations`` times: doubling from the
        poll interval, capped at ``max_retry_backoff_s``."""
        return float(min(self.poll_interval_s * 2 ** min(invocations - 1, 30), self.max_retry_backoff_s))

    def add_mapping(self, mapping: EventSourceMapping) -> bool:
        """Add a mapping to a runtime (running or not), as creating an event source mapping on AWS.

        Idempotent: a mapping already present is left alone (False). Nothing is registered
        unless its source, handler and destination check out.
        """
        if any(r.m.mapping_id == mapping.mapping_id for r in self._runners):
            return False
        runner = MappingRunner(self, mapping)
        if self.started:
            runner.prepare()
        key = mapping.name or mapping.function_name
        self.stats[mapping.mapping_id if key in self.stats else key] = runner.stats
        self._runners.append(runner)
        if self.started:
            runner.thread.start()
        log.info("mapping added: %s <- %s", mapping.function_name, mapping.event_source_arn)
        return True

    def remove_mapping(self, mapping_id: str, timeout: float = 5) -> bool:
        """Stop and forget a mapping (as deleting an event source mapping); False if there is none.
        Its checkpoints stay on disk. ``timeout``: real seconds to wait for its threads."""
        runner = next((r for r in self._runners if r.m.mapping_id == mapping_id), None)
        if runner is None:
            return False
        self._runners.remove(runner)
        for key, stats in list(self.stats.items()):
            if stats is runner.stats:
                del self.stats[key]
        self._stop_runner(runner, time.monotonic() + timeout)
        if runner.source is not None:
            runner.source.leave()
            with self._feeds_lock:
                if not any(r.source is not None and r.source.feeds is runner.source.feeds for r in self._runners):
                    self.feeds.pop(runner.source.arn, None)  # its stream's last mapping
        log.info("mapping removed: %s <- %s", runner.m.function_name, runner.m.event_source_arn)
        return True

    @staticmethod
    def _stop_runner(runner: MappingRunner, deadline: float) -> None:
        runner.stopping.set()
        runner.wake.set()
        workers = list(runner.workers.values())
        for w in workers:
            w.wake.set()
        for t in [runner.thread] + [w.thread for w in workers]:
            if t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))
        runner.close_processes()

    def wake_all(self) -> None:
        """End every idle wait now: each shard reads again and each mapping lists its shards."""
        for runner in list(self._runners):
            runner.wake.set()
            for w in list(runner.workers.values()):
                w.wake.set()

    def start(self) -> None:
        """Check every source, handler and destination, then start polling in background threads."""
        if self.started:
            return
        if any(r.thread.ident is not None for r in self._runners):
            # Started before and stopped: fresh runners (threads start once), reading on from
            # the checkpoints, with the counters carried over.
            fresh = []
            for old_runner in self._runners:
                runner = MappingRunner(self, old_runner.m)
                runner.stats = old_runner.stats
                fresh.append(runner)
            self._runners = fresh
        with self._feeds_lock:
            self.feeds = {}  # a stream may have been made again under the same ARN meanwhile
        for runner in self._runners:
            runner.prepare()
        self.stopping.clear()
        for runner in self._runners:
            runner.thread.start()
        self.started = True
        log.info("local runtime started: %d mapping(s)", len(self._runners))

    def stop(self, timeout: float = 10) -> None:
        """Stop polling. A batch in flight is abandoned unacknowledged: it is redelivered after
        a restart, since only completed batches are checkpointed. ``timeout``: real seconds
        to wait for the threads."""
        self.stopping.set()
        for runner in self._runners:
            runner.stopping.set()
        self.wake_all()
        deadline = time.monotonic() + timeout
        for runner in self._runners:
            self._stop_runner(runner, deadline)
        self.started = False

    def status(self) -> list[dict[str, Any]]:
        """Each mapping's state, lag (iterator age, seconds), last error and counters (``lake status``)."""
        now = self.clock.now()
        names = {id(stats): key for key, stats in self.stats.items()}
        out = []
        for runner in list(self._runners):
            workers = list(runner.workers.values())
            lag = max((w.lag(now) for w in workers), default=0.0)
            last = runner.last_error
            out.append({
                "name": names.get(id(runner.stats), runner.m.function_name),
                "function": runner.m.function_name,
                "source": runner.m.event_source_arn,
                "state": runner.state if self.started or runner.state == "Disabled" else "Stopped",
                "state_reason": runner.state_reason,
                "lag_s": round(lag, 3),
                "shards": sum(1 for w in workers if not w.finished),
                "last_error": {"at": last[0], "error": last[1]} if last else None,
                **runner.stats.as_dict(),
            })
        return out

    def tick(self) -> int:
        """The next value of the runtime's logical clock (strictly increasing, thread-safe)."""
        return next(self._ticks)

    def note_activity(self) -> None:
        """Something was read or completed: earlier empty reads no longer prove idleness."""
        with self._activity_lock:  # two threads at once: the later tick must win
            self._last_activity = max(self._last_activity, self.tick())
        if self._idle_waiters:
            self.wake_all()  # someone waits for idleness: shards backing off must look again now

    def wait_idle(self, timeout: float) -> bool:
        """True once every shard of every mapping has been read to its end after this call began
        and after the last activity anywhere (so a record a handler wrote to a stream another
        mapping reads is waited for), with no record buffered and no batch in flight.

        ``timeout`` is real seconds, the caller's patience, not mapping time: under a test
        clock that stands still a batch waiting for its window keeps the runtime busy.
        """
        t0 = self.tick()
        deadline = time.monotonic() + timeout
        with self._activity_lock:
            self._idle_waiters += 1
        try:
            self.wake_all()  # idle shards back off: ask them (and the shard listings) to look now
            while time.monotonic() < deadline:
                for runner in self._runners:
                    if runner.error is not None:
                        raise runner.error
                since = max(t0, self._last_activity)
                if all(r.idle_since(since, t0) for r in list(self._runners)):
                    return True
                time.sleep(min(self.poll_interval_s, 0.05))
            return False
        finally:
            with self._activity_lock:
                self._idle_waiters -= 1

    def run_until_idle(self, timeout: float) -> bool:
        """Start if needed, then wait until idle (convenient for tests and the demo)."""
        self.start()
        return self.wait_idle(timeout)

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
