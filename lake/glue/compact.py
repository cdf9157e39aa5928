"""``compact``: per table and partition, bin-pack small data files into files of a target
size, expire snapshots older than the time-travel window, remove orphan files.

The plan (:func:`plan_bins`) is pure. Each bin is read one file at a time and streamed into
one new Parquet file (memory holds one input file's rows, never a partition's), then the
bin's files are swapped for the new one in one optimistic Iceberg commit (an ``overwrite``
snapshot holding the same rows): a reader sees the old files or the new one, never both
nor neither. A consumer committing meanwhile only makes the swap re-plan (ADR 0003, 5).
Nothing is deleted that a retained snapshot still reaches; files no snapshot reaches are
deleted only once older than the orphan grace (a writer may be about to commit them).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pyarrow as pa

from lake.aws.catalog import DataFileRef, IcebergMaintenance, IcebergTables
from lake.aws.clients import Clients
from lake.errors import ConfigError, NotFoundError, TerminalError
from lake.glue.report import JobReport, Progress, TableReport, no_progress
from lake.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = logging.getLogger(__name__)

MB = 1024 * 1024
DAY_S = 86_400.0
JOB_PROPERTY = "lake.job"  # snapshot summary: which job wrote a snapshot (current_state skips compactions)


@dataclass(frozen=True)
class CompactOptions:
    """What ``compact`` does; the defaults are the issue's (128 MB files, a 7-day window)."""

    tables: tuple[str, ...] = ()  # catalog names; empty = every Iceberg table of the database
    target_bytes: int = 128 * MB
    small_fraction: float = 0.75  # a file under this fraction of the target is "small"
    retention_s: float = 7 * DAY_S  # snapshots younger than this are kept (time travel)
    orphan_grace_s: float = 3 * DAY_S  # unreferenced files younger than this are kept
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.target_bytes < 1:
            raise ConfigError("--target-mb must be positive")
        if not 0 < self.small_fraction <= 1:
            raise ConfigError("the small-file fraction must be in (0, 1]")
        if self.retention_s < 0 or self.orphan_grace_s < 0:
            raise ConfigError("--retention-days and --orphan-age-hours must not be negative")


def plan_bins(files: Sequence[DataFileRef], target_bytes: int, small_fraction: float = 0.75
              ) -> list[list[DataFileRef]]:
    """Bins of small files to rewrite, each becoming one file: per partition, first-fit
    decreasing by size into bins of at most ``target_bytes``; a bin of one file is left as
    it is (rewriting it would change nothing), so a second run plans nothing. Files with
    deletes applied are never picked (the lake writes none; another engine might)."""
    by_partition: dict[tuple[tuple[str, object], ...], list[DataFileRef]] = {}
    for f in files:
        if f.size < target_bytes * small_fraction and not f.has_deletes:
            by_partition.setdefault(f.partition, []).append(f)
    bins: list[list[DataFileRef]] = []
    for partition in sorted(by_partition, key=repr):
        open_bins: list[tuple[int, list[DataFileRef]]] = []
        for f in sorted(by_partition[partition], key=lambda f: (-f.size, f.path)):
            for i, (used, members) in enumerate(open_bins):
                if used + f.size <= target_bytes:
                    members.append(f)
                    open_bins[i] = (used + f.size, members)
                    break
            else:
                open_bins.append((f.size, [f]))
        bins.extend(members for _, members in open_bins if len(members) > 1)
    return bins


def compact(settings: Settings, options: CompactOptions, clients: Clients | None = None,
            progress: Progress = no_progress, now: float | None = None) -> JobReport:
    """Compact, expire and clean every table of ``options`` (see the module doc)."""
    clients = clients or Clients(settings)
    tables = IcebergTables(settings, clients)
    maintenance = IcebergMaintenance(tables)
    now = time.time() if now is None else now
    report = JobReport("compact", options.dry_run)
    names = options.tables or tuple(tables.list())
    for name in names:
        part = report.table(name)
        try:
            table = tables.load(name)
        except (NotFoundError, TerminalError) as e:
            if options.tables:
                raise
            part.notes.append(f"skipped: {e}")
            continue
        _rewrite(maintenance, name, table, options, part, progress)
        expired = maintenance.expire_snapshots(name, int((now - options.retention_s) * 1000),
                                               dry_run=options.dry_run)
        part.snapshots_expired = len(expired)
        _remove_orphans(settings, clients, maintenance, name, options, part, now)
    return report.done()


def _rewrite(maintenance: IcebergMaintenance, name: str, table: Table, options: CompactOptions,
             part: TableReport, progress: Progress) -> None:
    bins = plan_bins(maintenance.data_files(table), options.target_bytes, options.small_fraction)
    total = sum(len(b) for b in bins)
    done = 0
    for members in bins:
        rows = sum(f.records for f in members)
        size = sum(f.size for f in members)
        if options.dry_run:
            part.files_in += len(members)
            part.files_out += 1
            part.rows_in += rows
            part.rows_out += rows
            part.bytes_in += size
            continue
        path = maintenance.partition_path(table, members[0])
        new = maintenance.write_file(table, _batches(maintenance, table, members),
                                     path, f"{uuid.uuid4()}-compacted.parquet")
        if int(new.record_count) != rows:  # never swap files that do not hold the same rows
            raise TerminalError(f"{name}: compaction of {len(members)} files wrote {new.record_count} rows, "
                                f"not {rows}; nothing committed")
        committed = maintenance.replace_files(name, [f.path for f in members], [new],
                                              {JOB_PROPERTY: "compact", "lake.files-replaced": str(len(members))},
                                              maintenance.partition_filter(members[0]))
        done += len(members)
        progress(f"compact {name}", done, total)
        if committed is None:
            part.notes.append(f"{len(members)} files in {path or 'the table'} were replaced meanwhile: skipped")
            continue
        part.files_in += len(members)
        part.files_out += 1
        part.rows_in += rows
        part.rows_out += int(new.record_count)
        part.bytes_in += size
        part.bytes_out += int(new.file_size_in_bytes)
        part.snapshots_added += 1


def _batches(maintenance: IcebergMaintenance, table: Table, members: Sequence[DataFileRef]
             ) -> Iterator[pa.RecordBatch]:
    yield from maintenance.read(table, members)


def _remove_orphans(settings: Settings, clients: Clients, maintenance: IcebergMaintenance, name: str,
                    options: CompactOptions, part: TableReport, now: float) -> None:
    """Delete the files under the table's location that no retained snapshot or metadata file
    reaches and that are older than the grace."""
    table = maintenance.tables.load(name)
    referenced = maintenance.referenced_files(table)
    location = urlparse(table.location())
    store = clients.store(location.netloc)
    prefix = location.path.lstrip("/").rstrip("/") + "/"
    doomed, young = [], 0
    for obj in store.list_dated(prefix):
        if f"s3://{location.netloc}/{obj.key}" in referenced:
            continue
        if obj.modified > now - options.orphan_grace_s:
            young += 1
            continue
        doomed.append(obj.key)
    if young:
        part.notes.append(f"{young} unreferenced file(s) younger than the orphan grace kept")
    part.files_deleted = len(doomed)
    if doomed and not options.dry_run:
        store.delete(doomed)
