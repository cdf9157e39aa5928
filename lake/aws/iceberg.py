"""The curated zone's Apache Iceberg tables in the Glue Data Catalog (docs/adr/0003).

pyiceberg's ``GlueCatalog`` over the injected Glue client, with its pyarrow FileIO pointed
at the same endpoint and credentials, so the same code runs on AWS and on the embedded
AWS. Errors leave this module as the lake's: a table that is not there is
``NotFoundError``; a commit that keeps conflicting, an S3 or Glue hiccup is
``TransientError``; pyiceberg's refusals (an illegal schema change) are ``TerminalError``.

Commits are optimistic (ADR 0003, 5): :meth:`IcebergTables.commit` loads the table, asks
its caller for what to write *given that table* (so a retry re-decides schema changes and
duplicates against what other writers committed meanwhile), and commits schema changes,
properties and the append as one transaction, retrying on ``CommitFailedException``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from lake.aws.clients import Clients, translate
from lake.errors import LakeError, NotFoundError, TerminalError, TransientError
from lake.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog.glue import GlueCatalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table

log = logging.getLogger(__name__)

# Every table: format v2, zstd Parquet, manifests merged as appends accumulate (a stream
# makes one commit per batch), and pyiceberg's own retries on a conflicting append.
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "commit.manifest-merge.enabled": "true",
    "commit.retry.num-retries": "4",
    "commit.retry.min-wait-ms": "20",
}
SOURCE_PROPERTY = "lake.source-table"
KIND_PROPERTY = "lake.table-kind"


@dataclass(frozen=True)
class Append:
    """What one commit writes: new columns (name → Arrow type), table properties and rows."""

    rows: pa.Table
    add_columns: Mapping[str, pa.DataType] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    summary: Mapping[str, str] = field(default_factory=dict)  # snapshot summary entries


@dataclass(frozen=True)
class Committed:
    """The outcome of :meth:`IcebergTables.commit`."""

    table: str
    rows: int
    snapshot_id: int | None  # None: nothing to commit
    attempts: int
    added_columns: tuple[str, ...] = ()


@contextmanager
def translated(kind: str, name: str) -> Iterator[None]:
    """AWS, FileIO and pyiceberg errors as the lake's; anything else (a bug) propagates."""
    from pyiceberg.exceptions import (
        CommitFailedException,
        NoSuchNamespaceError,
        NoSuchTableError,
        ValidationError,
        ValidationException,
    )

    try:
        yield
    except LakeError:
        raise
    except (ClientError, BotoCoreError) as e:
        raise translate(e, kind, name) from e
    except (NoSuchTableError, NoSuchNamespaceError) as e:
        raise NotFoundError(kind, name, str(e)) from e
    except (CommitFailedException, ValidationException) as e:
        # ValidationException: a retried append found its starting snapshot gone (another
        # writer's commit replaced it): as much a conflict as CommitFailedException
        raise TransientError(f"{kind} {name}: commit kept conflicting: {e}") from e
    except ValidationError as e:
        raise TerminalError(f"{kind} {name}: {e}") from e
    except OSError as e:  # pyarrow's S3 filesystem: connection refused, 5xx, throttling
        raise TransientError(f"{kind} {name}: {e}") from e


