"""What is in the raw zone: objects, records and bytes, per source table (for ``lake demo``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from lake.archive.keys import ForeignKeyError, RawObjectKey, zone_prefix
from lake.aws.clients import Clients, translate
from lake.settings import Settings


@dataclass(frozen=True)
class TableCounts:
    objects: int = 0
    records: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class RawSummary:
    """Totals of the raw zone; ``tables`` maps each source table to its :class:`TableCounts`.

    ``bytes`` is the compressed size in S3. ``foreign`` counts objects under ``raw/``
    that are not raw objects of the lake (they are left out of the totals).
    """

    objects: int
    records: int
    bytes: int
    tables: dict[str, TableCounts] = field(default_factory=dict)
    foreign: int = 0


def raw_summary(settings: Settings, clients: Clients | None = None) -> RawSummary:
    """List the raw zone; record counts come from each object's ``record-count`` metadata."""
    clients = clients or Clients(settings)
    s3 = clients.s3
    per_table: dict[str, list[int]] = {}
    foreign = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=settings.bucket, Prefix=zone_prefix(settings.prefix)):
            for obj in page.get("Contents", []):
                try:
                    key = RawObjectKey.parse(obj["Key"])
                except ForeignKeyError:
                    foreign += 1
                    continue
                head = s3.head_object(Bucket=settings.bucket, Key=obj["Key"])
                count = int(head.get("Metadata", {}).get("record-count", "0") or 0)
                t = per_table.setdefault(key.table, [0, 0, 0])
                t[0] += 1
                t[1] += count
                t[2] += int(obj["Size"])
    except (ClientError, BotoCoreError) as e:
        raise translate(e, "S3 bucket", settings.bucket) from e
    tables = {name: TableCounts(*v) for name, v in sorted(per_table.items())}
    return RawSummary(
        objects=sum(t.objects for t in tables.values()),
        records=sum(t.records for t in tables.values()),
        bytes=sum(t.bytes for t in tables.values()),
        tables=tables,
        foreign=foreign,
    )
