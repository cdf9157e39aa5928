"""AWS errors → the lake's errors (lake.aws.errors): botocore's are translated, nothing else is."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError

from lake import cli
from lake.aws.errors import explain, translate
from lake.errors import NotFoundError, TerminalError, TransientError


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "Operation")


@pytest.mark.parametrize(("exc", "expected"), [
    (client_error("NoSuchKey", 404), NotFoundError),
    (client_error("EntityNotFoundException"), NotFoundError),
    (client_error("SlowDown", 503), TransientError),
    (client_error("ThrottlingException"), TransientError),
    (client_error("SomethingNew", 500), TransientError),  # any 5xx
    (client_error("AccessDenied", 403), TerminalError),
    (client_error("ValidationException"), TerminalError),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TransientError),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), TransientError),
])
def test_aws_errors_are_translated(exc: Exception, expected: type[Exception]) -> None:
    assert type(translate(exc, "S3 bucket", "b")) is expected


@pytest.mark.parametrize("bug", [TypeError("x"), KeyError("k"), ValueError("v"), TerminalError("already ours")])
def test_anything_else_comes_back_unchanged(bug: Exception) -> None:
    assert translate(bug, "S3 bucket", "b") is bug


def test_missing_credentials_are_explained(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert "--endpoint-url" in explain(NoCredentialsError())
    assert explain(client_error("AccessDenied")) == str(client_error("AccessDenied"))

    def no_credentials(*_: object, **__: object) -> None:
        raise NoCredentialsError()

    monkeypatch.setattr(cli, "settings_from_args", no_credentials)
    assert cli.main(["query", "SELECT 1"]) == 2
    assert "lake query: error: no AWS credentials found" in capsys.readouterr().err
