"""One mapping at work: its handler, source, destination and checkpoints, and the thread that
discovers shards and starts a :class:`ShardWorker` for each readable one (children only after
all their parents are fully processed)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from lake.errors import ConfigError, LakeError
from lake.filters import compile_filters
from lake.invocation import Handler, LambdaContext, function_arn, resolve_handler
from lake.local.runtime.checkpoint import CheckpointStore
from lake.local.runtime.destination import FailureDestination, queue_url
from lake.local.runtime.mapping import EventSourceMapping, MappingStats
from lake.local.runtime.sources import ShardInfo, StreamSource, open_source
from lake.local.runtime.worker import ShardWorker

if TYPE_CHECKING:
    from lake.local.runtime.runtime import LocalRuntime

log = logging.getLogger("lake.local.runtime")


class MappingRunner:
    """Runs one mapping inside a :class:`LocalRuntime`; :meth:`prepare` before starting ``thread``."""

    def __init__(self, runtime: LocalRuntime, mapping: EventSourceMapping) -> None:
        self.rt, self.m = runtime, mapping
        self.stats = MappingStats()
        self.source: StreamSource | None = None
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

    # -- setup -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Check the mapping, import its handler, open its source and destination, load its checkpoints."""
        self.m.validate()
        self.handler = resolve_handler(self.m.function)
        self.source = open_source(self.rt.clients, self.m.event_source_arn)
        if self.m.starting_position == "AT_TIMESTAMP" and self.source.kind != "kinesis":
            raise ConfigError(f"mapping {self.m.function_name}: AT_TIMESTAMP is for Kinesis streams only")
        dest = self.m.on_failure_destination
        url = queue_url(self.rt.clients, dest) if dest else None
        self.destination = FailureDestination(self.rt.clients, url, self.source.kind, self.source.arn,
                                              self.m.function_name, self.function_arn, self.stats, self.rt.clock,
                                              self.rt.stopping)
        for shard_id, entry in self.store.data["shards"].items():
            if entry.get("done"):
                self.done.add(shard_id)

    # -- shard discovery -----------------------------------------------------------------------
    def _run(self) -> None:
        assert self.source is not None
        rt = self.rt
        first = True
        while not rt.stopping.is_set():
            started = rt.tick()
            try:
                listing = self.source.shards()
            except LakeError as e:
                log.warning("%s: listing shards failed, will retry: %s", self.m.function_name, e)
                rt.clock.wait(rt.stopping, rt.poll_interval_s * 5)
                continue
            new = self._discover(listing, first)
            first = False
            if not new:
                self.last_settled_pass = started
            rt.stopping.wait(rt.poll_interval_s)  # polling pace: real time (see ShardWorker._run)

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

    def is_closed(self, shard_id: str) -> bool:
        """Whether the last listing showed the shard closed (it gets no new records)."""
        with self.lock:
            info = self.shards.get(shard_id)
            return bool(info and info.closed)

    def idle_since(self, tick: int) -> bool:
        """A discovery pass and every shard found nothing to do after ``tick``, and no shard waits to start."""
        if self.last_settled_pass <= tick:
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
    def context(self, shard_id: str) -> LambdaContext:
        """A fresh context for one invocation on ``shard_id`` (its log stream is the shard's)."""
        day = time.strftime("%Y/%m/%d", time.gmtime(self.rt.clock.now()))
        return LambdaContext(self.m.function_name, invoked_function_arn=self.function_arn,
                             memory_limit_in_mb=self.m.memory_mb, timeout_s=self.m.timeout_s,
                             log_stream_name=f"{day}/[$LATEST]{hashlib.md5(shard_id.encode()).hexdigest()}",
                             clock=self.rt.clock)