class IcebergTables:
    """The Iceberg tables of one Glue database (``settings.glue_database``)."""

    def __init__(self, settings: Settings, clients: Clients | None = None, *, max_attempts: int = 10,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.clients = clients or Clients(settings)
        self.max_attempts = max_attempts
        self.sleep = sleep
        self._catalog: GlueCatalog | None = None
        self._lock = threading.Lock()

    # -- the catalog --------------------------------------------------------------

    def io_properties(self) -> dict[str, str]:
        """pyiceberg FileIO properties: the same endpoint, region and credentials as boto3."""
        props = {"s3.region": self.settings.region}
        if self.settings.endpoint_url:
            props["s3.endpoint"] = self.settings.endpoint_url
        creds = self.clients.session.get_credentials()
        if creds is not None:
            frozen = creds.get_frozen_credentials()
            props["s3.access-key-id"] = frozen.access_key
            props["s3.secret-access-key"] = frozen.secret_key
            if frozen.token:
                props["s3.session-token"] = frozen.token
        return props

    @property
    def catalog(self) -> GlueCatalog:
        with self._lock:
            if self._catalog is None:
                from pyiceberg.catalog.glue import GlueCatalog

                self._catalog = GlueCatalog("lake", client=self.clients.glue, **self.io_properties())
            return self._catalog

    def identifier(self, name: str) -> tuple[str, str]:
        return (self.settings.glue_database, name)

    def location(self, name: str) -> str:
        return f"s3://{self.settings.bucket}/{self.settings.zone_prefix('curated')}{name}"

    # -- tables -------------------------------------------------------------------

    def load(self, name: str) -> Table:
        with translated("Iceberg table", name):
            return self.catalog.load_table(self.identifier(name))

    def find(self, name: str) -> Table | None:
        try:
            return self.load(name)
        except NotFoundError:
            return None

    def list(self) -> list[str]:
        with translated("Glue database", self.settings.glue_database):
            return sorted(t for _, t in self.catalog.list_tables(self.settings.glue_database))

    def ensure(self, name: str, schema: pa.Schema, partition_by: Sequence[str], *, source: str | None,
               kind: str) -> Table:
        """The table, created with ``schema`` partitioned by identity on ``partition_by`` if
        missing (two writers creating it at once both get the one that won). A table that
        records another source table is refused: two sources never share a table."""
        table = self.find(name)
        if table is None:
            table = self._create(name, schema, partition_by, source, kind)
        recorded = table.metadata.properties.get(SOURCE_PROPERTY)
        if source is not None and recorded is not None and recorded != source:
            raise TerminalError(f"Iceberg table {name} holds source table {recorded!r}, not {source!r}")
        return table

    def _create(self, name: str, schema: pa.Schema, partition_by: Sequence[str], source: str | None,
                kind: str) -> Table:
        from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError

        props = dict(TABLE_PROPERTIES, **{KIND_PROPERTY: kind})
        if source is not None:
            props[SOURCE_PROPERTY] = source
        with translated("Iceberg table", name):
            try:
                self.catalog.create_namespace(self.settings.glue_database)
            except NamespaceAlreadyExistsError:
                pass
            try:
                # the partition spec refers to field ids, which only the created schema has
                create = self.catalog.create_table_transaction(self.identifier(name), schema=schema,
                                                               location=self.location(name), properties=props)
                with create as tx, tx.update_spec() as spec:
                    for col in partition_by:
                        spec.add_identity(col)
            except TableAlreadyExistsError:
                pass
            return self.catalog.load_table(self.identifier(name))

    def commit(self, name: str, plan: Callable[[Table], Append | None]) -> Committed:
        """One optimistic commit: ``plan(table)`` says what to write given the table as
        loaded; schema additions, properties and rows commit together or not at all."""
        from pyiceberg.exceptions import CommitFailedException, ValidationException

        for attempt in range(1, self.max_attempts + 1):
            table = self.load(name)
            append = plan(table)
            if append is None or (append.rows.num_rows == 0 and not append.add_columns and not append.properties):
                return Committed(name, 0, None, attempt)
            try:
                with translated("Iceberg table", name):
                    snapshot_id = self._apply(table, append)
            except TransientError as e:
                conflict = isinstance(e.__cause__, (CommitFailedException, ValidationException))
                if not conflict or attempt == self.max_attempts:
                    raise
                # another writer committed first: back off with jitter, reload, re-plan
                delay = min(2.0, 0.02 * 2 ** attempt) * random.uniform(0.5, 1.5)
                log.info("commit to %s conflicted (attempt %d): retrying in %.0f ms", name, attempt, delay * 1000)
                self.sleep(delay)
                continue
            return Committed(name, append.rows.num_rows, snapshot_id, attempt, tuple(append.add_columns))
        raise AssertionError("unreachable")  # the loop returns or raises

    @staticmethod
    def _apply(table: Table, append: Append) -> int | None:
        tx = table.transaction()
        if append.add_columns:
            with tx.update_schema() as update:
                update.union_by_name(pa.schema([pa.field(n, t) for n, t in append.add_columns.items()]))
        if append.properties:
            tx.set_properties(dict(append.properties))
        if append.rows.num_rows:
            tx.append(append.rows, snapshot_properties=dict(append.summary))
        tx.commit_transaction()
        snapshot = table.current_snapshot()  # the commit refreshed the table's metadata
        return snapshot.snapshot_id if snapshot is not None else None

    def scan(self, name: str, row_filter: BooleanExpression | str | None = None,
             columns: Sequence[str] | None = None, snapshot_id: int | None = None,
             table: Table | None = None) -> pa.Table:
        """Rows of a table (or of one of its snapshots), pruned by ``row_filter``."""
        from pyiceberg.expressions import AlwaysTrue

        with translated("Iceberg table", name):
            t = table if table is not None else self.load(name)
            return t.scan(row_filter=row_filter if row_filter is not None else AlwaysTrue(),
                          selected_fields=tuple(columns) if columns else ("*",),
                          snapshot_id=snapshot_id).to_arrow()


def snapshot_summaries(table: Table) -> list[dict[str, Any]]:
    """Every snapshot's id, time and summary, oldest first (for tests and tooling)."""
    return [{"snapshot_id": s.snapshot_id, "timestamp_ms": s.timestamp_ms,
             **(s.summary.additional_properties if s.summary else {})} for s in table.snapshots()]
