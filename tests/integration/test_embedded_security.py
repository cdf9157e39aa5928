"""The embedded AWS is closed to other origins: loopback only, no CORS, no foreign web pages,
and moto's management endpoints only for the lake itself (issue 11)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from lake.aws.clients import Clients
from lake.aws.provision import provision
from lake.local.embedded import ADMIN_TOKEN_HEADER, EmbeddedAWS
from lake.settings import Settings

EVIL = "http://evil.example"
# moto routes by the credential scope of the (unchecked) signature; a browser cannot sign, but the
# origin checks must not depend on which service a request reaches.
AUTH = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=00"}
LIST_TABLES = {**AUTH, "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"}
PUT_ITEM = {**AUTH, "X-Amz-Target": "DynamoDB_20120810.PutItem", "Content-Type": "text/plain"}


@contextmanager
def _conn(aws: EmbeddedAWS) -> Iterator[http.client.HTTPConnection]:
    u = urlsplit(aws.endpoint_url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def request(aws: EmbeddedAWS, method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    with _conn(aws) as conn:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def cors_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("access-control-")}


def table_names(clients: Clients) -> list[str]:
    return list(clients.dynamodb.list_tables()["TableNames"])


def test_binds_loopback_only(embedded_aws: EmbeddedAWS) -> None:
    assert embedded_aws.host == "127.0.0.1"
    assert embedded_aws.server_address()[0] == "127.0.0.1"
    for host in ("0.0.0.0", "", "::", "192.0.2.1"):
        with pytest.raises(ValueError, match="loopback"):
            EmbeddedAWS(port=0, host=host)


def test_no_cors_headers_for_a_foreign_origin(settings: Settings, embedded_aws: EmbeddedAWS) -> None:
    status, headers, _ = request(embedded_aws, "GET", "/", {"Origin": EVIL})
    assert cors_headers(headers) == {}
    assert status == 403


def test_preflight_from_a_foreign_origin_is_refused(settings: Settings, embedded_aws: EmbeddedAWS) -> None:
    status, headers, _ = request(embedded_aws, "OPTIONS", "/", {
        "Origin": EVIL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-amz-target,content-type"})
    assert status == 403
    assert cors_headers(headers) == {}


def test_loopback_origin_is_served_without_cors_headers(settings: Settings, embedded_aws: EmbeddedAWS) -> None:
    status, headers, body = request(embedded_aws, "POST", "/", {**LIST_TABLES, "Origin": "http://localhost:3000"},
                                    b"{}")
    assert status == 200, body
    assert "TableNames" in json.loads(body)
    assert cors_headers(headers) == {}


def test_cross_origin_post_is_refused(settings: Settings, clients: Clients, embedded_aws: EmbeddedAWS) -> None:
    provision(settings, clients)
    item = json.dumps({"TableName": "orders", "Item": {"pk": {"S": "evil"}, "sk": {"S": "1"}}}).encode()
    for origin in (EVIL, "null", "http://127.0.0.1.evil.example"):
        status, headers, _ = request(embedded_aws, "POST", "/", {**PUT_ITEM, "Origin": origin}, item)
        assert status == 403, origin
        assert cors_headers(headers) == {}
    assert clients.dynamodb.scan(TableName="orders")["Items"] == []


def test_foreign_host_header_is_refused(settings: Settings, embedded_aws: EmbeddedAWS) -> None:
    """A page on a rebound DNS name (evil.example → 127.0.0.1) is same-origin to itself: refuse its Host."""
    status, _, _ = request(embedded_aws, "POST", "/", {**LIST_TABLES, "Host": f"evil.example:{embedded_aws.port}"},
                           b"{}")
    assert status == 403
    status, _, _ = request(embedded_aws, "POST", "/", {**LIST_TABLES, "Host": f"localhost:{embedded_aws.port}"},
                           b"{}")
    assert status == 200


def test_management_endpoints_need_the_lakes_token(settings: Settings, clients: Clients,
                                                   embedded_aws: EmbeddedAWS) -> None:
    provision(settings, clients)
    assert "orders" in table_names(clients)
    for method, path in (("POST", "/moto-api/reset"), ("GET", "/moto-api/data.json"), ("GET", "/moto-api/"),
                         ("POST", "/moto-api/reset-auth")):
        status, _, _ = request(embedded_aws, method, path)
        assert status == 403, path
        status, _, _ = request(embedded_aws, method, path, {ADMIN_TOKEN_HEADER: "guess"})
        assert status == 403, path
    assert "orders" in table_names(clients)  # nothing was wiped
    status, _, _ = request(embedded_aws, "GET", "/moto-api/data.json", {ADMIN_TOKEN_HEADER: embedded_aws.admin_token})
    assert status == 200
    embedded_aws.reset()
    assert table_names(clients) == []


def test_each_instance_has_its_own_token() -> None:
    a, b = EmbeddedAWS(port=0), EmbeddedAWS(port=0)
    assert a.admin_token != b.admin_token and len(a.admin_token) >= 32


def test_sdk_clients_still_work(settings: Settings, clients: Clients) -> None:
    """boto3 (every other test) and pyarrow's S3 client send no Origin and keep working."""
    import pyarrow.fs as pafs

    provision(settings, clients)
    u = urlsplit(settings.endpoint_url or "")
    fs = pafs.S3FileSystem(access_key="testing", secret_key="testing", region=settings.region,
                           endpoint_override=u.netloc, scheme="http")
    path = f"{settings.bucket}/probe/hello.txt"
    with fs.open_output_stream(path) as f:
        f.write(b"hello")
    with fs.open_input_stream(path) as f:
        assert f.read() == b"hello"
    assert clients.s3.get_object(Bucket=settings.bucket, Key="probe/hello.txt")["Body"].read() == b"hello"
