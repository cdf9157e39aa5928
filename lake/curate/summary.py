"""What the curated zone holds, for ``lake demo``: rows, files and snapshots per Iceberg table."""

from __future__ import annotations

from dataclasses import dataclass, field

from lake.aws.catalog import IcebergTables
from lake.aws.clients import Clients
from lake.curate.names import CHANGES
from lake.errors import NotFoundError
from lake.settings import Settings


@dataclass(frozen=True)
class CuratedSummary:
    """Rows in ``changes``, rows per ``<stem>_history``, the catalog's tables, and per table
    the data files and snapshots of its current state."""

    changes_rows: int
    history_rows: dict[str, int] = field(default_factory=dict)
    glue_tables: tuple[str, ...] = ()
    files: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, int] = field(default_factory=dict)


def curated_summary(settings: Settings, clients: Clients | None = None) -> CuratedSummary:
    """Read from each table's metadata (its current snapshot's summary): no data file is opened."""
    tables = IcebergTables(settings, clients)
    try:
        names = tables.list()
    except NotFoundError:
        return CuratedSummary(0)
    rows: dict[str, int] = {}
    files: dict[str, int] = {}
    snapshots: dict[str, int] = {}
    for name in names:
        table = tables.load(name)
        current = table.current_snapshot()
        totals = current.summary.additional_properties if current and current.summary else {}
        rows[name] = int(totals.get("total-records", 0))
        files[name] = int(totals.get("total-data-files", 0))
        snapshots[name] = len(table.snapshots())
    history = {n: r for n, r in rows.items() if n.endswith("_history")}
    return CuratedSummary(rows.get(CHANGES, 0), history, tuple(names), files, snapshots)
