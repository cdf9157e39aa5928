"""The raw_changes DDL renders from settings and parses as Athena SQL."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from lake.settings import Settings
from tests.athena_ddl import DDL_DIR, load_ddl, render_ddl


def test_raw_changes_renders_and_parses() -> None:
    settings = Settings(bucket="my-lake", prefix="team", source_tables=("orders", "users:uid:-"))
    sql = load_ddl("raw_changes", settings)
    assert "LOCATION 's3://my-lake/team/raw/'" in sql
    assert "'projection.table.values' = 'orders,users'" in sql
    # Athena's own placeholders survive rendering
    assert "'s3://my-lake/team/raw/table=${table}/dt=${dt}/hour=${hour}/'" in sql
    (stmt,) = sqlglot.parse(sql, read="athena")
    assert isinstance(stmt, exp.Create)
    assert stmt.args["kind"].upper() == "TABLE"
    text = stmt.sql("athena")
    assert "org.openx.data.jsonserde.JsonSerDe" in text
    assert "'projection.hour.digits'='2'" in text.replace(" ", "")


def test_template_file_has_no_unrendered_setting_placeholders() -> None:
    raw = (DDL_DIR / "raw_changes.sql").read_text()
    rendered = render_ddl(raw, Settings())
    for name in ("bucket", "tables", "raw_location", "raw_prefix"):
        assert "${" + name + "}" not in rendered
    assert "${raw_location}" in raw and "${tables}" in raw
