"""Trino functions DuckDB lacks or answers differently, in plain Python. Pure, no AWS.

The local engine registers them as DuckDB functions (``lake.query.local``) and the dialect
(``lake.query.dialect``) routes the Trino calls to them. Each follows Trino's documented
behaviour (docs/SQL.md lists them with the examples that test them).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from lake.query.jsontext import scanstring

_DECODER: Any = json.JSONDecoder()
_WS = " \t\n\r"


# -- JSON -------------------------------------------------------------------------------

class _NoMatch(Exception):
    pass


_PATH_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_$][A-Za-z0-9_$]*)"""   # .name
    r"""|\[(?P<index>\d+)\]"""                      # [0]
    r"""|\[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]"""    # ["name"]
    r"""|\[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]"""    # ['name']
    r"""|\.\s*"(?P<qname>(?:[^"\\]|\\.)*)"\s*"""   # ."name"
)


def parse_json_path(path: str) -> list[str | int]:
    """Trino's JSONPath subset of ``json_extract``/``json_extract_scalar`` (``$.a.b``,
    ``$[0]``, ``$["a b"]``, ``$.a[1].c``) → steps; ``ValueError`` for anything else."""
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"invalid JSON path: {path!r}")
    steps: list[str | int] = []
    i = 1
    while i < len(text):
        m = _PATH_STEP.match(text, i)
        if m is None:
            raise ValueError(f"invalid JSON path: {path!r}")
        if m.group("name") is not None:
            steps.append(m.group("name"))
        elif m.group("index") is not None:
            steps.append(int(m.group("index")))
        else:
            quoted = next(g for g in (m.group("dq"), m.group("sq"), m.group("qname")) if g is not None)
            steps.append(json.loads('"' + quoted.replace("\\'", "'") + '"'))
        i = m.end()
    return steps


def _skip(doc: str, i: int) -> int:
    while i < len(doc) and doc[i] in _WS:
        i += 1
    return i


def _value_end(doc: str, start: int) -> int:
    try:
        _, end = _DECODER.scan_once(doc, start)
    except StopIteration as e:
        raise _NoMatch from e
    return int(end)


def _step(doc: str, start: int, step: str | int) -> int:
    """Where the value selected by ``step`` starts, in the value that starts at ``start``."""
    if start >= len(doc):
        raise _NoMatch
    opener = doc[start]
    if isinstance(step, int):
        if opener != "[":
            raise _NoMatch
        i, n = _skip(doc, start + 1), 0
        if i < len(doc) and doc[i] == "]":
            raise _NoMatch
        while True:
            if n == step:
                return i
            i = _skip(doc, _value_end(doc, i))
            if i >= len(doc) or doc[i] != ",":
                raise _NoMatch
            i, n = _skip(doc, i + 1), n + 1
    if opener != "{":
        raise _NoMatch
    i = _skip(doc, start + 1)
    if i < len(doc) and doc[i] == "}":
        raise _NoMatch
    while True:
        if i >= len(doc) or doc[i] != '"':
            raise _NoMatch
        name, i = scanstring(doc, i + 1)
        i = _skip(doc, i)
        if i >= len(doc) or doc[i] != ":":
            raise _NoMatch
        value = _skip(doc, i + 1)
        if name == step:
            return value
        i = _skip(doc, _value_end(doc, value))
        if i >= len(doc) or doc[i] != ",":
            raise _NoMatch
        i = _skip(doc, i + 1)


def json_value_text(doc: str | None, path: str | None) -> str | None:
    """The exact JSON text at ``path`` in ``doc`` (numbers as written), or None."""
    if doc is None or path is None:
        return None
    try:
        steps = parse_json_path(path)
        i = _skip(doc, 0)
        for step in steps:
            i = _step(doc, i, step)
        end = _value_end(doc, i)
        json.loads(doc)  # Trino: a document that is not valid JSON gives NULL
    except (_NoMatch, ValueError):
        return None
    return doc[i:end]


def json_extract_scalar(doc: str | None, path: str | None) -> str | None:
    """Trino's ``json_extract_scalar``: the scalar at ``path`` as text — a string unquoted, a
    number exactly as written (never through a double), ``true``/``false``; NULL for an
    object, an array, JSON null, a missing path or a document that is not JSON."""
    text = json_value_text(doc, path)
    if text is None or not text or text[0] in "{[" or text == "null":
        return None
    if text[0] == '"':
        value: str = json.loads(text)
        return value
    return text


