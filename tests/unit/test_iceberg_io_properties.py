"""What the Iceberg door hands pyiceberg's FileIO: credentials only where they cannot expire under it."""

from __future__ import annotations

import pytest

from lake.aws.catalog import IcebergTables
from lake.aws.clients import Clients
from lake.settings import Settings


@pytest.fixture(autouse=True)
def static_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_the_embedded_aws_gets_its_endpoint_and_the_sessions_credentials() -> None:
    s = Settings(endpoint_url="http://127.0.0.1:1234", region="eu-west-1")
    clients = Clients(s)
    props = IcebergTables(s, clients).io_properties()
    assert props["s3.endpoint"] == "http://127.0.0.1:1234" and props["s3.region"] == "eu-west-1"
    creds = clients.session.get_credentials().get_frozen_credentials()
    assert (props["s3.access-key-id"], props["s3.secret-access-key"]) == (creds.access_key, creds.secret_key)


def test_on_aws_without_a_profile_the_filesystem_finds_and_refreshes_the_roles_credentials() -> None:
    s = Settings(endpoint_url=None, region="eu-west-1")
    props = IcebergTables(s, Clients(s)).io_properties()
    assert props == {"s3.region": "eu-west-1"}
