"""Render a query result as a rich table, CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, TextIO

import orjson
import pyarrow as pa

OutputFormat = Literal["table", "csv", "json"]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, default=str).decode()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # integral sums (DuckDB HUGEINT) as numbers; others as exact text, never a float
        return int(value) if value == value.to_integral_value() and abs(value) < 2**63 else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int):  # beyond 64 bits: orjson refuses them
        return str(value)
    raise TypeError


def render(table: pa.Table, fmt: OutputFormat, out: TextIO | None = None, title: str | None = None) -> None:
    """Write ``table`` to ``out`` (stdout by default) as ``fmt``."""
    out = out or sys.stdout
    rows = table.to_pylist()
    if fmt == "json":
        for row in rows:
            out.write(orjson.dumps(row, default=_json_default).decode() + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.column_names)
        for row in rows:
            writer.writerow([_text(v) for v in row.values()])
    else:
        from rich.console import Console
        from rich.table import Table

        grid = Table(title=title, show_lines=False)
        for name in table.column_names:
            grid.add_column(name, overflow="fold")
        for row in rows:
            grid.add_row(*(_text(v) for v in row.values()))
        console = Console(file=out, width=max(120, Console().width))
        console.print(grid)
        console.print(f"{table.num_rows} row(s)", style="dim")


def to_text(table: pa.Table, fmt: OutputFormat) -> str:
    buf = io.StringIO()
    render(table, fmt, buf)
    return buf.getvalue()
