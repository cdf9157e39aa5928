"""Test helper: render the Athena DDL files with values from the settings (pure; no AWS).

Only the tests render DDL (``lake query`` renders views and queries with
``lake.query.sqlfiles``), so this does not ship.

The ``.sql`` files are the same text on AWS and locally; ``${name}`` placeholders
that name a setting value are filled in here, and every other ``${...}`` is left
alone, because Athena's partition projection uses the same syntax for its own
``storage.location.template`` (``${table}``, ``${dt}``, ``${hour}``).
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from lake.settings import Settings

DDL_DIR = Path(__file__).resolve().parents[1] / "athena_queries" / "ddl"
# Names Athena itself substitutes in storage.location.template: never ours.
PROJECTION_NAMES = frozenset({"table", "dt", "hour", "table_name"})
_SAFE = re.compile(r"^[A-Za-z0-9_.\-/:]*$")


def ddl_values(settings: Settings) -> dict[str, str]:
    """The placeholder values: bucket, prefix, raw_prefix, raw_location, tables, database."""
    values = {
        "bucket": settings.bucket,
        "prefix": settings.prefix.strip("/"),
        "raw_prefix": settings.zone_prefix("raw"),
        "raw_location": settings.s3_url("raw"),
        "curated_location": settings.s3_url("curated"),
        "tables": ",".join(settings.table_names),
        "database": settings.glue_database,
    }
    for name, value in values.items():
        # These land inside SQL string literals: refuse anything that could close one.
        if not _SAFE.match(value.replace(",", "")):
            raise ValueError(f"setting for ${{{name}}} has characters unsafe in DDL: {value!r}")
    return values


def render_ddl(sql: str, settings: Settings, **extra: str) -> str:
    """Substitute ``${bucket}``-style placeholders; Athena's projection placeholders stay."""
    values = ddl_values(settings) | extra
    clash = PROJECTION_NAMES & values.keys()
    if clash:
        raise ValueError(f"{sorted(clash)} are Athena projection placeholders, not settings")
    return string.Template(sql).safe_substitute(values)


def load_ddl(name: str, settings: Settings, directory: Path = DDL_DIR) -> str:
    """Read ``athena_queries/ddl/<name>.sql`` (``name`` with or without ``.sql``) and render it."""
    path = directory / (name if name.endswith(".sql") else f"{name}.sql")
    return render_ddl(path.read_text(), settings)
