"""The QuickSight adapter: requests checked against botocore's service model, and sent.

botocore's validator checks types, required members, lengths and unions, but not enum values
(QuickSight would refuse ``"Orientation": "SIDEWAYS"`` only on AWS): :func:`problems` checks
those too, walking the operation's input shape. The embedded AWS implements only part of
QuickSight (data sources, ``create_data_set``, dashboards' create and describe), so the rest is
known to be right only from the model.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import OperationModel, OperationNotFoundError, ServiceModel, Shape
from botocore.validate import ParamValidator

from lake.aws.errors import AWS_ERRORS, error_code, translate
from lake.errors import ConfigError


@functools.cache
def service_model() -> ServiceModel:
    """QuickSight's model as the installed botocore knows it (no credentials, no network)."""
    return botocore.session.get_session().get_service_model("quicksight")


def operation_model(operation: str) -> OperationModel:
    try:
        return service_model().operation_model(operation)
    except OperationNotFoundError as e:
        raise ConfigError(f"QuickSight has no operation {operation!r}") from e


def problems(operation: str, params: Mapping[str, Any]) -> list[str]:
    """Everything wrong with ``params`` for ``operation``: botocore's report, then bad enum values."""
    shape = operation_model(operation).input_shape
    report = ParamValidator().validate(dict(params), shape)
    found = [line.strip() for line in report.generate_report().splitlines() if line.strip()] if report.has_errors() \
        else []
    if found and found[0].startswith("Parameter validation failed"):
        found = found[1:]
    return found + enum_problems(params, shape, "")


def enum_problems(value: Any, shape: Shape | None, path: str) -> list[str]:
    """Values of enum-typed strings that are not in the enum, with their path in the request."""
    if shape is None:
        return []
    out: list[str] = []
    if shape.type_name == "structure" and isinstance(value, Mapping):
        for name, member in shape.members.items():  # type: ignore[attr-defined]
            if name in value:
                out += enum_problems(value[name], member, f"{path}.{name}" if path else name)
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            out += enum_problems(item, shape.member, f"{path}[{i}]")  # type: ignore[attr-defined]
    elif shape.type_name == "map" and isinstance(value, Mapping):
        for k, item in value.items():
            out += enum_problems(k, shape.key, f"{path} key {k!r}")  # type: ignore[attr-defined]
            out += enum_problems(item, shape.value, f"{path}[{k!r}]")  # type: ignore[attr-defined]
    elif shape.type_name == "string" and shape.enum and isinstance(value, str) and value not in shape.enum:
        out.append(f"Invalid value for {path}: {value!r}, valid values: {', '.join(shape.enum)}")
    return out


def validate(operation: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` listing every problem of the request."""
    found = problems(operation, params)
    if found:
        raise ConfigError(f"QuickSight {operation}: " + "; ".join(found))


def method_name(operation: str) -> str:
    return str(botocore.xform_name(operation))


class QuickSight:
    """QuickSight calls on a client (``Clients.quicksight``), each validated before it is sent."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        validate(operation, params)
        try:
            result: dict[str, Any] = getattr(self.client, method_name(operation))(**params)
        except AWS_ERRORS as e:
            raise translate(e, f"QuickSight {operation}", _asset_id(params)) from e
        return result

    def exists(self, operation: str, params: Mapping[str, Any]) -> bool:
        """Whether the asset a describe names exists (its describe answers)."""
        validate(operation, params)
        try:
            getattr(self.client, method_name(operation))(**params)
        except AWS_ERRORS as e:
            if error_code(e) in ("ResourceNotFoundException", "NotFoundException"):
                return False
            raise translate(e, f"QuickSight {operation}", _asset_id(params)) from e
        return True


def account_id(sts: Any) -> str:
    """The account the credentials belong to (QuickSight names it in every call)."""
    try:
        return str(sts.get_caller_identity()["Account"])
    except AWS_ERRORS as e:
        raise translate(e, "STS caller identity") from e


def _asset_id(params: Mapping[str, Any]) -> str:
    for key in ("DashboardId", "AnalysisId", "DataSetId", "DataSourceId"):
        if key in params:
            return str(params[key])
    return ""
