"""The SQL corpus: Trino's documented examples (and queries over the lake's views), each with
its documented answer, and the support matrix docs/SQL.md generated from them.

A corpus file (``tests/sql_corpus/*.sql``) holds cases::

    -- family: String                       (once, at the top)
    -- source: https://trino.io/docs/current/functions/string.html

    -- function: translate
    SELECT translate('abcd', 'a', 'z');
    -- => zbcd

``-- =>`` lines are the documented result, one per row, columns separated by `` | ``,
written as the Trino CLI prints values (``NULL``, ``true``, ``[1, 2]``, ``{a=1}``). A case
may add ``-- status: difference`` with ``-- local =>`` lines (what the local engine answers
instead) and a ``-- note:``; or ``-- status: unsupported`` (the local engine refuses it,
naming the function and pointing at docs/SQL.md). ``-- unordered`` compares rows as a set;
``-- columns: a, _col1`` checks the names of the result columns.

    .venv/bin/python -m tests.sql_corpus.corpus     # rewrites docs/SQL.md
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

CORPUS = Path(__file__).resolve().parent
REPO = CORPUS.parents[1]
DOC = REPO / "docs" / "SQL.md"

Status = Literal["supported", "difference", "unsupported"]


@dataclass(frozen=True)
class Case:
    family: str
    function: str
    sql: str
    expect: tuple[str, ...]
    status: Status
    local: tuple[str, ...]
    note: str
    source: str
    where: str  # file:line
    unordered: bool = False
    columns: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.where


def load(directory: Path = CORPUS) -> list[Case]:
    """Every case of every ``*.sql`` file of the corpus, in file order."""
    cases: list[Case] = []
    for path in sorted(directory.glob("*.sql")):
        cases.extend(_parse(path))
    return cases


def _parse(path: Path) -> list[Case]:
    family = source = ""
    cases: list[Case] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        nonlocal current
        if current is None:
            return
        sql = "\n".join(current["sql"]).strip().rstrip(";").strip()
        if not sql or not current["expect"]:
            raise ValueError(f"{current['where']}: a case needs SQL and a '-- =>' result")
        status = current["status"]
        if status == "difference" and not current["local"]:
            raise ValueError(f"{current['where']}: a difference needs '-- local =>' lines")
        if status != "supported" and not current["note"]:
            raise ValueError(f"{current['where']}: a {status} case needs a '-- note:'")
        cases.append(Case(family, current["function"], sql, tuple(current["expect"]), status,
                          tuple(current["local"]), current["note"], current["source"] or source,
                          current["where"], current["unordered"],
                          tuple(current["columns"])))
        current = None

    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.rstrip()
        if line.startswith("-- family:"):
            family = line.split(":", 1)[1].strip()
        elif line.startswith("-- source:") and current is None:
            source = line.split(":", 1)[1].strip()
        elif line.startswith("-- function:"):
            close()
            current = {"function": line.split(":", 1)[1].strip(), "sql": [], "expect": [], "local": [],
                       "status": "supported", "note": "", "source": "", "unordered": False, "columns": [],
                       "where": f"{path.name}:{number}"}
        elif current is None:
            continue
        elif line.startswith("-- =>"):
            current["expect"].append(line[5:].strip())
        elif line.startswith("-- local =>"):
            current["local"].append(line[11:].strip())
        elif line.startswith("-- status:"):
            current["status"] = line.split(":", 1)[1].strip()
        elif line.startswith("-- note:"):
            current["note"] = (current["note"] + " " + line.split(":", 1)[1].strip()).strip()
        elif line.startswith("-- source:"):
            current["source"] = line.split(":", 1)[1].strip()
        elif line.startswith("-- columns:"):
            current["columns"].extend(c.strip() for c in line.split(":", 1)[1].split(","))
        elif line.strip() == "-- unordered":
            current["unordered"] = True
        elif line.startswith("--") and (not current["sql"] or current["expect"]):
            continue  # a comment about the case
        else:
            current["sql"].append(raw)
    close()
    return cases


_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def render_placeholders(sql: str, values: Mapping[str, str]) -> str:
    """``${name}`` in a case's SQL (a snapshot id, a snapshot's time) → its value for this lake."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], sql)


