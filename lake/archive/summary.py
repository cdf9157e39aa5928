"""What is in the raw zone: objects, records and bytes, per source table (for ``lake demo``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lake.archive.keys import ForeignKeyError, RawObjectKey, zone_prefix
from lake.aws.clients import Clients
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
    store = (clients or Clients(settings)).store(settings.bucket)
    per_table: dict[str, list[int]] = {}
    foreign = 0
    for obj in store.list_info(zone_prefix(settings.prefix)):
        try:
            key = RawObjectKey.parse(obj.key)
        except ForeignKeyError:
            foreign += 1
            continue
        count = int(store.head(obj.key).metadata.get("record-count", "0") or 0)
        t = per_table.setdefault(key.table, [0, 0, 0])
        t[0] += 1
        t[1] += count
        t[2] += obj.size
    tables = {name: TableCounts(*v) for name, v in sorted(per_table.items())}
    return RawSummary(
        objects=sum(t.objects for t in tables.values()),
        records=sum(t.records for t in tables.values()),
        bytes=sum(t.bytes for t in tables.values()),
        tables=tables,
        foreign=foreign,
    )
