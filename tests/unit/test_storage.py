"""The storage door (lake.aws.storage): one contract for S3, memory and files; only AWS errors
are translated. S3 answers come from botocore's Stubber (the real client validates and
parses them; nothing leaves the process)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lake.aws.errors import translate
from lake.aws.storage import LocalObjectStore, MemoryObjectStore, ObjectStore, S3ObjectStore
from lake.errors import LakeError, NotFoundError, TerminalError, TransientError

BUCKET = "lake-bucket"


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


# -- errors: translated when they are AWS's, propagated when they are ours ------------

def test_no_such_key_is_not_found(s3: tuple[Any, Stubber]) -> None:
    client, stub = s3
    stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
    with pytest.raises(NotFoundError, match=re.escape("s3://lake-bucket/raw/x.json.gz")):
        S3ObjectStore(client, BUCKET).get("raw/x.json.gz")


def test_no_such_bucket_names_the_bucket(s3: tuple[Any, Stubber]) -> None:
    client, stub = s3
    stub.add_client_error("put_object", service_error_code="NoSuchBucket", http_status_code=404)
    with pytest.raises(NotFoundError) as info:
        S3ObjectStore(client, BUCKET).put("k", b"x")
    assert (info.value.kind, info.value.name) == ("S3 bucket", BUCKET)


@pytest.mark.parametrize(("code", "status"), [("SlowDown", 503), ("InternalError", 500), ("Whatever", 502)])
def test_throttling_and_5xx_are_transient(s3: tuple[Any, Stubber], code: str, status: int) -> None:
    client, stub = s3
    stub.add_client_error("put_object", service_error_code=code, http_status_code=status)
    with pytest.raises(TransientError, match=code):
        S3ObjectStore(client, BUCKET).put("k", b"x")


def test_access_denied_is_terminal(s3: tuple[Any, Stubber]) -> None:
    client, stub = s3
    stub.add_client_error("list_objects_v2", service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(TerminalError, match="AccessDenied"):
        list(S3ObjectStore(client, BUCKET).list("raw/"))


def test_head_of_a_missing_object_is_not_found(s3: tuple[Any, Stubber]) -> None:
    client, stub = s3
    stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
    with pytest.raises(NotFoundError):
        S3ObjectStore(client, BUCKET).head("gone")


def test_a_connection_failure_is_transient() -> None:
    class Unreachable:
        def get_object(self, **_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    with pytest.raises(TransientError):
        S3ObjectStore(Unreachable(), BUCKET).get("k")


class Buggy:
    """An S3 client whose calls fail with a programming error, not an AWS one."""

    def get_object(self, **_: Any) -> Any:
        raise TypeError("get_object() got an unexpected keyword argument 'Bukcet'")

    def put_object(self, **_: Any) -> Any:
        return {}["ETag"]  # KeyError

    def get_paginator(self, name: str) -> Any:
        raise AttributeError(name)


def test_a_bug_inside_the_sdk_call_propagates_unchanged() -> None:
    store = S3ObjectStore(Buggy(), BUCKET)
    with pytest.raises(TypeError, match="Bukcet") as info:
        store.get("k")
    assert not isinstance(info.value, LakeError) and info.value.__cause__ is None
    with pytest.raises(KeyError):
        store.put("k", b"x")
    with pytest.raises(AttributeError):
        list(store.list("raw/"))


def test_translate_returns_anything_but_an_aws_error_unchanged() -> None:
    bug = TypeError("not an AWS error")
    assert translate(bug, "S3 bucket", BUCKET) is bug


# -- the S3 calls themselves ---------------------------------------------------------

def test_s3_requests(s3: tuple[Any, Stubber]) -> None:
    client, stub = s3
    stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": "raw/a", "Body": b"abc",
                                         "ContentType": "application/gzip", "Metadata": {"record-count": "2"}})
    stub.add_response("get_object", {"Body": _body(b"abc")}, {"Bucket": BUCKET, "Key": "raw/a"})
    stub.add_response("head_object", {"ContentLength": 3, "Metadata": {"record-count": "2"}},
                      {"Bucket": BUCKET, "Key": "raw/a"})
    stub.add_response("list_objects_v2", {"Contents": [{"Key": "raw/a", "Size": 3}], "IsTruncated": False},
                      {"Bucket": BUCKET, "Prefix": "raw/"})
    stub.add_response("list_objects_v2", {"CommonPrefixes": [{"Prefix": "raw/table=a/"}], "IsTruncated": False},
                      {"Bucket": BUCKET, "Prefix": "raw/", "Delimiter": "/"})
    stub.add_response("delete_objects", {}, {"Bucket": BUCKET,
                                             "Delete": {"Objects": [{"Key": "raw/a"}], "Quiet": True}})
    store = S3ObjectStore(client, BUCKET)
    store.put("raw/a", b"abc", content_type="application/gzip", metadata={"record-count": "2"})
    assert store.get("raw/a") == b"abc"
    assert store.head("raw/a").metadata == {"record-count": "2"}
    assert [(o.key, o.size) for o in store.list_info("raw/")] == [("raw/a", 3)]
    assert list(store.list("raw/", delimiter="/")) == ["raw/table=a/"]
    store.delete(["raw/a"])


def test_a_refused_delete_is_an_error(s3: tuple[Any, Stubber]) -> None:
    client, stub = s3
    stub.add_response("delete_objects", {"Errors": [{"Key": "k", "Code": "AccessDenied", "Message": "no"}]})
    with pytest.raises(TerminalError, match="AccessDenied"):
        S3ObjectStore(client, BUCKET).delete(["k"])


def test_for_bucket_keeps_the_client(s3: tuple[Any, Stubber]) -> None:
    client, _ = s3
    store = S3ObjectStore(client, BUCKET)
    other = store.for_bucket("claims")
    assert (other.s3, other.bucket) == (client, "claims") and store.for_bucket(BUCKET) is store


# -- the same contract without AWS -----------------------------------------------------

@pytest.fixture(params=["memory", "files"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "memory":
        return MemoryObjectStore(bucket=BUCKET)
    return LocalObjectStore(tmp_path / BUCKET, bucket=BUCKET)


def test_store_contract(store: ObjectStore) -> None:
    keys = ["raw/table=b/dt=1/x", "raw/table=a/dt=1/y", "raw/table=a/dt=2/z", "quarantine/q"]
    for i, key in enumerate(keys):
        store.put(key, b"x" * (i + 1), content_type="application/json", metadata={"n": str(i)})
    assert list(store.list("raw/")) == sorted(keys[:3])
    assert list(store.list("raw/", delimiter="/")) == ["raw/table=a/", "raw/table=b/"]
    assert list(store.list("raw/table=a/", delimiter="/")) == ["raw/table=a/dt=1/", "raw/table=a/dt=2/"]
    assert list(store.list("nothing/")) == []
    assert [(o.key, o.size) for o in store.list_info("raw/table=a/")] == [(keys[1], 2), (keys[2], 3)]
    assert store.get(keys[3]) == b"xxxx" and store.head(keys[3]).size == 4
    store.put(keys[3], b"new")
    assert store.get(keys[3]) == b"new"
    store.delete([keys[0], "never-existed"])
    assert list(store.list("raw/table=b/")) == []
    with pytest.raises(NotFoundError):
        store.get(keys[0])
    with pytest.raises(NotFoundError):
        store.head(keys[0])


def test_memory_store_keeps_metadata_and_sibling_buckets() -> None:
    store = MemoryObjectStore(bucket=BUCKET)
    store.put("k", b"v", metadata={"record-count": "3"})
    assert store.head("k").metadata == {"record-count": "3"}
    claims = store.for_bucket("claims")
    claims.put("c", b"claim")
    assert store.for_bucket("claims").get("c") == b"claim" and claims.for_bucket(BUCKET) is store
    assert list(store.list("")) == ["k"]
