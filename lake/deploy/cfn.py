"""CloudFormation intrinsics as plain dicts (long form, so the template is plain YAML/JSON)."""

from __future__ import annotations

import re
from typing import Any

from lake.curate.names import base_name

Node = Any


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def att(resource: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str, **values: Node) -> dict[str, Any]:
    return {"Fn::Sub": [text, values] if values else text}


def if_(condition: str, then: Node, otherwise: Node) -> dict[str, list[Node]]:
    return {"Fn::If": [condition, then, otherwise]}


NO_VALUE = ref("AWS::NoValue")


def pascal(text: str) -> str:
    """A CloudFormation logical id part from any table name (``orders`` → ``Orders``)."""
    stem = base_name(text)
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", stem) if p)