def json_array_contains(doc: str | None, value_json: str | None, kind: str | None) -> bool | None:
    """Trino's ``json_array_contains(json, value)``: NULL when ``doc`` is not a JSON array.

    ``value_json`` is the searched value as JSON and ``kind`` its SQL type family
    (``boolean``, ``bigint``, ``double``, ``varchar``): Trino compares a bigint only with
    integral numbers, a double with any number, a string only with strings."""
    if doc is None or value_json is None:
        return None
    try:
        items = json.loads(doc)
        wanted = json.loads(value_json)
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    for item in items:
        if kind == "boolean":
            if isinstance(item, bool) and item == wanted:
                return True
        elif kind == "bigint":
            if isinstance(item, int) and not isinstance(item, bool) and item == wanted:
                return True
        elif kind == "double":
            if isinstance(item, (int, float)) and not isinstance(item, bool) and float(item) == float(wanted):
                return True
        elif isinstance(item, str) and item == wanted:
            return True
    return False


def json_array_get(doc: str | None, index: int | None) -> str | None:
    """Trino's ``json_array_get`` (documented as broken, kept as is): the element's JSON text,
    a string element without its quotes; negative indexes count from the end."""
    if doc is None or index is None:
        return None
    try:
        items = json.loads(doc)
    except ValueError:
        return None
    if not isinstance(items, list) or not -len(items) <= index < len(items):
        return None
    item = items[index]
    if isinstance(item, str):
        return item
    return json.dumps(item, separators=(",", ":"))


def json_size(doc: str | None, path: str | None) -> int | None:
    """Trino's ``json_size``: members of an object, elements of an array, 0 for a scalar."""
    text = json_value_text(doc, path)
    if text is None:
        return None
    value = json.loads(text)
    return len(value) if isinstance(value, (list, dict)) else 0


# -- strings and numbers ----------------------------------------------------------------------

def split(text: str | None, delimiter: str | None, limit: int | None) -> list[str] | None:
    """Trino's ``split(string, delimiter, limit)``: at most ``limit`` parts, the last one
    holding the rest of the string."""
    if text is None or delimiter is None or limit is None:
        return None
    if limit <= 0:
        raise ValueError("split: limit must be positive")
    if delimiter == "":
        return list(text)[: limit - 1] + ([text[limit - 1:]] if len(text) >= limit else [])
    return text.split(delimiter, limit - 1)


def strpos(text: str | None, sub: str | None, instance: int | None) -> int | None:
    """Trino's ``strpos(string, substring, instance)``: the position (from 1) of the N-th
    instance, counting from the end when ``instance`` is negative; 0 when there is none."""
    if text is None or sub is None or instance is None:
        return None
    if instance == 0:
        raise ValueError("strpos: instance must not be zero")
    positions = [i for i in range(len(text) - len(sub) + 1) if text.startswith(sub, i)]
    if instance < 0:
        positions.reverse()
    n = abs(instance)
    return positions[n - 1] + 1 if len(positions) >= n else 0


def regexp_position(text: str | None, pattern: str | None, start: int | None, occurrence: int | None) -> int | None:
    """Trino's ``regexp_position``: where (from 1) the N-th match from ``start`` begins, -1 if none."""
    if text is None or pattern is None or start is None or occurrence is None:
        return None
    for n, m in enumerate(re.finditer(pattern, text[start - 1:]), 1):
        if n == occurrence:
            return m.start() + start
    return -1


def java_replacement(replacement: str | None) -> str | None:
    """A Java (Trino) regex replacement (``$1``, ``${name}``, ``\\$``) in RE2's syntax (``\\1``)."""
    if replacement is None:
        return None
    out, i = [], 0
    while i < len(replacement):
        c = replacement[i]
        if c == "\\" and i + 1 < len(replacement):
            nxt = replacement[i + 1]
            out.append("\\\\" if nxt == "\\" else nxt)
            i += 2
        elif c == "$":
            m = re.match(r"\$(\d)", replacement[i:])
            if m is None:
                raise ValueError("regexp_replace: only numbered groups ($1) are supported locally (see docs/SQL.md)")
            out.append("\\" + m.group(1))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def cbrt(x: float | None) -> float | None:
    """The cube root, exact for exact cubes (as Java's Math.cbrt)."""
    if x is None:
        return None
    root = round(abs(x) ** (1 / 3))
    if root ** 3 == abs(x):
        return float(root) if x >= 0 else -float(root)
    return x ** (1 / 3) if x >= 0 else -((-x) ** (1 / 3))


