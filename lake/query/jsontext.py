"""Exact JSON text of top-level members of a JSON object. Pure, no AWS.

DuckDB (and most JSON libraries) re-serialise numbers through a double, so
``0.12345678901234567890123`` comes back rounded. The curated zone keeps DynamoDB
numbers as exact literals; these helpers slice the member's original text instead.
"""

from __future__ import annotations

import json
from typing import Any

_DECODER: Any = json.JSONDecoder()
# The C string scanner json itself uses; typeshed does not declare it.
scanstring: Any = json.decoder.scanstring  # type: ignore[attr-defined]
_WS = " \t\n\r"


def _skip(doc: str, i: int) -> int:
    n = len(doc)
    while i < n and doc[i] in _WS:
        i += 1
    return i


def iter_members(doc: str) -> list[tuple[str, str]]:
    """``[(name, exact JSON text of its value), ...]`` of a JSON object, in document order.

    Raises ``ValueError`` when ``doc`` is not a JSON object.
    """
    i = _skip(doc, 0)
    if i >= len(doc) or doc[i] != "{":
        raise ValueError("not a JSON object")
    out: list[tuple[str, str]] = []
    i = _skip(doc, i + 1)
    if i < len(doc) and doc[i] == "}":
        return out
    while True:
        if i >= len(doc) or doc[i] != '"':
            raise ValueError(f"expected a member name at offset {i}")
        name, i = scanstring(doc, i + 1)
        i = _skip(doc, i)
        if i >= len(doc) or doc[i] != ":":
            raise ValueError(f"expected ':' at offset {i}")
        start = _skip(doc, i + 1)
        try:
            # scan_once parses the value only to find where it ends; the text is what we keep.
            _, end = _DECODER.scan_once(doc, start)
        except StopIteration as e:
            raise ValueError(f"bad JSON value at offset {start}") from e
        out.append((name, doc[start:end]))
        i = _skip(doc, end)
        if i < len(doc) and doc[i] == ",":
            i = _skip(doc, i + 1)
            continue
        if i < len(doc) and doc[i] == "}":
            return out
        raise ValueError(f"expected ',' or '}}' at offset {i}")


def members(doc: str | None) -> dict[str, str]:
    """Member name → exact JSON text; ``{}`` for a null document."""
    return dict(iter_members(doc)) if doc else {}


def member_text(doc: str | None, name: str | None) -> str | None:
    """Exact JSON text of member ``name`` of the object ``doc``; ``None`` when absent.

    A member whose value is JSON ``null`` gives the text ``"null"``, so a DynamoDB
    NULL attribute stays distinguishable from a missing one.
    """
    if doc is None or name is None:
        return None
    for key, text in iter_members(doc):
        if key == name:
            return text
    return None
