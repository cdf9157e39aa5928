"""Catalog names of the curated tables: deterministic, collision-free, S3 Tables-compatible. Pure.

DynamoDB table names use ``[A-Za-z0-9_.-]`` (3–255 characters) and are case sensitive;
Glue, Athena and S3 Tables want lower case ``[a-z0-9_]``, starting and ending with a letter
or digit, at most 255 characters. A name that already has that form (and does not end in
what looks like our digest, below) is kept as it is, so ``orders`` → ``orders_history``.
Any other name is made safe *and* given ``_`` + the first 8 hex digits of the SHA-256 of
the original name: ``Orders`` → ``orders_0b9a54f1_history``, ``foo.bar`` and ``foo_bar``
no longer meet. A kept name never ends in ``_<8 hex>`` (such names are digested too), so a
kept name and a digested one cannot coincide; two digested names coincide only if their
digests do, which the catalog door also checks (the table records its source table).
"""

from __future__ import annotations

import hashlib
import re

CHANGES = "changes"
SUFFIXES = ("history", "current")
_PLAIN = re.compile(r"^[a-z0-9](?:[a-z0-9_]*[a-z0-9])?$")
_DIGEST_TAIL = re.compile(r"_[0-9a-f]{8}$")
_UNSAFE = re.compile(r"[^a-z0-9_]+")
_MAX_BASE = 200  # room for the digest and the suffix within 255


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def base_name(source_table: str) -> str:
    """The catalog stem of a DynamoDB table (see the module docstring)."""
    if _PLAIN.match(source_table) and not _DIGEST_TAIL.search(source_table) and len(source_table) <= _MAX_BASE:
        return source_table
    safe = _UNSAFE.sub("_", source_table.lower()).strip("_")[:_MAX_BASE].rstrip("_") or "t"
    return f"{safe}_{digest(source_table)}"


def history_table(source_table: str) -> str:
    """``<stem>_history``: the typed history of one source table."""
    return f"{base_name(source_table)}_history"


def current_table(source_table: str) -> str:
    """``<stem>_current``: one row per live item of one source table."""
    return f"{base_name(source_table)}_current"
