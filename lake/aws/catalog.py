"""The catalog door: every Glue Data Catalog call, and the one Glue ↔ Arrow type map.

The stages never call Glue themselves: they hold a :class:`GlueCatalog` of one database
(``Clients.catalog(database)``), whose surface stays small on purpose (``ensure_database``,
``get_table``, ``put_table``, ``add_partitions``, ``list_tables``, ``list_partitions``) so
its insides can become an Iceberg catalog without the stages noticing. What a table
*is* (columns, comments, SerDe, location) is decided by the stage that owns it
(``lake.curate.catalog``); this module only stores and reads it.

Types: a Glue column type is Hive DDL text (``array<struct<a:int>>``, ``decimal(38,18)``),
parsed by sqlglot's Hive type parser. ``timestamp`` is the lake's one time convention
(docs/adr/0002): microseconds, UTC, so Arrow's ``timestamp("us", "UTC")``. An engine that
shows Athena's zone-less timestamps (``lake.query.local``) drops the zone itself.

Errors: only botocore's are translated (``lake.aws.errors``); anything else propagates.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlglot
from botocore.exceptions import BotoCoreError, ClientError
from sqlglot import exp

from lake.aws.errors import error_code, translate

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
    format: str  # "parquet" | "json" | another SerDe/InputFormat hint, lower-case
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
            format=_format_of(storage),
            parameters=tuple(sorted((table.get("Parameters") or {}).items())),
            table_type=str(table.get("TableType") or ""),
        )


def _format_of(storage: Mapping[str, Any]) -> str:
    hints = f"{storage.get('InputFormat') or ''} {(storage.get('SerdeInfo') or {}).get('SerializationLibrary') or ''}"
    hints = hints.lower()
    if "parquet" in hints:
        return "parquet"
    if "json" in hints:
        return "json"
    return hints.strip() or "unknown"


@dataclass(frozen=True)
class Partition:
    """A registered partition: its values (in partition-key order) and location."""

    values: tuple[str, ...]
    location: str


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

    def list_partitions(self, table: str) -> list[Partition]:
        """The partitions registered for ``table``."""
        try:
            return [Partition(tuple(p.get("Values") or ()), str((p.get("StorageDescriptor") or {}).get("Location")
                                                                 or ""))
                    for page in self._pages("get_partitions", DatabaseName=self.database, TableName=table)
                    for p in page.get("Partitions", [])]
        except (ClientError, BotoCoreError) as e:
            raise translate(e, "Glue table", f"{self.database}.{table}") from e

    def _pages(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield from self.glue.get_paginator(operation).paginate(**kwargs)
