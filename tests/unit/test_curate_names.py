import re

import pytest

from lake.curate.names import base_name, current_table, digest, history_table

S3_TABLES_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_]{0,253}[a-z0-9])?$")


def test_plain_names_are_kept() -> None:
    assert history_table("orders") == "orders_history"
    assert current_table("user_events_2") == "user_events_2_current"


@pytest.mark.parametrize("pair", [("Orders", "orders"), ("foo.bar", "foo_bar"), ("foo-bar", "foo_bar"),
                                  ("ORDERS", "Orders"), ("a.b", "a-b")])
def test_names_that_meet_once_made_safe_stay_apart(pair: tuple[str, str]) -> None:
    a, b = pair
    assert history_table(a) != history_table(b)


def test_a_plain_name_shaped_like_a_digested_one_is_digested_too() -> None:
    # "orders_<digest of Orders>" written plainly must not take Orders' table
    lookalike = f"orders_{digest('Orders')}"
    assert base_name("Orders") == lookalike
    assert base_name(lookalike) != lookalike
    assert base_name(lookalike) != base_name("Orders")


@pytest.mark.parametrize("name", ["Orders", "foo.bar", "_private", "-x-", "a" * 255, "...", "Ω-table", "123"])
def test_every_name_is_valid_for_glue_athena_and_s3_tables(name: str) -> None:
    for table in (history_table(name), current_table(name)):
        assert S3_TABLES_NAME.match(table), table
        assert len(table) <= 255


def test_names_are_deterministic() -> None:
    assert history_table("Foo.Bar") == history_table("Foo.Bar") == f"foo_bar_{digest('Foo.Bar')}_history"
