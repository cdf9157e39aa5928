"""``bootstrap``: load a DynamoDB table export into ``changes`` and ``<stem>_history`` so the
items that predate the stream (or that a stream outage longer than its 24 hours lost) are in
the lake's history and, after ``current_state``, in ``<stem>_current``.

``lake bootstrap --table T`` checks that point-in-time recovery is on (an export needs it),
starts ``ExportTableToPointInTime`` into the lake's bucket, waits for it and loads it;
``--from s3://…`` loads an export that already exists; ``--incremental --since --until``
exports (and loads) a window's net changes. Rows are built by the streaming path's code
from records made by :mod:`lake.glue.export` and committed by :func:`lake.curate.commit.commit_rows`
(each event id once: loading an export twice adds nothing), a chunk of items at a time.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from lake.aws.catalog import IcebergTables
from lake.aws.clients import Clients
from lake.aws.errors import AWS_ERRORS, error_code, translate
from lake.curate import names
from lake.curate.commit import commit_rows
from lake.curate.consumer import RecordRows
from lake.curate.decode import Change, Coordinates, decode
from lake.errors import ConfigError, TransientError
from lake.glue.export import ExportLayout, layout, lines, stream_record
from lake.glue.report import JobReport, Progress, no_progress
from lake.settings import Settings

CHUNK = 20_000  # items per commit: memory holds one chunk's rows


@dataclass(frozen=True)
class BootstrapOptions:
    table: str
    source: str | None = None  # s3://bucket/prefix of an existing export; None: start one
    incremental: bool = False
    since_us: int | None = None  # the incremental window
    until_us: int | None = None
    export_time_us: int | None = None  # when an export without manifest was taken (else asked or guessed)
    timeout_s: float = 3600.0
    dry_run: bool = False

    def __post_init__(self) -> None:
        if not self.table:
            raise ConfigError("bootstrap needs --table")
        if self.incremental and self.source is None and (self.since_us is None or self.until_us is None):
            raise ConfigError("an incremental export needs --since and --until (its window: on AWS at least "
                              "15 minutes and at most 24 hours)")
        if self.since_us is not None and self.until_us is not None and self.since_us >= self.until_us:
            raise ConfigError("the time range is empty: --since must be before --until")


class Exports:
    """The DynamoDB calls of a bootstrap, through an injected client, errors translated."""

    def __init__(self, dynamodb: Any, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ddb, self.sleep = dynamodb, sleep

    def describe(self, table: str) -> dict[str, Any]:
        try:
            return dict(self.ddb.describe_table(TableName=table)["Table"])
        except AWS_ERRORS as e:
            raise translate(e, "DynamoDB table", table) from e

    def require_pitr(self, table: str) -> None:
        try:
            got = self.ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        except AWS_ERRORS as e:
            raise translate(e, "DynamoDB table", table) from e
        status = (got.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
        if status != "ENABLED":
            raise ConfigError(_pitr_off(table, status))

    def start(self, table_arn: str, table: str, bucket: str, prefix: str, incremental: bool,
              since_us: int | None, until_us: int | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"TableArn": table_arn, "S3Bucket": bucket, "S3Prefix": prefix,
                                  "ExportFormat": "DYNAMODB_JSON"}
        if incremental:
            assert since_us is not None and until_us is not None
            kwargs["ExportType"] = "INCREMENTAL_EXPORT"
            kwargs["IncrementalExportSpecification"] = {
                "ExportFromTime": dt.datetime.fromtimestamp(since_us / 1e6, dt.UTC),
                "ExportToTime": dt.datetime.fromtimestamp(until_us / 1e6, dt.UTC),
                "ExportViewType": "NEW_AND_OLD_IMAGES"}
        try:
            return dict(self.ddb.export_table_to_point_in_time(**kwargs)["ExportDescription"])
        except AWS_ERRORS as e:
            if error_code(e) in ("PointInTimeRecoveryUnavailableException", "PointInTimeRecoveryUnavailable"):
                raise ConfigError(_pitr_off(table, "DISABLED")) from e
            raise translate(e, "DynamoDB table", table) from e

    def wait(self, arn: str, timeout_s: float, progress: Progress) -> dict[str, Any]:
        waited, delay = 0.0, 0.2
        while True:
            try:
                got = dict(self.ddb.describe_export(ExportArn=arn)["ExportDescription"])
            except AWS_ERRORS as e:
                raise translate(e, "DynamoDB export", arn) from e
            status = got.get("ExportStatus")
            if status == "COMPLETED":
                return got
            if status == "FAILED":
                raise ConfigError(f"DynamoDB export {arn} failed: {got.get('FailureCode')}: "
                                  f"{got.get('FailureMessage')}")
            if waited >= timeout_s:
                raise TransientError(f"DynamoDB export {arn} still {status} after {timeout_s:.0f} s; "
                                     f"load it later with --from s3://{got.get('S3Bucket')}/{got.get('S3Prefix')}")
            progress("bootstrap: waiting for the export", int(waited), int(timeout_s))
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, 10.0)


def _pitr_off(table: str, status: str | None) -> str:
    return (f"point-in-time recovery is {status or 'off'} for DynamoDB table {table}, and an export needs it: "
            f"turn it on (aws dynamodb update-continuous-backups --table-name {table} "
            f"--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true) and run lake bootstrap again")


def bootstrap(settings: Settings, options: BootstrapOptions, clients: Clients | None = None,
              progress: Progress = no_progress, exports: Exports | None = None, mapper: Any = None) -> JobReport:
    """Export (or find) and load (see the module doc). ``mapper`` (:data:`lake.glue.distributed.Mapper`):
    load the export's data files on its workers (an AWS Glue job's Spark executors), one unit
    per file, instead of in this process."""
    clients = clients or Clients(settings)
    exports = exports or Exports(clients.dynamodb)
    report = JobReport("bootstrap", options.dry_run)
    described = exports.describe(options.table)
    key_names = [k["AttributeName"] for k in described["KeySchema"]]
    table_arn = str(described["TableArn"])
    described_us: int | None = None  # the export's time as DescribeExport gives it (AWS does; moto does not)
    if options.source is None:
        if options.dry_run:
            exports.require_pitr(options.table)
            report.table(names.CHANGES).notes.append(
                f"would export {options.table} ({'incremental' if options.incremental else 'full'}) into "
                f"s3://{settings.bucket}/{settings.zone_prefix('exports')}{options.table}/ and load it")
            return report.done()
        exports.require_pitr(options.table)
        prefix = f"{settings.zone_prefix('exports')}{options.table}/{uuid.uuid4().hex}"
        started = exports.start(table_arn, options.table, settings.bucket, prefix, options.incremental,
                                options.since_us, options.until_us)
        done = exports.wait(str(started["ExportArn"]), options.timeout_s, progress)
        when = done.get("ExportTime")
        if isinstance(when, dt.datetime):
            described_us = round(when.timestamp() * 1e6)
        bucket, root = settings.bucket, prefix
    else:
        url = urlparse(options.source)
        if url.scheme != "s3" or not url.netloc:
            raise ConfigError(f"--from must be s3://bucket/prefix of an export, not {options.source!r}")
        bucket, root = url.netloc, url.path.strip("/")
    store = clients.store(bucket)
    keys = list(store.list(root.rstrip("/") + "/"))
    found = layout(f"s3://{bucket}/{root}", keys, store.get)
    export_time = found.export_time_us or described_us or options.export_time_us
    part = report.table(names.CHANGES)
    if export_time is None and found.export_type == "FULL_EXPORT":
        # the embedded DynamoDB writes no manifest: the data file's own time is the closest we have
        modified = {o.key: o.modified for o in store.list_dated(root.rstrip("/") + "/")}
        export_time = round(min(modified[k] for k in found.data_keys) * 1e6)
        part.notes.append("no manifest: the export time is the data file's write time (pass --export-time)")
    found = ExportLayout(found.export_id, found.data_keys, found.export_type, export_time, found.items)
    kind = "incremental (net changes)" if found.export_type == "INCREMENTAL_EXPORT" else "full"
    part.notes.append(f"{kind} export {found.export_id}: {len(found.data_keys)} data file(s) at "
                      f"s3://{bucket}/{root}")
    history = report.table(names.history_table(options.table))
    if mapper is not None:
        from lake.glue.distributed import load_export_distributed

        if load_export_distributed(settings, options.table, found, bucket, key_names, table_arn, mapper, clients,
                                   part, history, CHUNK, options.dry_run):
            report.job = "bootstrap (distributed)"
            return report.done()
        part.notes.append("the export's files need one new column with two types: loaded in one process")
    tables = IcebergTables(settings, clients)
    chunk: list[Change] = []

    def flush() -> None:
        if not chunk:
            return
        if not options.dry_run:
            done = commit_rows(tables, RecordRows(options.table, list(chunk)))
            part.rows_out += done.rows
            history.rows_out += done.commits[-1].rows
            part.snapshots_added += sum(1 for c in done.commits[:1] if c.snapshot_id is not None and c.rows)
            history.snapshots_added += sum(1 for c in done.commits[1:] if c.snapshot_id is not None and c.rows)
        chunk.clear()

    for i, key in enumerate(found.data_keys):
        body = store.get(key)
        part.files_in += 1
        part.bytes_in += len(body)
        for doc in lines(body):
            record, shard = stream_record(doc, key_names, found, table_arn)
            chunk.append(decode(options.table, record, Coordinates(shard, str(record["dynamodb"]["SequenceNumber"]))))
            part.rows_in += 1
            if len(chunk) >= CHUNK:
                flush()
        progress("bootstrap: export files loaded", i + 1, len(found.data_keys))
        flush()
    history.rows_in = part.rows_in
    if found.items is not None and found.items != part.rows_in:
        part.notes.append(f"the manifest counts {found.items} items, the data files hold {part.rows_in}")
    if not options.dry_run and part.rows_in and not part.rows_out:
        part.notes.append("every exported item was already loaded: nothing to change")
    return report.done()
