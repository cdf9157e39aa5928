"""The dashboard as one self-contained HTML page: plotly.js inlined, no request leaves the page.

Each chart is a plotly figure built from a visual's rows (``lake.dashboard.visuals``); the audit
trail is an HTML table; the health figures are tiles carrying their raw value in ``data-value``.
Served by ``lake up``, the page asks ``version`` every few seconds and reloads when the data changed;
opened from a file it makes no request at all.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from lake.dashboard.collect import DashboardData, Row
from lake.dashboard.visuals import SERIES_SEPARATOR, VISUALS, Visual

NONE_LABEL = "(none)"  # a NULL category (an item without the chosen attribute)
CHART_HEIGHT = 360


def category(value: Any) -> str:
    """How a category value is labelled on an axis or in a legend."""
    if value is None:
        return NONE_LABEL
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def series(v: Visual, rows: list[Row]) -> dict[str, dict[str, int]]:
    """``{series name: {x label: summed y}}`` as drawn: one series per ``color`` value (per table and
    ``color`` for a line), bars limited to the ``top`` categories of largest total."""
    assert v.x is not None and v.y is not None
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        name = category(r[v.color]) if v.color else v.y
        if v.kind == "line" and "table_name" in r and v.color != "table_name":
            name = f"{r['table_name']}{SERIES_SEPARATOR}{name}"
        out[name][category(r[v.x])] += int(r[v.y] or 0)
    if v.top is not None:
        totals: dict[str, int] = defaultdict(int)
        for points in out.values():
            for x, y in points.items():
                totals[x] += y
        keep = set(sorted(totals, key=lambda x: (-totals[x], x))[: v.top])
        out = defaultdict(lambda: defaultdict(int),
                          {s: defaultdict(int, {x: y for x, y in p.items() if x in keep}) for s, p in out.items()})
    return {s: dict(sorted(p.items())) for s, p in sorted(out.items()) if p}


def figure(v: Visual, rows: list[Row]) -> go.Figure:
    fig = go.Figure()
    for name, points in series(v, rows).items():
        xs, ys = list(points), list(points.values())  # lists, not arrays: plotly.py would base64 an array
        if v.kind == "line":
            fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines+markers"))
        else:
            fig.add_trace(go.Bar(x=xs, y=ys, name=name))
    fig.update_layout(
        height=CHART_HEIGHT, margin={"l": 50, "r": 20, "t": 30, "b": 60}, template="plotly_white",
        barmode="stack" if v.kind == "stacked_bar" else "group", legend={"orientation": "h", "y": -0.25},
        xaxis_title=v.x, yaxis_title=v.y,
    )
    if v.kind == "line":
        fig.update_xaxes(tickformat="%Y-%m-%d %H:%M")
    else:
        fig.update_xaxes(type="category")  # a dt or a value is a label, never a point in time
    if v.top is not None:
        fig.update_xaxes(categoryorder="total descending")
    return fig


def _chart(v: Visual, data: DashboardData) -> str:
    rows = data.rows.get(v.id, [])
    note = ""
    if v.id in data.errors:
        note = f'<p class="note">no data: {html.escape(data.errors[v.id])}</p>'
    elif not rows:
        note = '<p class="note">no rows yet</p>'
    div = pio.to_html(figure(v, rows), full_html=False, include_plotlyjs=False, div_id=f"v-{v.id}",
                      default_height=f"{CHART_HEIGHT}px", config={"displaylogo": False, "responsive": True})
    return (f'<section class="card" data-visual="{v.id}"><h2>{html.escape(v.title)}</h2>'
            f'<p class="query">athena_queries/dashboard/{v.query}.sql</p>{note}{div}</section>')


def _table(v: Visual, data: DashboardData) -> str:
    rows = data.rows.get(v.id, [])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in v.column_names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if r[c] is None else category(r[c]))}</td>" for c in v.column_names)
        + "</tr>" for r in rows
    )
    note = f'<p class="note">no data: {html.escape(data.errors[v.id])}</p>' if v.id in data.errors else ""
    return (f'<section class="card wide" data-visual="{v.id}"><h2>{html.escape(v.title)}</h2>'
            f'<p class="query">athena_queries/dashboard/{v.query}.sql</p>{note}'
            f'<div class="scroll"><table id="v-{v.id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            "</div></section>")


def _tile(tile_id: str, label: str, value: Any, shown: str) -> str:
    raw = "" if value is None else str(value)
    return (f'<div class="tile" id="kpi-{tile_id}" data-value="{html.escape(raw)}">'
            f'<div class="label">{html.escape(label)}</div><div class="value">{html.escape(shown)}</div></div>')


def _health(data: DashboardData) -> str:
    h = data.health
    lag = "—" if h.lag_seconds is None else _duration(h.lag_seconds)
    newest = "—" if h.newest_change_time is None else category(h.newest_change_time) + " UTC"
    changes = (data.rows.get("pipeline_lag") or [{}])[0].get("changes")
    tiles = [
        _tile("lag", "lag: newest change → now", None if h.lag_seconds is None else round(h.lag_seconds, 3), lag),
        _tile("newest", "newest change", category(h.newest_change_time) if h.newest_change_time else None, newest),
        _tile("changes", "changes in the lake", changes, "—" if changes is None else f"{changes:,}"),
        _tile("dlq", "dead-letter depth", h.dead_letter_depth,
              "unknown" if h.dead_letter_depth is None else str(h.dead_letter_depth)),
        _tile("quarantined", "quarantined records", h.quarantined, str(h.quarantined)),
    ]
    return ('<section class="card wide" data-visual="health"><h2>Pipeline health</h2>'
            f'<div class="tiles">{"".join(tiles)}</div></section>')


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 120:
        return f"{seconds:.1f} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{padding:14px 24px;background:#232f3e;color:#fff}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;font-size:13px;color:#ccd}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px;padding:16px 24px}
.card{background:#fff;border-radius:6px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.12)}
.card.wide{grid-column:1/-1}.card h2{font-size:16px;margin:0 0 2px}
.query{font-size:11px;color:#888;margin:0 0 6px;font-family:monospace}.note{color:#a33;font-size:13px}
.tiles{display:flex;flex-wrap:wrap;gap:12px}.tile{flex:1;min-width:150px;background:#f7f9fb;padding:10px;border-radius:4px}
.tile .label{font-size:12px;color:#666}.tile .value{font-size:22px;font-weight:600}
.scroll{max-height:420px;overflow:auto}table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #e3e3e3;padding:3px 6px;text-align:left;font-family:monospace;white-space:nowrap}
th{position:sticky;top:0;background:#fff}
"""

# Served pages poll for a new version of the data and reload; a page opened from a file never polls.
_POLL = """
(function(){var v=%s;setInterval(function(){fetch('version',{cache:'no-store'}).then(function(r){return r.text()})
.then(function(t){if(t.trim()&&t.trim()!==v){location.reload()}}).catch(function(){})},%d)})();
"""


def render(data: DashboardData, *, version: str | None = None, poll_ms: int = 2000) -> str:
    """The page. ``version``: the served page's data version, polled at ``poll_ms`` (None: no polling)."""
    sections = [_health(data)]
    for v in VISUALS:
        sections.append(_table(v, data) if v.kind == "table" else "" if v.kind == "kpi" else _chart(v, data))
    poll = f"<script>{_POLL % (json.dumps(version), poll_ms)}</script>" if version is not None else ""
    subtitle = (f"generated {category(data.generated_at)} UTC · engine {data.engine} · current state by "
                f"<code>{html.escape(data.attribute)}</code>")
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>lake dashboard</title>"
        f"<style>{_CSS}</style><script>{get_plotlyjs()}</script></head><body>"
        f'<header><h1>lake dashboard</h1><p>{subtitle}</p></header><main>{"".join(sections)}</main>{poll}'
        "</body></html>"
    )
