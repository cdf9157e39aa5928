"""Validating the template: cfn-lint (errors and warnings), the SAM transform expanded by
``samtranslator`` offline, and the least-privilege rules of our IAM statements.

cfn-lint validates the SAM template against SAM's own schemas; linting the expanded template
as well checks what CloudFormation will really be given (the functions as
``AWS::Lambda::Function``). samtranslator asks IAM for managed-policy ARNs only when a
function names a managed policy; ours name none (every role is explicit), so a static,
empty map stands in for IAM and nothing is called.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lake.errors import ConfigError


class StaticPolicyLoader:
    """samtranslator's managed-policy loader without IAM: policy name → ARN from a fixed map."""

    def __init__(self, policies: Mapping[str, str] | None = None) -> None:
        self.policies = dict(policies or {})

    def load(self) -> dict[str, str]:
        return dict(self.policies)


@dataclass(frozen=True)
class _Region:
    """What samtranslator reads of a boto3 session: the region (no credentials, no calls)."""

    region_name: str


def expand_sam(template: Mapping[str, Any], parameters: Mapping[str, Any] | None = None,
               region: str = "us-east-1") -> dict[str, Any]:
    """The template with the SAM transform applied (plain CloudFormation), as CloudFormation would."""
    try:
        from samtranslator.model.exceptions import InvalidDocumentException
        from samtranslator.parser.parser import Parser
        from samtranslator.translator.translator import Translator
    except ImportError as e:  # pragma: no cover - a dev dependency
        raise ConfigError("expanding the SAM transform needs aws-sam-translator (pip install aws-sam-translator)"
                          ) from e
    loader = StaticPolicyLoader()
    translator = Translator(None, Parser(), boto_session=_Region(region))  # type: ignore[arg-type]
    try:
        return dict(translator.translate(copy.deepcopy(dict(template)), parameter_values=dict(parameters or {}),
                                         get_managed_policy_map=loader.load))
    except InvalidDocumentException as e:
        raise ConfigError("the SAM transform refused the template: " + "; ".join(
            str(c) for c in e.causes)) from e


@dataclass(frozen=True)
class Finding:
    rule: str
    level: str
    message: str
    where: str

    def __str__(self) -> str:
        return f"{self.level} {self.rule} {self.where}: {self.message}"


def lint(template: Mapping[str, Any], regions: tuple[str, ...] = ("us-east-1",)) -> list[Finding]:
    """cfn-lint's errors and warnings (informational findings are left out)."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    matches = cfn_lint(json.dumps(template), config=ManualArgs(regions=list(regions)))
    out = []
    for m in matches:
        level = getattr(m.rule, "severity", "error").lower()
        if m.rule.id.startswith("I") or level == "informational":
            continue
        out.append(Finding(m.rule.id, level, m.message, f"{m.path_string if hasattr(m, 'path_string') else ''}"))
    return out


# -- least privilege ----------------------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(node: Any) -> str:
    """A resource expression as text (``Fn::Sub``'s text, ``Fn::GetAtt``'s name, …)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "Fn::Sub" in node:
        sub = node["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    return json.dumps(node, sort_keys=True)


def _branches(statement: Any) -> list[dict[str, Any]]:
    """A statement, or both branches of a conditional one (``Fn::If``; ``AWS::NoValue`` dropped)."""
    if isinstance(statement, dict) and "Fn::If" in statement:
        return [b for branch in statement["Fn::If"][1:] for b in _branches(branch)]
    if isinstance(statement, dict) and statement.get("Ref") == "AWS::NoValue":
        return []
    return [statement]


def role_statements(template: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (role, statement) of the template's IAM roles and policies."""
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for st in _as_list(policy["PolicyDocument"]["Statement"]):
                    for branch in _branches(st):
                        yield name, branch
            if props.get("ManagedPolicyArns"):
                yield name, {"Effect": "Allow", "Action": ["<managed policies>"],
                             "Resource": props["ManagedPolicyArns"]}
        elif res.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for st in _as_list(props["PolicyDocument"]["Statement"]):
                yield name, st


def too_broad(resource: str) -> bool:
    """A resource that is ``*``, has a wildcard in its service, region or account, or whose
    wildcard stands within its first two path segments (a whole bucket, every stream)."""
    if resource.strip() == "*":
        return True
    path = resource
    if resource.startswith("arn:"):
        fields = resource.split(":", 5)
        if any("*" in f for f in fields[:5]) or len(fields) < 6:
            return True
        path = fields[5]
    return any("*" in segment for segment in path.split("/")[:2])


def privilege_problems(template: Mapping[str, Any]) -> list[str]:
    """What breaks least privilege: a wildcard action, a too broad resource outside logs
    (:func:`too_broad`), ``NotAction``/``NotResource``, a managed policy."""
    problems = []
    for role, st in role_statements(template):
        sid = st.get("Sid", "?")
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"{role}: NotAction/NotResource in {sid}")
        actions = [str(a) for a in _as_list(st.get("Action", []))]
        problems += [f"{role}: action {a} ({sid})" for a in actions if "*" in a or a == "<managed policies>"]
        if all(a.startswith("logs:") for a in actions):
            continue
        problems += [f"{role}: resource {_text(r)} ({sid})" for r in _as_list(st.get("Resource", []))
                     if too_broad(_text(r))]
    return problems


def check(template: dict[str, Any], region: str, *, validate: bool, expanded: bool,
          what: str = "template") -> tuple[dict[str, Any], int]:
    """What ``lake template`` (the lake's or an app's) does before writing: cfn-lint on the SAM and the
    expanded template and the least-privilege check when ``validate`` (each problem on stderr), the
    expanded template instead of the SAM one when ``expanded``. Returns (template, exit status)."""
    import sys

    if not (validate or expanded):
        return template, 0
    status = 0
    full = expand_sam(template, region=region)
    if validate:
        problems = [f"template: {f}" for f in lint(template)] + [f"expanded: {f}" for f in lint(full)]
        problems += [f"least privilege: {p}" for p in privilege_problems(full)]
        for p in problems:
            print(p, file=sys.stderr)
        status = 1 if problems else 0
        if not problems:
            print(f"{what} valid: {len(full['Resources'])} resources, cfn-lint clean, least privilege holds",
                  file=sys.stderr)
    return (full if expanded else template), status


def write_text(output: str, text: str) -> None:
    """``text`` to the file ``output``, or to stdout for ``-``."""
    import sys
    from pathlib import Path

    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text)
