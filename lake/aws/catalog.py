"""The catalog door: every Glue Data Catalog call, and the one Glue ↔ Arrow type map.

The stages never call Glue themselves. The curated zone's tables are Apache Iceberg
(:class:`IcebergTables`, docs/adr/0003: pyiceberg's Glue catalog over the same injected
client); plain Glue tables (the raw zone's, Hive Parquet tables a user registered) go
through :class:`GlueCatalog` of one database (``Clients.catalog(database)``), whose
surface stays small: ``ensure_database``, ``get_table``, ``put_table``,
``add_partitions``, ``list_tables``. What a table *is* is decided by the stage that owns
it; this module only stores and reads it.

Types: a Glue column type is Hive DDL text (``array<struct<a:int>>``, ``decimal(38,18)``),
parsed by sqlglot's Hive type parser. ``timestamp`` is the lake's one time convention
(docs/adr/0002): microseconds, UTC, so Arrow's ``timestamp("us", "UTC")``. An engine that
shows Athena's zone-less timestamps (``lake.query.local``) drops the zone itself.

Errors: only botocore's are translated (``lake.aws.errors``); anything else propagates.

Longer than 500 lines on purpose: every Glue call of the product lives here (the rule of
docs/ARCHITECTURE.md), and that is four things — plain Glue tables, the type map, the
Iceberg tables' optimistic commits, and their maintenance (:class:`IcebergMaintenance`: the
Glue jobs' file rewrites, snapshot expiry and reachable files, issue 12).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa
import sqlglot
from botocore.exceptions import BotoCoreError, ClientError
from sqlglot import exp

from lake.aws.errors import error_code, translate
from lake.errors import LakeError, NotFoundError, TerminalError, TransientError

if TYPE_CHECKING:
    from pyiceberg.catalog.glue import GlueCatalog as PyIcebergGlueCatalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table, Transaction

    from lake.aws.clients import Clients
    from lake.settings import Settings

log = logging.getLogger(__name__)

# BatchCreatePartition takes at most this many partitions per call.
_PARTITION_BATCH = 100

# -- the type map ------------------------------------------------------------------------

_T = exp.DataType.Type
_ARROW = {
    _T.TEXT: pa.string(), _T.VARCHAR: pa.string(), _T.CHAR: pa.string(),
    _T.BIGINT: pa.int64(), _T.INT: pa.int32(), _T.SMALLINT: pa.int16(), _T.TINYINT: pa.int8(),
    _T.BOOLEAN: pa.bool_(), _T.DOUBLE: pa.float64(), _T.FLOAT: pa.float32(),
    _T.DATE: pa.date32(), _T.BINARY: pa.binary(), _T.VARBINARY: pa.binary(),
    _T.TIMESTAMP: pa.timestamp("us", "UTC"),
}
# Arrow → Glue: the canonical (lower-case, Hive) name of each primitive.
_GLUE: dict[pa.DataType, str] = {
    pa.string(): "string", pa.large_string(): "string", pa.int64(): "bigint", pa.int32(): "int",
    pa.int16(): "smallint", pa.int8(): "tinyint", pa.bool_(): "boolean", pa.float64(): "double",
    pa.float32(): "float", pa.date32(): "date", pa.binary(): "binary", pa.large_binary(): "binary",
}
# Hive's decimal without (precision, scale)
_DEFAULT_DECIMAL = (10, 0)


@functools.lru_cache(maxsize=1024)
def arrow_type(glue: str) -> pa.DataType:
    """Glue/Hive type text (``array<struct<a:int>>``) → the Arrow type; ``ValueError`` if unknown."""
    try:
        parsed = sqlglot.parse_one(glue, into=exp.DataType, dialect="hive")
    except sqlglot.errors.ParseError:
        raise ValueError(f"unknown Glue type {glue!r}") from None
    if not isinstance(parsed, exp.DataType):  # e.g. an interval
        raise ValueError(f"unsupported Glue type {glue!r}")
    return _arrow(parsed, glue)


def _arrow(t: exp.DataType, text: str) -> pa.DataType:
    kind, args = t.this, t.expressions
    if kind == _T.ARRAY:
        return pa.list_(_arrow(args[0], text))
    if kind == _T.MAP:
        return pa.map_(_arrow(args[0], text), _arrow(args[1], text))
    if kind == _T.STRUCT:
        return pa.struct([pa.field(c.name, _arrow(c.args["kind"], text)) for c in args])
    if kind == _T.DECIMAL:
        params = [int(p.this.name) for p in args] + list(_DEFAULT_DECIMAL[len(args):])
        return pa.decimal128(params[0], params[1])
    if kind in _ARROW:
        return _ARROW[kind]
    raise ValueError(f"unsupported Glue type {t.sql(dialect='hive')} in {text!r}")


def glue_type(t: pa.DataType) -> str:
    """Arrow type → Glue/Hive type text; the inverse of :func:`arrow_type` on its types."""
    if pa.types.is_timestamp(t):
        return "timestamp"  # Glue has one timestamp type; the lake's are UTC microseconds
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{glue_type(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{glue_type(t.key_type)},{glue_type(t.item_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{glue_type(f.type)}" for f in t) + ">"
    if t in _GLUE:
        return _GLUE[t]
    raise ValueError(f"no Glue type for Arrow {t}")


# -- what the catalog answers ------------------------------------------------------------

@dataclass(frozen=True)
class CatalogTable:
    """A table of the catalog: where its files are and which columns (data, then partition keys) it has."""

    name: str
    location: str
    columns: tuple[tuple[str, str], ...]  # (name, Glue type)
    partition_keys: tuple[tuple[str, str], ...]
    format: str  # "iceberg" | "parquet" | "json" | another SerDe/InputFormat hint, lower-case
    parameters: tuple[tuple[str, str], ...] = ()
    table_type: str = ""  # EXTERNAL_TABLE, VIRTUAL_VIEW, ...

    @property
    def is_view(self) -> bool:
        return self.table_type == "VIRTUAL_VIEW"

    def arrow_schema(self) -> pa.Schema:
        """The data columns as Arrow; ``ValueError`` for a type outside the map."""
        return pa.schema([pa.field(n, arrow_type(t)) for n, t in self.columns])

    def partition_schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, arrow_type(t)) for n, t in self.partition_keys])

    @classmethod
    def from_glue(cls, table: Mapping[str, Any]) -> CatalogTable:
        """A ``GetTable(s)`` entry."""
        storage = table.get("StorageDescriptor") or {}
        return cls(
            name=table["Name"],
            location=str(storage.get("Location") or ""),
            columns=tuple((c["Name"], c["Type"]) for c in storage.get("Columns") or ()),
            partition_keys=tuple((c["Name"], c["Type"]) for c in table.get("PartitionKeys") or ()),
            format="iceberg" if _is_iceberg(table) else _format_of(storage),
            parameters=tuple(sorted((table.get("Parameters") or {}).items())),
            table_type=str(table.get("TableType") or ""),
        )


def _is_iceberg(table: Mapping[str, Any]) -> bool:
    return str((table.get("Parameters") or {}).get("table_type", "")).upper() == "ICEBERG"


def _format_of(storage: Mapping[str, Any]) -> str:
    hints = f"{storage.get('InputFormat') or ''} {(storage.get('SerdeInfo') or {}).get('SerializationLibrary') or ''}"
    hints = hints.lower()
    if "parquet" in hints:
        return "parquet"
    if "json" in hints:
        return "json"
    return hints.strip() or "unknown"


# -- the door ------------------------------------------------------------------------------

class GlueCatalog:
    """The Glue Data Catalog of one database, through an injected boto3 Glue client."""

    def __init__(self, glue: Any, database: str) -> None:
        self.glue, self.database = glue, database

    def __repr__(self) -> str:
        return f"GlueCatalog({self.database!r})"

    def ensure_database(self, description: str = "") -> bool:
        """Create the database unless it exists; True when this call created it."""
        try:
            self.glue.get_database(Name=self.database)
            return False
        except (ClientError, BotoCoreError) as e:
            if error_code(e) != "EntityNotFoundException":
                raise translate(e, "Glue database", self.database) from e
        try:
            self.glue.create_database(DatabaseInput={"Name": self.database,
                                                     **({"Description": description} if description else {})})
        except (ClientError, BotoCoreError) as e:
            if error_code(e) == "AlreadyExistsException":  # created meanwhile by someone else
                return False
            raise translate(e, "Glue database", self.database) from e
        return True

    def get_table(self, name: str) -> dict[str, Any] | None:
        """The table as Glue describes it (``GetTable``'s ``Table``), or None if it does not exist."""
        try:
            return dict(self.glue.get_table(DatabaseName=self.database, Name=name)["Table"])
        except (ClientError, BotoCoreError) as e:
            if error_code(e) == "EntityNotFoundException":
                return None
            raise translate(e, "Glue table", name) from e

    def put_table(self, table_input: Mapping[str, Any], *, exists: bool | None = None) -> None:
        """Create the table, or update it when it ``exists`` (looked up when not said).

        A create that meets a table created meanwhile (a concurrent writer won the race)
        leaves that table as it is: the caller re-reads the schema on its next batch.
        """
        name = str(table_input["Name"])
        if exists is None:
            exists = self.get_table(name) is not None
        try:
            if exists:
                self.glue.update_table(DatabaseName=self.database, TableInput=dict(table_input))
            else:
                self.glue.create_table(DatabaseName=self.database, TableInput=dict(table_input))
        except (ClientError, BotoCoreError) as e:
            if not exists and error_code(e) == "AlreadyExistsException":
                return
            raise translate(e, "Glue table", name) from e

    def add_partitions(self, table: str, partitions: Sequence[Mapping[str, Any]]) -> None:
        """Register partitions (``PartitionInput``s: ``Values`` and ``StorageDescriptor``); existing ones are fine."""
        for start in range(0, len(partitions), _PARTITION_BATCH):
            batch = [dict(p) for p in partitions[start:start + _PARTITION_BATCH]]
            try:
                resp = self.glue.batch_create_partition(DatabaseName=self.database, TableName=table,
                                                        PartitionInputList=batch)
            except (ClientError, BotoCoreError) as e:
                raise translate(e, "Glue table", table) from e
            for err in resp.get("Errors", []):
                code = err.get("ErrorDetail", {}).get("ErrorCode")
                if code != "AlreadyExistsException":
                    # an entry's error is not raised by botocore: judge it as if it were the call's
                    raise translate(ClientError({"Error": {"Code": code or "InternalServiceException",
                                                           "Message": str(err)}}, "BatchCreatePartition"),
                                    "Glue table", table)

    def list_tables(self) -> list[CatalogTable]:
        """Every table of the database (views included: see :attr:`CatalogTable.is_view`)."""
        try:
            return [CatalogTable.from_glue(t) for page in self._pages("get_tables", DatabaseName=self.database)
                    for t in page.get("TableList", [])]
        except (ClientError, BotoCoreError) as e:
            raise translate(e, "Glue database", self.database) from e

    def _pages(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield from self.glue.get_paginator(operation).paginate(**kwargs)

    # -- lake migrate (lake/curate/migrate.py): the previous version's Hive tables give way ----

    def delete_table(self, name: str) -> bool:
        """Remove a table's catalog entry (its files stay); False when there was none."""
        try:
            self.glue.delete_table(DatabaseName=self.database, Name=name)
        except (ClientError, BotoCoreError) as e:
            if error_code(e) == "EntityNotFoundException":
                return False
            raise translate(e, "Glue table", name) from e
        return True


# -- the curated zone's Iceberg tables (docs/adr/0003) -----------------------------------
#
# pyiceberg's GlueCatalog over the injected Glue client, with its pyarrow FileIO pointed at
# the same endpoint and credentials, so the same code runs on AWS and on the embedded AWS.
# Errors leave as the lake's: a table that is not there is NotFoundError; a commit that
# keeps conflicting, an S3 or Glue hiccup is TransientError; pyiceberg's refusals (an
# illegal schema change) are TerminalError.
#
# Commits are optimistic (ADR 0003, 5): IcebergTables.commit loads the table, asks its
# caller for what to write *given that table* (so a retry re-decides schema changes and
# duplicates against what other writers committed meanwhile), and commits schema changes,
# properties and the append as one transaction, retrying on CommitFailedException.

# Every table: format v2, zstd Parquet, manifests merged as appends accumulate and old
# metadata files deleted (a stream makes one commit per batch and table).
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "commit.manifest-merge.enabled": "true",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}
# pyiceberg's own commit retries re-apply a transaction's schema changes to a table another
# writer changed, which fails; our loop (IcebergTables._optimistic) re-plans instead. They
# are turned off on the table object we commit through, never stored: Athena and Spark read
# the stored property and must keep their retries.
_NO_PYICEBERG_RETRIES = {"commit.retry.num-retries": "0"}
SOURCE_PROPERTY = "lake.source-table"
KIND_PROPERTY = "lake.table-kind"


@dataclass(frozen=True)
class Append:
    """What one commit writes: new columns (name → Arrow type), table properties and rows."""

    rows: pa.Table
    add_columns: Mapping[str, pa.DataType] = field(default_factory=dict)
    promote: Mapping[str, pa.DataType] = field(default_factory=dict)  # Iceberg's legal promotions only
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


# pyarrow's S3 errors name AWS's error in their text ("AWS Error ACCESS_DENIED …")
_S3_TERMINAL = ("ACCESS_DENIED", "AccessDenied", "NO_SUCH_BUCKET", "NoSuchBucket", "INVALID_ACCESS_KEY_ID")


@contextmanager
def translated(kind: str, name: str) -> Iterator[None]:
    """AWS, FileIO and pyiceberg errors as the lake's; anything else (a bug) propagates."""
    from pyiceberg.exceptions import (
        CommitFailedException,
        NoSuchIcebergTableError,
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
    except NoSuchIcebergTableError as e:
        # a Glue table of that name that is not Iceberg (the previous version's Hive table):
        # retrying cannot help, and the records must not wait until they expire
        raise TerminalError(f"{kind} {name} exists but is not an Iceberg table (run `lake migrate`): {e}") from e
    except (NoSuchTableError, NoSuchNamespaceError) as e:
        raise NotFoundError(kind, name, str(e)) from e
    except (CommitFailedException, ValidationException) as e:
        # ValidationException: a retried append found its starting snapshot gone (another
        # writer's commit replaced it): as much a conflict as CommitFailedException
        raise TransientError(f"{kind} {name}: commit kept conflicting: {e}") from e
    except ValidationError as e:
        raise TerminalError(f"{kind} {name}: {e}") from e
    except OSError as e:  # pyarrow's S3 filesystem: connection refused, 5xx, throttling …
        if any(code in str(e) for code in _S3_TERMINAL):  # … or a refusal no retry will change
            raise TerminalError(f"{kind} {name}: {e}") from e
        raise TransientError(f"{kind} {name}: {e}") from e


class IcebergTables:
    """The Iceberg tables of one Glue database (``settings.glue_database``)."""

    def __init__(self, settings: Settings, clients: Clients | None = None, *, max_attempts: int = 10,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        if clients is None:
            from lake.aws.clients import Clients

            clients = Clients(settings)
        self.clients = clients
        self.max_attempts = max_attempts
        self.sleep = sleep
        self._catalog: PyIcebergGlueCatalog | None = None
        self._lock = threading.Lock()

    # -- the catalog --------------------------------------------------------------

    def io_properties(self) -> dict[str, str]:
        """pyiceberg FileIO properties: the same endpoint, region and credentials as boto3.

        Credentials are handed over only for an endpoint or a profile of ours (the embedded AWS,
        a named profile): frozen, they would expire under a long Glue job. On AWS with neither,
        pyarrow's S3 filesystem finds the role's credentials itself and refreshes them."""
        props = {"s3.region": self.settings.region}
        if self.settings.endpoint_url:
            props["s3.endpoint"] = self.settings.endpoint_url
        creds = self.clients.session.get_credentials()
        if creds is not None and (self.settings.endpoint_url or self.settings.profile):
            frozen = creds.get_frozen_credentials()
            props["s3.access-key-id"] = frozen.access_key
            props["s3.secret-access-key"] = frozen.secret_key
            if frozen.token:
                props["s3.session-token"] = frozen.token
        return props

    @property
    def catalog(self) -> PyIcebergGlueCatalog:
        with self._lock:
            if self._catalog is None:
                from pyiceberg.catalog.glue import GlueCatalog as PyIcebergGlueCatalog

                self._catalog = PyIcebergGlueCatalog("lake", client=self.glue, **self.io_properties())
            return self._catalog

    @property
    def glue(self) -> Any:
        """pyiceberg's Glue client: one attempt per call (see ``Clients.client``); a failed
        read or commit is the batch's to retry, and a conflict is our loop's."""
        return self.clients.client("glue", one_attempt=True)

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
        from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, TableAlreadyExistsError

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
            except CommitFailedException:
                # the create transaction's AssertCreate failed when another writer created the
                # table between our staging and our commit ("Table already exists"): use theirs
                if self.find(name) is None:
                    raise
            return self.catalog.load_table(self.identifier(name))

    def commit(self, name: str, plan: Callable[[Table], Append | None], loaded: Table | None = None) -> Committed:
        """One optimistic commit: ``plan(table)`` says what to write given the table as
        loaded (``loaded``, if just loaded, saves the first attempt a round trip); schema
        additions, promotions, properties and rows commit together or not at all."""
        planned: list[Append] = []

        def stage(table: Table, tx: Transaction) -> bool:
            append = plan(table)
            planned[:] = [append] if append is not None else []
            if append is None or (append.rows.num_rows == 0 and not append.add_columns and not append.promote
                                  and not append.properties):
                return False
            if append.add_columns or append.promote:
                with tx.update_schema() as update:
                    if append.add_columns:
                        update.union_by_name(pa.schema([pa.field(n, t) for n, t in append.add_columns.items()]))
                    for column, wider in append.promote.items():
                        update.update_column(column, field_type=_iceberg_primitive(wider))
            if append.properties:
                tx.set_properties(dict(append.properties))
            if append.rows.num_rows:
                tx.append(append.rows, snapshot_properties=dict(append.summary))
            return True

        snapshot_id, attempts = self._optimistic(name, stage, loaded)
        if snapshot_id is None or not planned:
            return Committed(name, 0, None, attempts)
        done = planned[0]
        return Committed(name, done.rows.num_rows, snapshot_id, attempts, tuple(done.add_columns))

    def transact(self, name: str, stage: Callable[[Table, Transaction], bool]) -> int | None:
        """One optimistic commit of what ``stage(table, tx)`` puts on a transaction of the
        table as loaded (``lake migrate`` adds existing Parquet files as data files this way);
        on a conflict the table is reloaded and ``stage`` asked again. Returns the table's
        current snapshot id afterwards; None, committing nothing, when ``stage`` returns False."""
        return self._optimistic(name, stage)[0]

    def _optimistic(self, name: str, stage: Callable[[Table, Transaction], bool],
                    loaded: Table | None = None) -> tuple[int | None, int]:
        """(snapshot id or None, attempts): stage on the loaded table, commit; on a conflict
        (another writer committed first) back off with jitter, reload and stage again."""
        from pyiceberg.exceptions import CommitFailedException, ValidationException

        for attempt in range(1, self.max_attempts + 1):
            table = _without_retries(loaded if loaded is not None and attempt == 1 else self.load(name))
            with translated("Iceberg table", name):
                tx = table.transaction()
                if not stage(table, tx):
                    return None, attempt
            try:
                with translated("Iceberg table", name):
                    tx.commit_transaction()
            except TransientError as e:
                conflict = isinstance(e.__cause__, (CommitFailedException, ValidationException))
                if not conflict or attempt == self.max_attempts:
                    raise
                delay = min(2.0, 0.02 * 2 ** attempt) * random.uniform(0.5, 1.5)
                log.info("commit to %s conflicted (attempt %d): retrying in %.0f ms", name, attempt, delay * 1000)
                self.sleep(delay)
                continue
            snapshot = table.current_snapshot()  # the commit refreshed the table's metadata
            return (snapshot.snapshot_id if snapshot is not None else None), attempt
        raise AssertionError("unreachable")  # the loop returns or raises

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


def _without_retries(table: Table) -> Table:
    """The same table, with pyiceberg's commit retries off in memory only (what a commit
    writes is built from the catalog's current metadata, not from this copy's properties)."""
    from pyiceberg.table import Table as IcebergTable

    metadata = table.metadata.model_copy(update={"properties": {**table.metadata.properties,
                                                                **_NO_PYICEBERG_RETRIES}})
    return IcebergTable(table.name(), metadata, table.metadata_location, table.io, table.catalog)


def apply_schema(tx: Transaction, add_columns: Mapping[str, pa.DataType],
                 promote: Mapping[str, pa.DataType]) -> None:
    """Put new columns and Iceberg's legal promotions on a transaction, as :meth:`IcebergTables.commit`
    does (for jobs that stage their own transaction through :meth:`IcebergTables.transact`)."""
    if not add_columns and not promote:
        return
    with tx.update_schema() as update:
        if add_columns:
            update.union_by_name(pa.schema([pa.field(n, t) for n, t in add_columns.items()]))
        for column, wider in promote.items():
            update.update_column(column, field_type=_iceberg_primitive(wider))


def _iceberg_primitive(t: pa.DataType) -> Any:
    """The Iceberg type of a promotion's target (long, double or decimal)."""
    from pyiceberg.types import DecimalType, DoubleType, LongType

    if pa.types.is_int64(t):
        return LongType()
    if pa.types.is_float64(t):
        return DoubleType()
    if pa.types.is_decimal(t):
        return DecimalType(t.precision, t.scale)
    raise ValueError(f"not a type Iceberg promotes to: {t}")


# -- table maintenance (lake/glue, issue 12): read and replace data files, expire snapshots,
# list what a table's metadata still references. Every job reads and writes one file at a
# time, so memory holds one file's rows, never a partition's.

@dataclass(frozen=True)
class DataFileRef:
    """A live data file of a table's current snapshot: where it is, its partition and size."""

    path: str
    partition: tuple[tuple[str, Any], ...]  # (partition column, value), in spec order
    records: int
    size: int
    has_deletes: bool  # position/equality deletes apply to it (never written by the lake)
    task: Any = field(repr=False, compare=False)  # pyiceberg's FileScanTask


class IcebergMaintenance:
    """Maintenance operations on the Iceberg tables of :class:`IcebergTables` (the same door)."""

    def __init__(self, tables: IcebergTables) -> None:
        self.tables = tables

    def data_files(self, table: Table, row_filter: BooleanExpression | None = None) -> list[DataFileRef]:
        """The data files of the table's current snapshot (pruned by ``row_filter``)."""
        from pyiceberg.expressions import AlwaysTrue

        spec = table.spec()
        names = [f.name for f in spec.fields]
        with translated("Iceberg table", str(table.name())):
            tasks = table.scan(row_filter=row_filter if row_filter is not None else AlwaysTrue()).plan_files()
            out = []
            for task in tasks:
                f = task.file
                values = tuple((n, f.partition[i]) for i, n in enumerate(names)) if names else ()
                out.append(DataFileRef(f.file_path, values, int(f.record_count), int(f.file_size_in_bytes),
                                       bool(task.delete_files), task))
        return out

    def added_files(self, table: Table, snapshot_id: int) -> list[DataFileRef]:
        """The data files a snapshot added (its own manifest entries of status ADDED)."""
        from pyiceberg.expressions import AlwaysTrue
        from pyiceberg.manifest import DataFileContent, ManifestEntryStatus
        from pyiceberg.table import FileScanTask

        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            return []
        names = [f.name for f in table.spec().fields]
        out = []
        with translated("Iceberg table", str(table.name())):
            for manifest in snapshot.manifests(table.io):
                if manifest.added_snapshot_id != snapshot_id:
                    continue
                for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                    f = entry.data_file
                    if entry.status != ManifestEntryStatus.ADDED or f.content != DataFileContent.DATA:
                        continue
                    values = tuple((n, f.partition[i]) for i, n in enumerate(names)) if names else ()
                    out.append(DataFileRef(f.file_path, values, int(f.record_count), int(f.file_size_in_bytes),
                                           False, FileScanTask(f, residual=AlwaysTrue())))
        return out

    def read(self, table: Table, files: Sequence[DataFileRef], columns: Sequence[str] | None = None,
             row_filter: BooleanExpression | None = None) -> Iterator[pa.RecordBatch]:
        """The rows of ``files``, in the table's current schema (columns added since a file was
        written read as null), one file at a time."""
        from pyiceberg.expressions import AlwaysTrue
        from pyiceberg.io.pyarrow import ArrowScan

        schema = table.schema() if not columns else table.schema().select(*columns)
        scan = ArrowScan(table.metadata, table.io, schema, row_filter if row_filter is not None else AlwaysTrue())
        for ref in files:
            with translated("Iceberg table", str(table.name())):
                batches = list(scan.to_record_batches([ref.task]))
            yield from batches

    def write_file(self, table: Table, batches: Iterable[pa.RecordBatch], partition_path: str,
                   name: str) -> Any:
        """Stream ``batches`` (rows of one partition, in the table's schema) into one new
        Parquet data file under the table's data location; returns pyiceberg's DataFile
        (statistics read back from the file's footer), not yet committed."""
        import pyarrow.parquet as pq
        from pyiceberg.io.pyarrow import parquet_file_to_data_file, schema_to_pyarrow

        schema = schema_to_pyarrow(table.schema(), include_field_ids=True)
        folder = f"{table.location().rstrip('/')}/data" + (f"/{partition_path}" if partition_path else "")
        path = f"{folder}/{name}"
        codec = table.properties.get("write.parquet.compression-codec", "zstd")
        with translated("Iceberg table", str(table.name())):
            with table.io.new_output(path).create(overwrite=True) as out, \
                    pq.ParquetWriter(out, schema, compression=codec) as writer:
                for batch in batches:
                    writer.write_batch(_conform(batch, schema))
            return parquet_file_to_data_file(table.io, table.metadata, path)

    def partition_path(self, table: Table, ref: DataFileRef) -> str:
        return str(table.spec().partition_to_path(ref.task.file.partition, table.schema()))

    @staticmethod
    def partition_filter(ref: DataFileRef) -> BooleanExpression:
        """A row filter selecting the partition of ``ref`` (identity partitions: column = value)."""
        from pyiceberg import expressions as ex

        # pyiceberg's predicates are pydantic models whose positional constructors mypy cannot see
        And, EqualTo, IsNull = cast(Any, ex.And), cast(Any, ex.EqualTo), cast(Any, ex.IsNull)
        expr: Any = ex.AlwaysTrue()
        for column, value in ref.partition:
            expr = And(expr, IsNull(column) if value is None else EqualTo(column, value))
        return cast("BooleanExpression", expr)

    def replace_files(self, name: str, remove: Sequence[str], add: Sequence[Any],
                      summary: Mapping[str, str], where: BooleanExpression | None = None) -> int | None:
        """One optimistic commit replacing data files ``remove`` (paths) by ``add`` (DataFiles
        holding the same rows): readers see the old files or the new ones, never both nor
        neither. None (nothing committed) when a file to remove is no longer live: another
        job replaced it meanwhile. ``where`` (their partition) spares planning the whole table."""
        gone = set(remove)

        def stage(table: Table, tx: Transaction) -> bool:
            live = {ref.path: ref for ref in self.data_files(table, where) if ref.path in gone}
            if len(live) != len(gone):
                return False
            with tx.update_snapshot(snapshot_properties=dict(summary)).overwrite() as overwrite:
                for ref in live.values():
                    overwrite.delete_data_file(ref.task.file)
                for data_file in add:
                    overwrite.append_data_file(data_file)
            return True

        return self.tables.transact(name, stage)

    def expire_snapshots(self, name: str, older_than_ms: int, *, dry_run: bool = False) -> list[int]:
        """Expire the snapshots committed before ``older_than_ms`` (epoch ms) but the current
        one and any branch or tag head; the ids expired (or, dry, that would be)."""
        from pyiceberg.table.update.snapshot import ExpireSnapshots

        table = self.tables.load(name)
        protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
        doomed = sorted(s.snapshot_id for s in table.snapshots()
                        if s.timestamp_ms < older_than_ms and s.snapshot_id not in protected)
        if not doomed or dry_run:
            return doomed

        def stage(table: Table, tx: Transaction) -> bool:
            ids = [i for i in doomed if table.snapshot_by_id(i) is not None]
            if not ids:
                return False
            ExpireSnapshots(tx).by_ids(ids).commit()  # applied to tx; committed with it
            return True

        self.tables.transact(name, stage)
        return doomed

    def referenced_files(self, table: Table) -> set[str]:
        """Every file the table's metadata still reaches: metadata files (current and logged),
        each snapshot's manifest list, manifests, data and delete files."""
        out = {table.metadata_location, *(e.metadata_file for e in table.metadata.metadata_log)}
        with translated("Iceberg table", str(table.name())):
            seen: set[str] = set()
            for snapshot in table.snapshots():
                out.add(snapshot.manifest_list)
                for manifest in snapshot.manifests(table.io):
                    out.add(manifest.manifest_path)
                    if manifest.manifest_path in seen:
                        continue
                    seen.add(manifest.manifest_path)
                    for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                        out.add(entry.data_file.file_path)
            for stats in table.metadata.statistics:
                out.add(stats.statistics_path)
        return out


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A scanned batch in the writer's schema (same columns; field ids and string widths differ)."""
    arrays = [batch.column(f.name).cast(f.type) if batch.schema.field(f.name).type != f.type
              else batch.column(f.name) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
