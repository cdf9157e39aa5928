"""The replay loop: select archived changes, batch them as Lambda would, send, retry
partial failures as Lambda does, checkpoint, report."""

from __future__ import annotations

import gc
import logging
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from lake.clock import SYSTEM_CLOCK, Clock
from lake.errors import ConfigError
from lake.prompt import refuse_unconfirmed
from lake.replay.checkpoint import Checkpoint
from lake.replay.selection import Selection
from lake.replay.source import (
    Change,
    ObjectStore,
    ReadStats,
    iter_change_chunks,
    select_objects,
)
from lake.replay.targets import LAMBDA_MAX_RECORDS, Sender, Target, event_payload, open_sender
from lake.settings import Settings

log = logging.getLogger(__name__)

_ENVELOPE_BYTES = len(b'{"Records":[]}')
_POS, _SEQ = operator.itemgetter(7), operator.itemgetter(1)


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay. ``rate`` is events per second (None: as fast as the target takes them).

    ``yes`` confirms sending to a non-local AWS target; otherwise ``confirm`` is asked
    (the CLI passes an interactive prompt) and, absent both, the replay is refused.
    """

    batch_size: int = 100
    dry_run: bool = False
    rate: float | None = None
    resume: bool = False
    max_retries: int = 3
    retry_backoff_s: float = 0.2
    yes: bool = False
    confirm: Callable[[str], bool] | None = field(default=None, compare=False)
    sample_size: int = 3
    checkpoint: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= LAMBDA_MAX_RECORDS:
            raise ConfigError(f"batch size {self.batch_size} is outside 1..{LAMBDA_MAX_RECORDS} "
                              "(Lambda's limit for DynamoDB stream batches)")
        if self.rate is not None and self.rate <= 0:
            raise ConfigError(f"rate {self.rate} must be a positive number of events per second")
        if self.max_retries < 0:
            raise ConfigError("max retries cannot be negative")


@dataclass(frozen=True)
class Failure:
    """A change the target did not acknowledge after every retry, with its coordinates."""

    table: str
    shard: str
    sequence_number: str
    event_id: str
    key: str
    event_name: str
    reason: str
    attempts: int


@dataclass(frozen=True)
class ProgressUpdate:
    objects_read: int
    objects_total: int
    events_sent: int
    batches: int
    failures: int


@dataclass(frozen=True)
class ReplayReport:
    """The outcome of one run. ``events_selected`` counts this run's changes (sent or failed);
    ``resumed_from`` the events a previous, interrupted run had already delivered."""

    target: str
    dry_run: bool
    events_selected: int
    events_sent: int
    batches: int
    retries: int
    failures: tuple[Failure, ...]
    duplicates_dropped: int
    objects_listed: int
    objects_read: int
    resumed_from: int
    checkpoint_path: str | None
    elapsed_s: float
    sample: tuple[dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["events_per_s"] = round(self.events_selected / self.elapsed_s, 1) if self.elapsed_s else None
        return d


def checkpoint_path(settings: Settings, selection: Selection, target: Target) -> Path:
    """``<state_dir>/replay-<hash of selection + target>.json``."""
    return Path(settings.state_dir) / f"replay-{selection.digest(target.render())}.json"


def iter_batches(changes: Iterable[Change], size: int, max_bytes: int | None) -> Iterator[list[Change]]:
    """Batches of at most ``size`` changes whose event payload stays within ``max_bytes``
    (a single change larger than that still goes, alone: the target reports it), each of
    one stream only, as Lambda's batches are."""
    batch: list[Change] = []
    nbytes = _ENVELOPE_BYTES
    for c in changes:
        if batch and (len(batch) >= size or c.pos != batch[0].pos
                      or (max_bytes is not None and nbytes + len(c.record) + 1 > max_bytes)):
            yield batch
            batch, nbytes = [], _ENVELOPE_BYTES
        batch.append(c)
        nbytes += len(c.record) + 1
    if batch:
        yield batch


