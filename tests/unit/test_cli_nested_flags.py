"""Flags given before a nested subcommand survive it (`lake dashboard --region X deploy`)."""

from __future__ import annotations

import pytest

from lake.cli import build_parser


@pytest.mark.parametrize("argv", [
    ["dashboard", "--region", "eu-west-1", "--bucket", "b", "deploy", "--dry-run"],
    ["dashboard", "deploy", "--region", "eu-west-1", "--bucket", "b"],
    ["dashboard", "--region", "ap-south-1", "deploy", "--region", "eu-west-1", "--bucket", "b"],
])
def test_the_where_flags_reach_dashboard_deploy_wherever_they_are_given(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.region, args.bucket, args.func.__name__) == ("eu-west-1", "b", "run_deploy")


def test_the_page_keeps_its_flags_and_verbosity_counts_at_either_level() -> None:
    parser = build_parser()
    page = parser.parse_args(["dashboard", "--region", "eu-west-1", "-v"])
    assert (page.region, page.verbose, page.func.__name__) == ("eu-west-1", 1, "run_page")
    assert parser.parse_args(["dashboard", "deploy", "-vv"]).verbose == 2
    assert parser.parse_args(["dashboard", "-v", "deploy"]).verbose == 1