def from_base(text: str | None, radix: int | None) -> int | None:
    if text is None or radix is None:
        return None
    return int(text, radix)


_SIZE_UNITS = {"B": 0, "kB": 1, "MB": 2, "GB": 3, "TB": 4, "PB": 5, "EB": 6, "ZB": 7, "YB": 8}


def parse_data_size(text: str | None) -> Decimal | None:
    """Trino's ``parse_data_size('2.3MB')``: bytes, 1 kB = 1024 B, fractions truncated."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kMGTPEZY]?B)\s*", text)
    if m is None:
        raise ValueError(f"parse_data_size: invalid data size {text!r}")
    return (Decimal(m.group(1)) * 1024 ** _SIZE_UNITS[m.group(2)]).to_integral_value(rounding="ROUND_DOWN")


_FORMAT_SPEC = re.compile(r"%(?:(\d+)\$)?([-#+ 0,(]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def java_format(pattern: str | None, args_json: str | None) -> str | None:
    """Trino's ``format(format, args...)`` (Java's Formatter): ``%s %d %f %e %x %o %c %b %%
    %n``, flags ``-#+ 0,(``, width, precision and ``n$`` positions; date conversions (``%t``)
    are not supported locally. ``args_json`` holds the arguments as ``{"a0": ..., ...}``."""
    if pattern is None or args_json is None:
        return None
    values = list(json.loads(args_json, parse_float=Decimal).values())
    out, i, next_arg = [], 0, 0
    for m in _FORMAT_SPEC.finditer(pattern):
        out.append(pattern[i:m.start()])
        i = m.end()
        position, flags, width, precision, conversion = m.groups()
        if conversion == "%":
            out.append("%")
            continue
        if conversion == "n":
            out.append("\n")
            continue
        if conversion in "tT":
            raise ValueError("format: date/time conversions (%t) are not supported locally (see docs/SQL.md)")
        if position is not None:
            value = values[int(position) - 1]
        else:
            value = values[next_arg]
            next_arg += 1
        spec = ""
        if "-" in flags:
            spec += "<"
        elif conversion in "sSbBc":  # Java right-aligns every conversion by default
            spec += ">"
        if "+" in flags:
            spec += "+"
        elif " " in flags:
            spec += " "
        if "#" in flags:
            spec += "#"
        if "0" in flags:
            spec += "0"
        spec += width or ""
        if "," in flags:
            spec += ","
        if conversion in "sS":
            text = "null" if value is None else ("true" if value is True else "false" if value is False else str(value))
            text = text[: int(precision)] if precision else text
            text = format(text, spec.replace("0", ""))
            out.append(text.upper() if conversion == "S" else text)
            continue
        if conversion in "dxXo":
            out.append(format(int(value), spec + conversion))
            continue
        if conversion in "feEgG":
            digits = precision if precision is not None else "6"
            out.append(format(Decimal(str(value)), f"{spec}.{digits}{conversion}"))
            continue
        if conversion == "c":
            out.append(chr(value) if isinstance(value, int) else str(value)[0])
            continue
        if conversion in "bB":
            out.append(str(bool(value)).lower() if value is not None else "false")
            continue
        raise ValueError(f"format: conversion %{conversion} is not supported locally (see docs/SQL.md)")
    out.append(pattern[i:])
    return "".join(out)


# -- format_datetime: Joda-Time patterns ------------------------------------------------------

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class UnsupportedPatternError(ValueError):
    """A Joda-Time pattern letter the local format_datetime does not implement."""


def _joda_field(letter: str, count: int, t: datetime) -> str:
    if letter in "yY":  # year (of era)
        return f"{t.year % 100:02d}" if count == 2 else f"{t.year:0{count}d}"
    if letter == "x":  # week year
        year = t.isocalendar()[0]
        return f"{year % 100:02d}" if count == 2 else f"{year:0{count}d}"
    if letter == "M":
        if count >= 4:
            return _MONTHS[t.month - 1]
        if count == 3:
            return _MONTHS[t.month - 1][:3]
        return f"{t.month:0{count}d}"
    if letter == "d":
        return f"{t.day:0{count}d}"
    if letter == "D":
        return f"{t.timetuple().tm_yday:0{count}d}"
    if letter == "w":
        return f"{t.isocalendar()[1]:0{count}d}"
    if letter == "e":
        return f"{t.isoweekday():0{count}d}"
    if letter == "E":
        return _DAYS[t.weekday()] if count >= 4 else _DAYS[t.weekday()][:3]
    if letter == "a":
        return "AM" if t.hour < 12 else "PM"
    if letter == "H":
        return f"{t.hour:0{count}d}"
    if letter == "k":
        return f"{t.hour or 24:0{count}d}"
    if letter == "h":
        return f"{(t.hour % 12) or 12:0{count}d}"
    if letter == "K":
        return f"{t.hour % 12:0{count}d}"
    if letter == "m":
        return f"{t.minute:0{count}d}"
    if letter == "s":
        return f"{t.second:0{count}d}"
    if letter == "S":
        return f"{t.microsecond:06d}"[:count].ljust(count, "0")
    if letter == "G":
        return "AD"
    if letter == "C":
        return f"{t.year // 100:0{count}d}"
    if letter == "z":
        return "UTC" if count < 4 else "Coordinated Universal Time"
    if letter == "Z":
        return "Z" if count == 1 else ("+00:00" if count == 2 else "UTC")
    raise UnsupportedPatternError(f"format_datetime: pattern letter {letter!r} is not supported locally "
                                  "(see docs/SQL.md)")


def format_datetime(value: datetime | date | None, pattern: str | None) -> str | None:
    """Trino's ``format_datetime(timestamp, format)`` with a Joda-Time pattern (``yyyy-MM-dd
    HH:mm:ss.SSS``, ``EEE, d MMM yyyy``, quoted literals ``'T'``). Times are UTC (the session
    zone of the lake)."""
    if value is None or pattern is None:
        return None
    t = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            if pattern.startswith("''", i):  # '' outside a literal is a quote
                out.append("'")
                i += 2
                continue
            j, literal = i + 1, []
            while True:
                if j >= n:
                    raise UnsupportedPatternError(f"format_datetime: unterminated quote in {pattern!r}")
                if pattern[j] == "'":
                    if pattern.startswith("''", j):  # '' inside a literal is a quote too
                        literal.append("'")
                        j += 2
                        continue
                    break
                literal.append(pattern[j])
                j += 1
            out.append("".join(literal))
            i = j + 1
        elif c.isascii() and c.isalpha():
            j = i
            while j < n and pattern[j] == c:
                j += 1
            out.append(_joda_field(c, j - i, t))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


# -- type names -------------------------------------------------------------------------------

_SIMPLE_TYPES = {
    "BOOLEAN": "boolean", "TINYINT": "tinyint", "SMALLINT": "smallint", "INTEGER": "integer",
    "BIGINT": "bigint", "HUGEINT": "decimal(38,0)", "FLOAT": "real", "DOUBLE": "double",
    "VARCHAR": "varchar", "BLOB": "varbinary", "DATE": "date", "TIME": "time(6)",
    "TIMESTAMP": "timestamp(6)", "TIMESTAMP WITH TIME ZONE": "timestamp(6) with time zone",
    "TIMESTAMP_S": "timestamp(0)", "TIMESTAMP_MS": "timestamp(3)", "TIMESTAMP_NS": "timestamp(9)",
    "INTERVAL": "interval day to second", "UUID": "uuid", "JSON": "json", '"NULL"': "unknown",
    "NULL": "unknown", "UTINYINT": "smallint", "USMALLINT": "integer", "UINTEGER": "bigint",
    "UBIGINT": "decimal(20,0)",
}


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def trino_type_name(duckdb_type: str | None) -> str | None:
    """DuckDB's type name → Trino's (``INTEGER[]`` → ``array(integer)``, ``STRUCT(a INTEGER)``
    → ``row(a integer)``, ``DECIMAL(2,1)`` → ``decimal(2,1)``)."""
    if duckdb_type is None:
        return None
    t = duckdb_type.strip()
    if t.endswith("[]"):
        return f"array({trino_type_name(t[:-2])})"
    m = re.fullmatch(r"(\w+)\s*\((.*)\)", t, re.S)
    if m:
        head, inner = m.group(1).upper(), m.group(2)
        if head == "DECIMAL":
            return "decimal(" + ",".join(p.strip() for p in inner.split(",")) + ")"
        if head == "MAP":
            key, value = _split_top(inner)
            return f"map({trino_type_name(key)}, {trino_type_name(value)})"
        if head == "STRUCT":
            fields = []
            for part in _split_top(inner):
                name, _, ftype = part.partition(" ")
                fields.append(f"{name.strip(chr(34))} {trino_type_name(ftype)}")
            return "row(" + ", ".join(fields) + ")"
        if head == "VARCHAR":
            return "varchar"
    return _SIMPLE_TYPES.get(t.upper(), t.lower())
