"""One mapping at work: its handler, source, destination and checkpoints, and the thread that
discovers shards and starts a :class:`ShardWorker` for each readable one (children only after
all their parents are fully processed).

Shards are listed on a timer (the runtime's ``discovery_interval_s``), when a shard ends,
and when the runtime is asked whether it is idle, not on every poll. The same thread
supervises the workers: one that crashed is restarted from its checkpoint, logged and
counted. A mapping whose stream no longer exists is disabled, not retried forever.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
import time
from typing import TYPE_CHECKING

from lake.errors import ConfigError, LakeError, NotFoundError
from lake.filters import compile_filters
from lake.invocation import Handler, LambdaContext, function_arn, resolve_handler
from lake.local.runtime.checkpoint import CheckpointStore
from lake.local.runtime.destination import FailureDestination, queue_url
from lake.local.runtime.feed import SharedSource
from lake.local.runtime.mapping import EventSourceMapping, MappingStats
from lake.local.runtime.process import ProcessHandler
from lake.local.runtime.sources import ShardInfo, open_source
from lake.local.runtime.worker import ShardWorker

if TYPE_CHECKING:
    from lake.local.runtime.runtime import LocalRuntime

log = logging.getLogger("lake.local.runtime")


class MappingRunner:
    """Runs one mapping inside a :class:`LocalRuntime`; :meth:`prepare` before starting ``thread``."""

    def __init__(self, runtime: LocalRuntime, mapping: EventSourceMapping) -> None:
        self.rt, self.m = runtime, mapping
        self.stopping = threading.Event()  # set when the runtime stops or the mapping is removed
        self.wake = threading.Event()  # set to list shards and supervise workers now
        self.state = "Creating"  # then Enabled, or Disabled (its stream is gone)
        self.state_reason = ""
        self.last_error: tuple[float, str] | None = None  # (epoch seconds, text)
        self.stats = MappingStats()
        self.source: SharedSource | None = None
        self.handler: Handler | None = None
        self.destination: FailureDestination | None = None
        self.predicate = compile_filters(mapping.filter_criteria)
        self.store = CheckpointStore(runtime.state_dir / f"{mapping.mapping_id}.json", mapping.mapping_id,
                                     mapping.event_source_arn)
        self.function_arn = function_arn(mapping.function_name, runtime.region)
        self.workers: dict[str, ShardWorker] = {}
        self.shards: dict[str, ShardInfo] = {}
        self.done: set[str] = set()
        self.lock = threading.Lock()
        self.last_settled_pass = 0  # runtime tick at the start of the last discovery pass that started nothing
        self.thread = threading.Thread(target=self._run, name=f"esm-{mapping.function_name}", daemon=True)
        self.error: BaseException | None = None
        self.crashes: dict[str, int] = {}  # restarts per shard
        self._processes: dict[str, ProcessHandler] = {}  # shard -> its handler's process (handler_processes)

    # -- setup -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Check the mapping, import its handler, open its source and destination, load its checkpoints."""
        self.m.validate()
        if self.rt.handler_processes and isinstance(self.m.function, str):
            # Imported by its worker processes only (this process need not hold pyarrow and the
            # like): here its module is only looked for.
            module = self.m.function.partition(":")[0]
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                raise ConfigError(f"handler {self.m.function!r}: cannot find module {module!r}")
        else:
            self.handler = resolve_handler(self.m.function)
        self.source = self.rt.shared_source(open_source(self.rt.clients, self.m.event_source_arn))
        if self.m.starting_position == "AT_TIMESTAMP" and self.source.kind != "kinesis":
            raise ConfigError(f"mapping {self.m.function_name}: AT_TIMESTAMP is for Kinesis streams only")
        dest = self.m.on_failure_destination
        url = queue_url(self.rt.clients, dest) if dest else None
        self.destination = FailureDestination(self.rt.clients, url, self.source.kind, self.source.arn,
                                              self.m.function_name, self.function_arn, self.stats, self.rt.clock,
                                              self.stopping, self.rt.state_dir / "dead-letter")
        self.store.bind(self.source.identity())
        for shard_id, entry in self.store.data["shards"].items():
            if entry.get("done"):
                self.done.add(shard_id)

    # -- shard discovery -----------------------------------------------------------------------
    def _run(self) -> None:
        assert self.source is not None
        rt = self.rt
        first = True
        failures = 0
        self.state = "Enabled"
        while not self.stopping.is_set():
            self.wake.clear()
            started = rt.tick()
            try:
                listing = self.source.shards()
                new = self._discover(listing, first)
            except NotFoundError as e:
                self._disable(f"its source no longer exists: {e}")
                return
            except Exception as e:  # LakeError of the listing, or a bug of ours: never die silently
                failures += 1
                self.note_error(f"listing shards failed: {e}")
                if isinstance(e, LakeError):
                    log.warning("%s: listing shards failed, will retry: %s", self.m.function_name, e)
                else:
                    log.exception("%s: shard discovery crashed, will retry", self.m.function_name)
                rt.clock.wait(self.stopping, min(rt.poll_interval_s * 5 * 2 ** min(failures - 1, 6), 30.0))
                continue
            failures = 0
            first = False
            if not new:
                self.last_settled_pass = started
            wait = rt.discovery_interval_s
            while not self.stopping.is_set():
                restart_in = self._supervise()
                # Discovery pace is real time, as polling (see ShardWorker._run).
                if self.wake.wait(min(wait, restart_in)) or restart_in >= wait:
                    break
                wait -= restart_in

    def _disable(self, reason: str) -> None:
        self.state, self.state_reason = "Disabled", reason
        self.note_error(reason)
        log.error("%s: mapping disabled: %s", self.m.function_name, reason)
        self.stopping.set()
        for w in list(self.workers.values()):
            w.wake.set()

    def _supervise(self) -> float:
        """Restart crashed workers (each from its checkpoint); seconds until one is due, else inf."""
        due = float("inf")
        with self.lock:
            for shard_id, w in list(self.workers.items()):
                if w.crashed is None or w.thread.is_alive() or self.stopping.is_set():
                    continue
                # The first restart is at once; a worker that keeps crashing waits longer each time.
                crashes = self.crashes.get(shard_id, 0)
                delay = 0.0 if crashes == 0 else min(0.5 * 2 ** (crashes - 1), 30.0)
                left = w.crashed_at + delay - time.monotonic()
                if left > 0:
                    due = min(due, left)
                    continue
                self.crashes[shard_id] = crashes + 1
                self.stats.add(worker_restarts=1)
                log.error("%s: restarting the worker of shard %s from its checkpoint (restart %d)",
                          self.m.function_name, shard_id, crashes + 1)
                # From its checkpoint; without one yet, from the first record it had not done
                # (its starting position, LATEST say, would skip what it had read).
                has_checkpoint = bool((self.store.shard(shard_id) or {}).get("seq"))
                worker = ShardWorker(self, shard_id, w.position,
                                     resume_at=None if has_checkpoint else w.first_pending() or w.resume_at)
                self.workers[shard_id] = worker
                worker.thread.start()
        return due

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
                worker = ShardWorker(self, s.shard_id, position)
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
        """Record a shard as fully processed (call with ``lock`` held)."""
        self.done.add(shard_id)
        self.store.update(shard_id, done=True)

    def note_error(self, text: str) -> None:
        """Remember the latest error of this mapping (for ``lake status``)."""
        self.last_error = (self.rt.clock.now(), text)

    def is_closed(self, shard_id: str) -> bool:
        """Whether the last listing showed the shard closed (it gets no new records)."""
        with self.lock:
            info = self.shards.get(shard_id)
            return bool(info and info.closed)

    def idle_since(self, tick: int, listed_after: int | None = None) -> bool:
        """Every shard found nothing to do after ``tick``, a discovery pass after ``listed_after``
        (default ``tick``) started nothing, and no shard waits to start. A disabled mapping is idle."""
        if self.state == "Disabled":
            return True
        if self.last_settled_pass <= (tick if listed_after is None else listed_after):
            return False
        with self.lock:
            workers = list(self.workers.values())
            # A child whose parents just finished is work not yet started, not idleness.
            startable = any(
                sid not in self.workers and sid not in self.done
                and all(p not in self.shards or p in self.done for p in info.parents)
                for sid, info in self.shards.items()
            )
        return not startable and all(w.idle_since(tick) for w in workers)

    # -- delivery --------------------------------------------------------------------------------
    def process_handler(self, shard_id: str) -> ProcessHandler | None:
        """The process running the handler for ``shard_id`` when handlers run in processes, else None."""
        if not self.rt.handler_processes or not isinstance(self.m.function, str):
            return None
        with self.lock:
            proc = self._processes.get(shard_id)
            if proc is None:
                proc = self._processes[shard_id] = ProcessHandler(self.m.function)
            return proc

    def close_processes(self) -> None:
        """End the handler processes (after the workers stopped)."""
        with self.lock:
            procs, self._processes = list(self._processes.values()), {}
        for proc in procs:
            proc.close()

    def context(self, shard_id: str) -> LambdaContext:
        """A fresh context for one invocation on ``shard_id`` (its log stream is the shard's)."""
        day = time.strftime("%Y/%m/%d", time.gmtime(self.rt.clock.now()))
        return LambdaContext(self.m.function_name, invoked_function_arn=self.function_arn,
                             memory_limit_in_mb=self.m.memory_mb, timeout_s=self.m.timeout_s,
                             log_stream_name=f"{day}/[$LATEST]{hashlib.md5(shard_id.encode()).hexdigest()}",
                             clock=self.rt.clock)