def batch_chunks(chunks: Iterable[list[Change]], size: int, max_bytes: int | None) -> Iterator[list[Change]]:
    """:func:`iter_batches` over lists of changes: slices instead of a per-change loop when
    only the count limits a batch (the payload limit needs each record's size)."""
    if max_bytes is not None:
        yield from iter_batches(chain.from_iterable(chunks), size, max_bytes)
        return
    pending: list[Change] = []
    for chunk in chunks:
        i = 0
        if pending and chunk and chunk[0].pos != pending[0].pos:
            yield pending  # a batch never spans two streams (a chunk is one stream's)
            pending = []
        if pending:
            i = size - len(pending)
            pending.extend(chunk[:i])
            if len(pending) < size:
                continue
            yield pending
            pending = []
        while len(chunk) - i >= size:
            yield chunk[i:i + size]
            i += size
        pending = chunk[i:]
    if pending:
        yield pending


def _refuse_remote(settings: Settings, target: Target, options: ReplayOptions) -> None:
    if not (options.dry_run or not target.is_remote or settings.is_local):
        refuse_unconfirmed(settings, f"replay would send events to {target.render()}", options.yes, options.confirm)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects alive before a replay out of the cyclic GC's full collections during it.

    A full collection walks every tracked object of the process (modules, boto3, the
    caller's data): measured, one took 18-25 ms of a 300 ms, 100k-event replay
    (benchmarks/bench_replay.py). ``gc.freeze`` parks what exists now; objects created
    during the replay are collected as usual, and ``gc.unfreeze`` gives the rest back to
    the collector. A caller that froze objects itself is left alone.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def replay(
    settings: Settings,
    selection: Selection,
    target: Target | str,
    options: ReplayOptions | None = None,
    clients: Any = None,
    progress: Callable[[ProgressUpdate], None] | None = None,
    store: ObjectStore | None = None,
    sender: Sender | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> ReplayReport:
    """Replay archived changes to ``target`` as Lambda DynamoDB-stream events.

    Reads the raw zone of ``settings.bucket`` (or ``store``), keeps the changes ``selection``
    picks, in stream order without duplicates, and sends ``{"Records": [...]}`` events whose
    records are the archived ones unaltered. Partial failures are retried from the lowest
    failed item up to ``options.max_retries`` times, then reported in the result (never
    skipped silently). A checkpoint is written after each acknowledged batch, so
    ``options.resume`` continues an interrupted replay. ``clients`` (a
    :class:`lake.aws.clients.Clients`) is built from settings only when S3 or an AWS
    target needs it; ``sender`` overrides the target's sender (fault injection in tests);
    ``clock`` paces ``options.rate`` and the retry backoff, and times the run.
    """
    with frozen_heap():
        return _replay(settings, selection, target, options, clients, progress, store, sender, clock)


def _replay(
    settings: Settings,
    selection: Selection,
    target: Target | str,
    options: ReplayOptions | None = None,
    clients: Any = None,
    progress: Callable[[ProgressUpdate], None] | None = None,
    store: ObjectStore | None = None,
    sender: Sender | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> ReplayReport:
    options = options or ReplayOptions()
    target = Target.parse(target) if isinstance(target, str) else target
    _refuse_remote(settings, target, options)
    started = clock.monotonic()

    def get_clients() -> Any:
        nonlocal clients
        if clients is None:
            from lake.aws.clients import Clients

            clients = Clients(settings)
        return clients

    store = store or get_clients().store(settings.bucket)
    cp_path = checkpoint_path(settings, selection, target)
    cp = Checkpoint.load(cp_path) if options.resume else None
    resumed_from = cp.events_sent if cp else 0
    if cp is None:
        cp = Checkpoint(cp_path, selection.describe(), target.render())
    elif cp.complete:
        log.info("checkpoint %s: that replay already completed; sending only newer changes", cp_path)
    use_checkpoint = options.checkpoint and not options.dry_run

    objects = select_objects(store, settings.prefix, selection)
    for table in sorted(set(selection.tables) - {o.table for o in objects}):
        log.warning("no archived changes of table %r match the selection (a typo? archived tables are "
                    "the raw/table=... folders of s3://%s)", table, settings.bucket)
    stats = ReadStats()

    def report_progress(_obj: Any = None) -> None:
        if progress:
            progress(ProgressUpdate(stats.objects_read, stats.objects_total, sent, batches, len(failures)))

    chunks = iter_change_chunks(store, objects, selection, after=cp.positions, stats=stats,
                                on_object=report_progress if progress else None)
    sent = batches = retries = selected = 0
    failures: list[Failure] = []
    sample: list[dict[str, Any]] = []

    if options.dry_run:
        from lake.replay.targets import LAMBDA_MAX_PAYLOAD

        max_bytes = LAMBDA_MAX_PAYLOAD if target.kind == "lambda" else None
        for batch in batch_chunks(chunks, options.batch_size, max_bytes):
            batches += 1
            selected += len(batch)
            for c in batch[: max(0, options.sample_size - len(sample))]:
                sample.append(orjson.loads(c.record))
        report_progress()
        return ReplayReport(target.render(), True, selected, 0, batches, 0, (), stats.duplicates,
                            len(objects), stats.objects_read, resumed_from, None,
                            clock.monotonic() - started, tuple(sample))

    out = sender or open_sender(target, _LazyClients(get_clients), settings.region, start_batch=cp.batches,
                               clock=clock)
    if use_checkpoint:
        cp.complete = False
        cp.save()

    def acknowledge(done: Sequence[Change]) -> None:
        nonlocal sent
        cp.positions.update(zip(map(_POS, done), map(_SEQ, done), strict=True))  # the last one wins
        sent += len(done)
        cp.events_sent += len(done)
        if use_checkpoint:
            cp.save()

    try:
        for batch in batch_chunks(chunks, options.batch_size, out.max_payload_bytes):
            selected += len(batch)
            if options.rate:
                wait = started + sent / options.rate - clock.monotonic()
                if wait > 0:
                    clock.sleep(wait)
            pending: Sequence[Change] = batch
            attempts = 0
            batches += 1
            cp.batches += 1
            while pending:
                attempts += 1
                result = out.send(pending, event_payload(pending))
                if result.ok:
                    acknowledge(pending)
                    break
                at = max(0, min(result.failed_index or 0, len(pending)))
                if at:
                    acknowledge(pending[:at])
                pending = pending[at:]
                if attempts > options.max_retries:
                    for c in pending:
                        f = Failure(c.table, c.shard, str(c.seq), c.id, c.key, c.event, result.reason, attempts)
                        failures.append(f)
                        cp.failures.append(asdict(f))
                    log.warning("%d change(s) not acknowledged by %s after %d attempts: %s",
                                len(pending), target.render(), attempts, result.reason)
                    # reported (here and in the checkpoint), so the replay moves past them,
                    # as Lambda does once its retries are exhausted
                    cp.positions.update(zip(map(_POS, pending), map(_SEQ, pending), strict=True))
                    if use_checkpoint:
                        cp.save()
                    break
                retries += 1
                clock.sleep(options.retry_backoff_s * (2 ** (attempts - 1)))
            report_progress()
    finally:
        out.close()
    if use_checkpoint:
        cp.complete = True
        cp.save()
    report_progress()
    return ReplayReport(target.render(), False, selected, sent, batches, retries, tuple(failures),
                        stats.duplicates, len(objects), stats.objects_read, resumed_from,
                        str(cp_path) if use_checkpoint else None, clock.monotonic() - started)


class _LazyClients:
    """Builds the Clients only when a sender asks for one (python/file targets never do)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory

    def client(self, service: str) -> Any:
        return self._factory().client(service)
