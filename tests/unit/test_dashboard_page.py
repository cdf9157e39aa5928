"""The dashboard's pure parts: the visuals' declarations against their SQL files, the series a chart
draws from a query's rows, the binding of the chosen attribute, and the page's tiles."""

from __future__ import annotations

from datetime import datetime

import pytest

from lake.dashboard.collect import DashboardData, Health
from lake.dashboard.html import NONE_LABEL, render, series
from lake.dashboard.queries import bound_text, query_params, query_path, query_text
from lake.dashboard.visuals import VISUALS, check_attribute, visual
from lake.errors import ConfigError
from lake.query.dialect import parse
from lake.settings import Settings


@pytest.mark.parametrize("v", VISUALS, ids=lambda v: v.id)
def test_each_visual_declares_the_columns_its_sql_returns(v: object) -> None:
    from lake.dashboard.visuals import Visual

    assert isinstance(v, Visual)
    assert query_path(v).is_file()
    (statement,) = parse(query_text(v, Settings()))
    assert tuple(statement.named_selects) == v.column_names
    for name in (v.x, v.y, v.color):
        if name is not None:
            v.column(name)
    assert len(query_params(v, Settings())) == query_text(v, Settings()).count("?")


def test_the_chosen_attribute_is_bound_as_a_literal_and_checked() -> None:
    counts = visual("current_state_counts")
    assert query_params(counts, Settings(dashboard_attribute="tier")) == ["tier"]
    text = bound_text(counts, Settings(dashboard_attribute="tier"))
    assert "concat('$.', 'tier')" in text and "?" not in text
    assert text.replace("'tier'", "?") == query_text(counts, Settings())
    for bad in ("bad name", "x'; DROP TABLE changes; --", "a.b", ""):
        with pytest.raises(ConfigError):
            query_params(counts, Settings(dashboard_attribute=bad))
    assert check_attribute("_ok9") == "_ok9"


def test_series_sum_per_colour_label_nulls_and_keep_the_top() -> None:
    most = visual("most_changed_attributes")  # top 15
    rows = [{"table_name": t, "attribute": f"a{i:02d}", "changes": i} for t in ("orders", "users") for i in range(20)]
    drawn = series(most, rows)
    assert set(drawn) == {"orders", "users"}
    assert list(drawn["orders"]) == sorted(f"a{i:02d}" for i in range(5, 20))  # the 15 largest totals
    assert drawn["users"]["a19"] == 19

    counts = visual("current_state_counts")
    drawn = series(counts, [{"table_name": "orders", "value": None, "items": 2},
                            {"table_name": "orders", "value": "paid", "items": 3}])
    assert drawn == {"orders": {NONE_LABEL: 2, "paid": 3}}

    volume = visual("change_volume")  # one line per table and event name
    hour = datetime(2026, 1, 2, 3)
    drawn = series(volume, [{"table_name": "orders", "hour": hour, "event_name": "INSERT", "changes": 4},
                            {"table_name": "users", "hour": hour, "event_name": "INSERT", "changes": 1}])
    assert drawn == {"orders · INSERT": {"2026-01-02 03:00:00": 4}, "users · INSERT": {"2026-01-02 03:00:00": 1}}


def test_the_page_shows_health_and_says_why_a_visual_is_empty() -> None:
    newest = datetime(2026, 1, 2, 3, 4, 5)
    data = DashboardData(rows={"pipeline_lag": [{"newest_change_time": newest, "changes": 1234}]},
                         health=Health(newest, 150.0, None, 3), generated_at=datetime(2026, 1, 2, 3, 6, 35),
                         attribute="status", engine="local", errors={"deletions": "unknown table 'changes'"})
    page = render(data)
    assert 'id="kpi-lag" data-value="150.0"' in page and "2 min 30 s" in page
    assert 'id="kpi-dlq" data-value=""' in page and ">unknown<" in page
    assert 'id="kpi-quarantined" data-value="3"' in page
    assert 'id="kpi-changes" data-value="1234"' in page and "1,234" in page
    assert "no data: unknown table &#x27;changes&#x27;" in page
