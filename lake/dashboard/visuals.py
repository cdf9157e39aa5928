"""The dashboard's visuals, declared once: the QuickSight definition and the local page derive from here.

Each visual names its query in ``athena_queries/dashboard/`` and the columns that query returns
(with QuickSight's column types), so a dataset, a chart and a test read the same declaration.
Pure: no AWS, no plotly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lake.errors import ConfigError

ChartKind = Literal["line", "bar", "stacked_bar", "table", "kpi"]
# QuickSight's InputColumn types the dashboard's queries return
ColumnType = Literal["STRING", "INTEGER", "DATETIME"]

_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType


@dataclass(frozen=True)
class Visual:
    """One chart or table: its query, the columns it returns, and how they are drawn.

    ``x`` is the category (or time) axis, ``y`` the measure (summed), ``color`` the column whose
    values make the series. A ``table`` shows ``columns`` as they are; a ``kpi`` shows ``y``.
    ``top``: only the ``top`` categories with the largest total are drawn (bars).
    ``params``: names of settings bound, in order, to the query's ``?`` placeholders.
    """

    id: str
    title: str
    query: str
    kind: ChartKind
    columns: tuple[Column, ...]
    x: str | None = None
    y: str | None = None
    color: str | None = None
    top: int | None = None
    params: tuple[str, ...] = ()
    sheet: Literal["activity", "health"] = "activity"
    athena_only: bool = False  # reads Athena's Iceberg metadata tables: the local page reads the metadata itself

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"visual {self.id} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _cols(*spec: str) -> tuple[Column, ...]:
    out = []
    for s in spec:
        name, _, typ = s.partition(":")
        out.append(Column(name, typ or "STRING"))  # type: ignore[arg-type]
    return tuple(out)


VISUALS: tuple[Visual, ...] = (
    Visual("change_volume", "Changes per hour, by table and event", "change_volume", "line",
           _cols("table_name", "hour:DATETIME", "event_name", "changes:INTEGER"),
           x="hour", y="changes", color="event_name"),
    Visual("most_changed_attributes", "Most changed attributes (updates)", "most_changed_attributes", "bar",
           _cols("table_name", "attribute", "changes:INTEGER"), x="attribute", y="changes", color="table_name",
           top=15),
    Visual("deletions", "Deletions: TTL vs user", "deletions_by_kind", "stacked_bar",
           _cols("table_name", "deletion_kind", "deletions:INTEGER"), x="table_name", y="deletions",
           color="deletion_kind"),
    Visual("current_state_counts", "Items now, by the chosen attribute", "current_state_counts", "stacked_bar",
           _cols("table_name", "value", "items:INTEGER"), x="value", y="items", color="table_name",
           params=("dashboard_attribute",)),
    Visual("recent_audit_trail", "Recent audit trail", "recent_audit_trail", "table",
           _cols("table_name", "key", "event_time:DATETIME", "event_name", "attribute", "old_value", "new_value",
                 "actor")),
    Visual("pipeline_lag", "Newest change in the lake", "pipeline_lag", "kpi",
           _cols("newest_change_time:DATETIME", "changes:INTEGER"), y="changes", sheet="health"),
    Visual("files_per_partition", "Data files per partition of `changes`", "athena_only/files_per_partition",
           "stacked_bar",
           _cols("table_name", "dt", "files:INTEGER", "records:INTEGER"), x="dt", y="files", color="table_name",
           sheet="health", athena_only=True),
)

# The trace of a line series (change_volume): one series per table and event name.
SERIES_SEPARATOR = " · "


def visual(visual_id: str) -> Visual:
    for v in VISUALS:
        if v.id == visual_id:
            return v
    raise KeyError(visual_id)


def check_attribute(name: str) -> str:
    """The chosen attribute lands in a JSON path ('$.name'), which both engines accept only for plain names."""
    if not _SIMPLE_NAME.match(name):
        raise ConfigError(f"dashboard attribute {name!r} must be a plain attribute name ([A-Za-z_][A-Za-z0-9_]*)")
    return name
