"""The Glue Data Catalog as the local engine sees it: table locations and Arrow schemas.

Hive type strings (``array<string>``, ``decimal(38,10)``, ``struct<a:int>``) are turned
into Arrow types here, so DuckDB sees the same columns Athena would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from botocore.exceptions import ClientError

from lake.aws.clients import Clients, translate

_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(), "varchar": pa.string(), "char": pa.string(),
    "bigint": pa.int64(), "int": pa.int32(), "integer": pa.int32(), "smallint": pa.int16(),
    "tinyint": pa.int8(), "boolean": pa.bool_(), "double": pa.float64(), "float": pa.float32(),
    "real": pa.float32(), "date": pa.date32(), "binary": pa.binary(), "varbinary": pa.binary(),
    # Athena's timestamp carries no zone; the lake's are UTC, so naive UTC is the faithful view.
    "timestamp": pa.timestamp("us"),
}


@dataclass(frozen=True)
class CatalogTable:
    """A Glue table: where its files are and which columns (data, then partition keys) it has."""

    name: str
    location: str
    columns: tuple[tuple[str, str], ...]
    partition_keys: tuple[tuple[str, str], ...]
    format: str  # "parquet" | "json" | other SerDe/InputFormat hint, lower-case
    parameters: tuple[tuple[str, str], ...] = ()

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, hive_type(t)) for n, t in self.columns])

    def partition_schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, hive_type(t)) for n, t in self.partition_keys])


class _TypeParser:
    def __init__(self, text: str) -> None:
        self.text, self.i = text.strip(), 0

    def _peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def _word(self) -> str:
        start = self.i
        while self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] in "_$"):
            self.i += 1
        return self.text[start:self.i]

    def _name(self) -> str:
        if self._peek() == "`":
            end = self.text.index("`", self.i + 1)
            name, self.i = self.text[self.i + 1:end], end + 1
            return name
        return self._word()

    def _expect(self, ch: str) -> None:
        while self._peek() == " ":
            self.i += 1
        if self._peek() != ch:
            raise ValueError(f"expected {ch!r} at {self.i} in {self.text!r}")
        self.i += 1
        while self._peek() == " ":
            self.i += 1

    def parse(self) -> pa.DataType:
        word = self._word().lower()
        if word == "array":
            self._expect("<")
            inner = self.parse()
            self._expect(">")
            return pa.list_(inner)
        if word == "map":
            self._expect("<")
            key = self.parse()
            self._expect(",")
            value = self.parse()
            self._expect(">")
            return pa.map_(key, value)
        if word == "struct":
            self._expect("<")
            fields = []
            while self._peek() != ">":
                name = self._name()
                self._expect(":")
                fields.append(pa.field(name, self.parse()))
                if self._peek() == ",":
                    self._expect(",")
            self._expect(">")
            return pa.struct(fields)
        if word == "decimal":
            precision, scale = 10, 0
            if self._peek() == "(":
                self._expect("(")
                precision = int(self._word())
                if self._peek() == ",":
                    self._expect(",")
                    scale = int(self._word())
                self._expect(")")
            return pa.decimal128(precision, scale)
        if word in ("varchar", "char") and self._peek() == "(":
            self._expect("(")
            self._word()
            self._expect(")")
        if word not in _PRIMITIVES:
            raise ValueError(f"unknown Hive type {word!r} in {self.text!r}")
        return _PRIMITIVES[word]


def hive_type(text: str) -> pa.DataType:
    """``array<struct<a:int>>`` → the Arrow type; ``ValueError`` for an unknown type."""
    parser = _TypeParser(text)
    out = parser.parse()
    if parser.i != len(parser.text):
        raise ValueError(f"trailing text in Hive type {text!r}")
    return out


def _format_of(storage: dict[str, Any]) -> str:
    hints = " ".join(
        str(storage.get(k) or "") for k in ("InputFormat",)
    ) + " " + str((storage.get("SerdeInfo") or {}).get("SerializationLibrary") or "")
    hints = hints.lower()
    if "parquet" in hints:
        return "parquet"
    if "json" in hints:
        return "json"
    return hints.strip() or "unknown"


def to_catalog_table(table: dict[str, Any]) -> CatalogTable:
    """A ``glue.get_table(s)`` entry as a :class:`CatalogTable`."""
    storage = table.get("StorageDescriptor") or {}
    return CatalogTable(
        name=table["Name"],
        location=str(storage.get("Location") or ""),
        columns=tuple((c["Name"], c["Type"]) for c in storage.get("Columns") or ()),
        partition_keys=tuple((c["Name"], c["Type"]) for c in table.get("PartitionKeys") or ()),
        format=_format_of(storage),
        parameters=tuple(sorted((table.get("Parameters") or {}).items())),
    )


def list_tables(clients: Clients, database: str) -> list[CatalogTable]:
    """Every table of the Glue database (views and tables without a location skipped)."""
    glue = clients.glue
    out: list[CatalogTable] = []
    try:
        for page in glue.get_paginator("get_tables").paginate(DatabaseName=database):
            for table in page.get("TableList", []):
                if table.get("TableType") == "VIRTUAL_VIEW":
                    continue
                entry = to_catalog_table(table)
                if entry.location:
                    out.append(entry)
    except ClientError as e:
        raise translate(e, "Glue database", database) from e
    return out


def partition_locations(clients: Clients, database: str, table: str) -> list[str]:
    """Locations of the partitions registered for ``table`` in Glue."""
    glue = clients.glue
    out: list[str] = []
    try:
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
            for part in page.get("Partitions", []):
                loc = (part.get("StorageDescriptor") or {}).get("Location")
                if loc:
                    out.append(str(loc))
    except ClientError as e:
        raise translate(e, "Glue table", f"{database}.{table}") from e
    return out
