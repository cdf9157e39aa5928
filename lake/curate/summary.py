"""What the curated zone holds, for ``lake demo``: rows per table and the Glue tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow.dataset as ds
import pyarrow.fs as pafs

from lake.aws.clients import Clients
from lake.aws.storage import s3_filesystem
from lake.curate.catalog import CHANGES_TABLE
from lake.settings import Settings


@dataclass(frozen=True)
class CuratedSummary:
    """Rows in ``changes``, rows per ``<table>_history``, and the registered Glue tables."""

    changes_rows: int
    history_rows: dict[str, int] = field(default_factory=dict)
    glue_tables: tuple[str, ...] = ()
    partitions: dict[str, int] = field(default_factory=dict)


def count_rows(settings: Settings, table: str, fs: pafs.S3FileSystem | None = None) -> int:
    """Rows of a curated table, read from its Parquet files (0 when it has none)."""
    fs = fs or s3_filesystem(settings)
    base = f"{settings.bucket}/{settings.zone_prefix('curated')}{table}"
    if fs.get_file_info(base).type == pafs.FileType.NotFound:
        return 0
    return int(ds.dataset(base, filesystem=fs, format="parquet", partitioning="hive").count_rows())


def curated_summary(settings: Settings, clients: Clients | None = None) -> CuratedSummary:
    """Rows in ``changes``, rows per ``<table>_history`` and the Glue tables of the lake."""
    catalog = (clients or Clients(settings)).catalog(settings.glue_database)
    tables = sorted(t.name for t in catalog.list_tables())
    parts = {t: len(catalog.list_partitions(t)) for t in tables}
    fs = s3_filesystem(settings)
    history = {t: count_rows(settings, t, fs) for t in tables if t.endswith("_history")}
    changes = count_rows(settings, CHANGES_TABLE, fs) if CHANGES_TABLE in tables else 0
    return CuratedSummary(changes, history, tuple(tables), parts)
