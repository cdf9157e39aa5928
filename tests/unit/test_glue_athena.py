"""The Athena statements of `compact` and `current_state --engine athena` (docs/adr/0004):
Athena (Trino) SQL that parses, quotes its names and orders an item's changes as
lake.glue.state does."""

from __future__ import annotations

from sqlglot import exp

from lake.glue.athena import compact_statements, create_current, merge_current
from lake.query import dialect
from lake.settings import Settings

S = Settings(glue_database="dynamodb_lake")
COLUMNS = ["event_id", "event_name", "event_time", "sequence_number", "shard_id", "key", "is_ttl_delete", "status"]


def test_compaction_sets_the_window_then_optimizes_and_vacuums() -> None:
    alter, optimize, vacuum = compact_statements(S, "orders_history", 128 * 1024 * 1024, 7 * 86_400)
    assert "'write_target_data_file_size_bytes'='134217728'" in alter
    assert "'vacuum_max_snapshot_age_seconds'='604800'" in alter
    assert optimize == 'OPTIMIZE "dynamodb_lake"."orders_history" REWRITE DATA USING BIN_PACK'
    assert vacuum == 'VACUUM "dynamodb_lake"."orders_history"'


def test_current_state_sql_parses_and_orders_by_time_then_sequence() -> None:
    merge = merge_current(S, "orders_history", "orders_current", COLUMNS)
    (parsed,) = dialect.parse(merge)
    assert isinstance(parsed, exp.Merge)
    assert "ORDER BY event_time DESC, sequence_number DESC, event_id DESC" in merge
    assert "WHEN MATCHED AND s.event_name = 'REMOVE' THEN DELETE" in merge
    assert "WHEN NOT MATCHED AND s.event_name <> 'REMOVE' THEN INSERT" in merge
    assert '"key" = s."key"' not in merge.split("UPDATE SET", 1)[1]  # the key is not updated

    create = create_current(S, "orders_history", "orders_current_at_x", COLUMNS, "s3://b/curated/x",
                            as_of_us=1_704_067_200_000_000)
    (parsed,) = dialect.parse(create)
    assert isinstance(parsed, exp.Create)
    assert "WHERE event_time <= TIMESTAMP '2024-01-01 00:00:00.000000'" in create
    assert "table_type = 'ICEBERG'" in create and "WHERE event_name <> 'REMOVE'" in create
