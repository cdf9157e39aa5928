"""CloudFormation for ``lake deploy``: a change set, its changes, executing it, waiting, outputs.

Errors are botocore's translated at this door (``lake.aws.errors``); a change set that
changes nothing is not an error but an empty list of changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from lake.aws.clients import AWS_ERRORS, Clients, error_code, translate
from lake.errors import TerminalError

#: CloudFormation takes a template body up to this size; above it the template goes through S3.
MAX_TEMPLATE_BODY = 51_200
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""

    def __str__(self) -> str:
        tail = f" (replacement: {self.replacement})" if self.replacement and self.replacement != "False" else ""
        return f"{self.action:<7} {self.logical_id:<40} {self.resource_type}{tail}"


@dataclass
class ChangeSet:
    stack: str
    name: str
    kind: str  # CREATE | UPDATE
    id: str = ""
    stack_id: str = ""
    changes: list[Change] = field(default_factory=list)
    status_reason: str = ""

    @property
    def empty(self) -> bool:
        return not self.changes


class Stacks:
    """CloudFormation calls for one stack."""

    def __init__(self, clients: Clients, stack: str) -> None:
        self.cfn = clients.cloudformation
        self.clients = clients
        self.stack = stack

    def exists(self) -> bool:
        try:
            stacks = self.cfn.describe_stacks(StackName=self.stack)["Stacks"]
        except ClientError as e:
            if error_code(e) == "ValidationError" and "does not exist" in str(e):
                return False
            raise translate(e, "CloudFormation stack", self.stack) from e
        # a stack whose creation was rolled back (or never executed) can only be replaced by a new CREATE
        return bool(stacks) and stacks[0]["StackStatus"] not in ("REVIEW_IN_PROGRESS",)

    def create_change_set(self, template: Mapping[str, Any], parameters: Mapping[str, str], name: str,
                          template_url: str | None = None) -> ChangeSet:
        kind = "UPDATE" if self.exists() else "CREATE"
        body = json.dumps(template, separators=(",", ":"))
        source = {"TemplateURL": template_url} if template_url else {"TemplateBody": body}
        try:
            resp = self.cfn.create_change_set(
                StackName=self.stack, ChangeSetName=name, ChangeSetType=kind, Capabilities=CAPABILITIES,
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()], **source)
        except AWS_ERRORS as e:
            raise translate(e, "CloudFormation change set", name) from e
        cs = ChangeSet(self.stack, name, kind, resp["Id"], resp.get("StackId", ""))
        return self._described(cs)

    def _described(self, cs: ChangeSet, timeout_s: float = 600.0) -> ChangeSet:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                desc = self.cfn.describe_change_set(StackName=self.stack, ChangeSetName=cs.name)
            except AWS_ERRORS as e:
                raise translate(e, "CloudFormation change set", cs.name) from e
            status = desc.get("Status", "")
            if status in ("CREATE_COMPLETE", "FAILED") or time.monotonic() > deadline:
                break
            time.sleep(2)
        reason = desc.get("StatusReason", "") or ""
        if status == "FAILED" and not any(s in reason for s in _NO_CHANGES):
            raise TerminalError(f"change set {cs.name} failed: {reason}")
        cs.status_reason = reason
        cs.changes = [Change(c["ResourceChange"].get("Action", ""), c["ResourceChange"].get("LogicalResourceId", ""),
                             c["ResourceChange"].get("ResourceType", ""),
                             str(c["ResourceChange"].get("Replacement", "")))
                      for c in desc.get("Changes", []) if "ResourceChange" in c]
        return cs

    def delete_change_set(self, cs: ChangeSet) -> None:
        try:
            self.cfn.delete_change_set(StackName=self.stack, ChangeSetName=cs.name)
        except AWS_ERRORS as e:
            raise translate(e, "CloudFormation change set", cs.name) from e

    def discard(self, cs: ChangeSet) -> None:
        """Delete ``cs``; for a CREATE, also the empty stack in REVIEW_IN_PROGRESS it was made in
        (AWS leaves it behind; the next CREATE change set would then meet it)."""
        self.delete_change_set(cs)
        if cs.kind == "CREATE":
            try:
                self.cfn.delete_stack(StackName=cs.stack_id or self.stack)
            except AWS_ERRORS as e:
                raise translate(e, "CloudFormation stack", self.stack) from e

    def execute(self, cs: ChangeSet, timeout_s: float = 3600.0) -> None:
        """Execute ``cs`` and wait until the stack is complete (a rollback is an error)."""
        try:
            self.cfn.execute_change_set(StackName=self.stack, ChangeSetName=cs.name)
            waiter = self.cfn.get_waiter("stack_create_complete" if cs.kind == "CREATE"
                                         else "stack_update_complete")
            waiter.wait(StackName=self.stack, WaiterConfig={"Delay": 5, "MaxAttempts": int(timeout_s // 5)})
        except WaiterError as e:
            raise TerminalError(f"stack {self.stack} did not complete: {self.failure_reasons() or e}") from e
        except AWS_ERRORS as e:
            raise translate(e, "CloudFormation stack", self.stack) from e

    def failure_reasons(self, limit: int = 10) -> str:
        try:
            events = self.cfn.describe_stack_events(StackName=self.stack)["StackEvents"]
        except AWS_ERRORS:
            return ""  # the reason is a nicety on top of the failure being reported
        failed = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events
                  if str(e.get("ResourceStatus", "")).endswith("FAILED")]
        return "; ".join(failed[:limit])

    def outputs(self) -> dict[str, str]:
        try:
            stack = self.cfn.describe_stacks(StackName=self.stack)["Stacks"][0]
        except AWS_ERRORS as e:
            raise translate(e, "CloudFormation stack", self.stack) from e
        return {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}

    def resources(self) -> dict[str, tuple[str, str]]:
        """logical id → (type, physical id) of the stack's resources."""
        try:
            pages = self.cfn.get_paginator("list_stack_resources").paginate(StackName=self.stack)
            return {r["LogicalResourceId"]: (r["ResourceType"], r.get("PhysicalResourceId", ""))
                    for page in pages for r in page["StackResourceSummaries"]}
        except AWS_ERRORS as e:
            raise translate(e, "CloudFormation stack", self.stack) from e


def account_id(clients: Clients) -> str:
    try:
        return str(clients.sts.get_caller_identity()["Account"])
    except AWS_ERRORS as e:
        raise translate(e, "AWS account") from e


def template_url(bucket: str, key: str, region: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