# -- values as the Trino CLI prints them --------------------------------------------------

def _double(v: float) -> str:
    """Java's Double.toString, which the Trino CLI uses (shortest round-trip digits)."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "0.0"
    text = repr(v)
    if 1e-3 <= abs(v) < 1e7:
        if "e" in text:
            text = format(Decimal(text), "f")
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(text).as_tuple()
    assert isinstance(exponent, int)
    power = len(digits) + exponent - 1
    significant = "".join(map(str, digits)).rstrip("0") or "0"
    return ("-" if sign else "") + significant[0] + "." + (significant[1:] or "0") + f"E{power}"


def render(value: Any) -> str:
    """A value from a pyarrow result, printed as the Trino CLI prints it."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _double(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}"
        if value.tzinfo is not None:
            offset = value.utcoffset()
            text += " UTC" if offset == dt.timedelta(0) else f" {value.strftime('%z')[:3]}:{value.strftime('%z')[3:]}"
        return text
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        total = value.days * 86400 + value.seconds
        sign = "-" if total < 0 else ""
        total = abs(total)
        days, rest = divmod(total, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{sign}{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{value.microseconds // 1000:03d}"
    if isinstance(value, bytes):
        return " ".join(f"{b:02x}" for b in value)
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # a map's entries
            return "{" + ", ".join(f"{render(k)}={render(v)}" for k, v in value) + "}"
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={render(v)}" for k, v in value.items()) + "}"
    return str(value)


def _map_entries(t: pa.DataType, value: Any) -> Any:
    """pyarrow gives a map as a list of (key, value) tuples; an empty map as []."""
    if value is None:
        return None
    if pa.types.is_map(t):
        return [(_map_entries(t.key_type, k), _map_entries(t.item_type, v)) for k, v in value]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [_map_entries(t.value_type, v) for v in value]
    if pa.types.is_struct(t):
        return {f.name: _map_entries(f.type, value[f.name]) for f in t}
    return value


def rows_text(table: pa.Table) -> list[str]:
    """Each row of a result as `` | ``-separated CLI text."""
    columns = [[_map_entries(f.type, v) for v in table.column(i).to_pylist()]
               for i, f in enumerate(table.schema)]
    out = []
    for r in range(table.num_rows):
        cells = []
        for i, f in enumerate(table.schema):
            v = columns[i][r]
            if pa.types.is_map(f.type) and v == []:
                cells.append("{}")
            else:
                cells.append(render(v))
        out.append(" | ".join(cells))
    return out


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "[{(":
            depth += 1
        elif c in "]})":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _map_order(cell: str) -> str:
    """A map's entries in a fixed order: a map has none (Trino prints them as it stores them)."""
    if cell.startswith("{") and cell.endswith("}") and "=" in cell:
        entries = _split_top(cell[1:-1])
        if all("=" in e for e in entries):
            return "{" + ", ".join(sorted(entries)) + "}"
    return cell


_FRACTION = re.compile(r"(\d{2}:\d{2}:\d{2})(\.\d*?)(0+)(?=\D|$)")


def canonical(text: str) -> str:
    """Fractional seconds without trailing zeros (Trino prints a timestamp(3) as ``.000``; the
    local engine keeps microseconds), so the compared value is the instant, not its precision;
    a map's entries sorted."""
    text = _FRACTION.sub(lambda m: m.group(1) + ("" if m.group(2) == "." else m.group(2)), text)
    return " | ".join(_map_order(cell) for cell in text.split(" | "))


def same(expected: Iterable[str], got: Iterable[str], unordered: bool = False) -> bool:
    want = [canonical(e) for e in expected]
    have = [canonical(g) for g in got]
    if want == ["(no rows)"]:
        want = []
    return sorted(want) == sorted(have) if unordered else want == have


# -- docs/SQL.md ----------------------------------------------------------------------------

_HEADER = """# SQL on the lake: Athena and the local engine

`lake query` runs the same Athena (Trino) SQL on AWS and, on the embedded AWS, through
sqlglot and DuckDB (`lake/query/`). This page says, for every function an analyst reaches
for, whether the local engine gives Athena's answer: **supported** (same answer),
**difference** (runs, with the stated difference) or **not supported** (refused with an
error naming the function and pointing here; never a DuckDB error).

Generated from the corpus `tests/sql_corpus/*.sql` by `python -m tests.sql_corpus.corpus`:
every line below is a query run by `tests/integration/test_query_corpus.py` (in `make test`),
with the result documented by Trino (https://trino.io/docs/current/functions.html) or, for the
lake's views, derived by hand from the stream records in `tests/sql_corpus/lake_records.json`.
Do not edit by hand: a test fails when this file differs from what the corpus generates.

## What the local engine never does

- It reads the lake and nothing else. DuckDB's external access is disabled and its
  configuration locked once the lake's tables are registered; table functions
  (`read_text`, `read_csv`, `read_parquet`, `glob`, ...), `COPY ... TO`, `ATTACH`,
  `INSTALL`, `LOAD`, `SET`, `PRAGMA` and every statement other than a query, `SHOW` or
  `DESCRIBE` are refused with a message naming them.
- It does not keep a time zone with a `timestamp with time zone` value: the session zone
  is UTC, as the lake's, and values are shown in UTC.
- Timestamps carry microseconds (`timestamp(6)`) where Athena's literal or function may have
  another precision; values compare equal, `typeof` says `timestamp(6)`.

## Known differences, in short

{differences}

## The matrix

{tables}
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(cases: list[Case]) -> str:
    """docs/SQL.md for ``cases``."""
    families: dict[str, list[Case]] = {}
    for case in cases:
        families.setdefault(case.family, []).append(case)
    label = {"supported": "supported", "difference": "difference", "unsupported": "not supported"}
    sections = []
    counts: dict[str, int] = {"supported": 0, "difference": 0, "unsupported": 0}
    for family, members in families.items():
        by_function: dict[str, list[Case]] = {}
        for case in members:
            by_function.setdefault(case.function, []).append(case)
        lines = [f"### {family}", "", f"Source: {members[0].source}", "",
                 "| function | local | example | Athena (Trino) | locally, if different |",
                 "| --- | --- | --- | --- | --- |"]
        for function, group in by_function.items():
            worst = max(group, key=lambda c: ("supported", "difference", "unsupported").index(c.status))
            counts[worst.status] += 1
            for i, case in enumerate(group):
                local = ""
                if case.status == "difference":
                    local = "; ".join(case.local) + f" — {case.note}"
                elif case.status == "unsupported":
                    local = f"refused: {case.note}"
                name = f"`{function}`" if i == 0 else ""
                status = label[worst.status] if i == 0 else ""
                lines.append(f"| {name} | {status} | `{_cell(' '.join(case.sql.split()))}` | "
                             f"{_cell('; '.join(case.expect))} | {_cell(local)} |")
        sections.append("\n".join(lines))
    differences = [f"- `{c.function}`: {c.note}" for c in cases if c.status == "difference"]
    summary = (f"{len(cases)} queries over {sum(counts.values())} functions and constructs: "
               f"{counts['supported']} supported, {counts['difference']} with a stated difference, "
               f"{counts['unsupported']} not supported.")
    return _HEADER.format(differences="\n".join(dict.fromkeys(differences)) or "None.",
                          tables=summary + "\n\n" + "\n\n".join(sections)).rstrip() + "\n"


def main() -> int:
    DOC.write_text(markdown(load()))
    print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
