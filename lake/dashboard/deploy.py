"""``lake dashboard deploy``: the QuickSight assets, described, then created or updated.

Idempotent: an asset that exists is updated (and its permissions granted again), one that does
not is created; an updated dashboard's new version is published. Every request is validated
against botocore's model (and its enum values) before it is sent, or printed by the dry run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lake.aws.clients import Clients
from lake.aws.quicksight import QuickSight, account_id, validate
from lake.dashboard.quicksight import PUBLISH, Asset, Request, all_requests, plan, publish
from lake.errors import ConfigError
from lake.settings import Settings


@dataclass
class DeployReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    sent: list[Request] = field(default_factory=list)
    dashboard_arn: str | None = None


def account_of(principal: str) -> str | None:
    """The account id in a QuickSight principal ARN (``arn:aws:quicksight:<region>:<account>:user/...``)."""
    parts = principal.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4].isdigit() else None


def resolve_principal(settings: Settings, principal: str | None) -> str:
    value = principal or settings.quicksight_principal
    if not value:
        raise ConfigError("no QuickSight principal: pass --principal ARN or set quicksight_principal "
                          "(LAKE_QUICKSIGHT_PRINCIPAL), e.g. arn:aws:quicksight:us-east-1:123456789012:user/default/me")
    if not value.startswith("arn:"):
        raise ConfigError(f"QuickSight principal {value!r} is not an ARN")
    return value


def dry_run(settings: Settings, principal: str, account: str | None = None) -> list[Request]:
    """The requests a first deploy sends, validated; no AWS call is made."""
    account = account or account_of(principal) or "123456789012"
    requests = all_requests(plan(settings, account, principal))
    for r in requests:
        validate(r.operation, r.params)
    return requests


def deploy(settings: Settings, principal: str, clients: Clients | None = None, account: str | None = None,
           quicksight: QuickSight | None = None) -> DeployReport:
    """Create or update every asset, in dependency order."""
    clients = clients or Clients(settings)
    account = account or account_id(clients.sts)
    qs = quicksight or QuickSight(clients.quicksight)
    report = DeployReport()
    for asset in plan(settings, account, principal):
        _apply(qs, asset, report)
    return report


def _send(qs: QuickSight, request: Request, report: DeployReport) -> dict[str, Any]:
    report.sent.append(request)
    return qs.call(request.operation, request.params)


def _apply(qs: QuickSight, asset: Asset, report: DeployReport) -> None:
    if not qs.exists(asset.describe.operation, asset.describe.params):
        answer = _send(qs, asset.create, report)
        report.created.append(asset.id)
    else:
        answer = _send(qs, asset.update, report)
        _send(qs, asset.grant, report)
        report.updated.append(asset.id)
        if asset.kind == "dashboard":
            _send(qs, publish(str(asset.create.params["AwsAccountId"]), asset.id, answer["VersionArn"]), report)
    if asset.kind == "dashboard":
        report.dashboard_arn = answer.get("Arn")


__all__ = ["PUBLISH", "DeployReport", "deploy", "dry_run", "resolve_principal"]
