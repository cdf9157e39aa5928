"""``lake dashboard --out DIR``: the lake's dashboard as one HTML page (local engine, no network needed).
``lake dashboard deploy [--principal ARN] [--dry-run]``: the same dashboard in QuickSight, over Athena.

The visuals: change volume over time by table and event; the most changed attributes; deletions,
TTL vs user; current-state counts by a chosen attribute (--attribute); the recent audit trail; and
pipeline health (lag between the newest change and now, dead-letter depth, quarantined records,
files per partition). Their SQL is athena_queries/dashboard/.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lake.settings import Settings


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``lake dashboard`` and ``lake dashboard deploy``."""
    p = subparsers.add_parser("dashboard", parents=parents, help="the lake's dashboard: a local page, or QuickSight",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/dashboard", metavar="DIR",
                   help="write DIR/index.html (default ./out/dashboard)")
    p.add_argument("--attribute", help="current-state counts by this attribute (default: setting "
                   "dashboard_attribute, 'status')")
    p.set_defaults(func=run_page)
    from lake.cli import common_parser

    sub = p.add_subparsers(dest="dashboard_command", metavar="ACTION")
    d = sub.add_parser("deploy", parents=[common_parser(nested=True)],
                       help="create or update the QuickSight dashboard over Athena", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--principal", help="QuickSight user or group ARN granted the assets "
                   "(default: setting quicksight_principal)")
    d.add_argument("--account-id", help="AWS account id (default: the credentials'; dry run: the principal's)")
    d.add_argument("--attribute", help="current-state counts by this attribute")
    d.add_argument("--dry-run", action="store_true", help="print the validated requests; call nothing")
    d.set_defaults(func=run_deploy)
    return p


def _settings(args: argparse.Namespace, settings: Settings) -> Settings:
    return settings.replace(dashboard_attribute=args.attribute) if args.attribute else settings


def run_page(args: argparse.Namespace, settings: Settings) -> int:
    from lake.dashboard.page import write_dashboard

    path = write_dashboard(_settings(args, settings), args.out)
    print(path.resolve())
    return 0


def run_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from lake.dashboard.deploy import deploy, dry_run, resolve_principal

    settings = _settings(args, settings)
    principal = resolve_principal(settings, args.principal)
    if args.dry_run:
        for request in dry_run(settings, principal, args.account_id):
            print(json.dumps(request.to_json(), indent=2))
        print("dry run: every request above is valid for QuickSight's model (botocore) and its enums; "
              "a deploy describes each asset, then creates it or updates it and grants it again",
              file=sys.stderr)
        return 0
    report = deploy(settings, principal, account=args.account_id)
    print(f"created: {', '.join(report.created) or 'nothing'}")
    print(f"updated: {', '.join(report.updated) or 'nothing'}")
    if report.dashboard_arn:
        print(f"dashboard: {report.dashboard_arn}")
    return 0
