"""The dashboard's numbers: each visual's query run on an engine, plus the pipeline's health.

Locally the engine is DuckDB (``lake.query.local``); on AWS, Athena. Health figures that are
not in any table come from their own source through the doors: the dead-letter queue's depth
from SQS, quarantined records from the storage door's listing, and (locally) files per
partition from the Iceberg metadata that Athena's ``"changes$files"`` reads.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lake.aws.clients import Clients
from lake.aws.errors import AWS_ERRORS, translate
from lake.clock import Clock, SystemClock
from lake.dashboard.queries import query_params, query_text
from lake.dashboard.visuals import VISUALS, Visual
from lake.errors import NotFoundError, QueryError
from lake.settings import Settings

log = logging.getLogger(__name__)

Row = dict[str, Any]


@dataclass(frozen=True)
class Health:
    """The pipeline's health at ``generated_at`` (naive UTC, as Athena shows times)."""

    newest_change_time: datetime | None
    lag_seconds: float | None
    dead_letter_depth: int | None  # None: the queue could not be read
    quarantined: int


@dataclass(frozen=True)
class DashboardData:
    """Every visual's rows (by visual id), the health figures, and what they were built from."""

    rows: dict[str, list[Row]]
    health: Health
    generated_at: datetime
    attribute: str
    engine: str
    errors: dict[str, str] = field(default_factory=dict)  # visual id -> why it has no rows


def collect(settings: Settings, engine: Any, clients: Clients | None = None, clock: Clock | None = None,
            visuals: tuple[Visual, ...] = VISUALS) -> DashboardData:
    """Run every visual's query on ``engine`` and read the health figures."""
    clients = clients or Clients(settings)
    clock = clock or SystemClock()
    now = datetime.fromtimestamp(clock.now(), UTC).replace(tzinfo=None)
    rows: dict[str, list[Row]] = {}
    errors: dict[str, str] = {}
    local = getattr(engine, "name", "") == "local"
    for v in visuals:
        try:
            if v.athena_only and local:
                rows[v.id] = files_per_partition(settings, clients)
            else:
                rows[v.id] = engine.query(query_text(v, settings), query_params(v, settings) or None).to_pylist()
        except (QueryError, NotFoundError) as e:
            # a lake with nothing curated yet has no `changes` table: the page says so per visual
            rows[v.id], errors[v.id] = [], str(e)
    lag = rows.get("pipeline_lag") or [{}]
    newest = lag[0].get("newest_change_time")
    health = Health(
        newest_change_time=newest,
        lag_seconds=(now - newest).total_seconds() if newest is not None else None,
        dead_letter_depth=dead_letter_depth(settings, clients),
        quarantined=quarantined(settings, clients),
    )
    return DashboardData(rows, health, now, settings.dashboard_attribute, getattr(engine, "name", "?"), errors)


def files_per_partition(settings: Settings, clients: Clients) -> list[Row]:
    """Data files (and records) per (table_name, dt) partition of ``changes``' current snapshot:
    the rows of ``athena_queries/dashboard/athena_only/files_per_partition.sql``, read with pyiceberg."""
    from lake.aws.catalog import IcebergTables
    from lake.curate.names import CHANGES

    table = IcebergTables(settings, clients).find(CHANGES)
    if table is None or table.current_snapshot() is None:
        return []
    files = table.inspect.files().select(["partition", "record_count"]).to_pylist()
    count: Counter[tuple[str, str]] = Counter()
    records: Counter[tuple[str, str]] = Counter()
    for f in files:
        key = (f["partition"]["table_name"], f["partition"]["dt"])
        count[key] += 1
        records[key] += int(f["record_count"])
    return [{"table_name": t, "dt": d, "files": n, "records": records[(t, d)]} for (t, d), n in sorted(count.items())]


def dead_letter_depth(settings: Settings, clients: Clients) -> int | None:
    """Messages in the dead-letter queue (visible and in flight); None when it cannot be read."""
    sqs = clients.sqs
    try:
        url = sqs.get_queue_url(QueueName=settings.dlq)["QueueUrl"]
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    except AWS_ERRORS as e:
        log.warning("dead-letter queue %s: %s", settings.dlq, translate(e, "SQS queue", settings.dlq))
        return None
    return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))


def quarantined(settings: Settings, clients: Clients) -> int:
    """Records in the quarantine zone (``lake.deadletter``: one object per record)."""
    try:
        return sum(1 for _ in clients.store(settings.bucket).list(settings.zone_prefix("quarantine")))
    except NotFoundError:  # no bucket yet
        return 0
