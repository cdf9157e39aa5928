"""The storage door: every get, put, list, head and delete of an object goes through here.

pyiceberg's FileIO rule: the stages never reach for the S3 SDK; they hold an
:class:`ObjectStore` of one bucket. :class:`S3ObjectStore` is the one implementation
that calls S3; :class:`MemoryObjectStore` (unit tests, benchmarks) and
:class:`LocalObjectStore` (files under a directory: a copied archive) keep the same
layout without AWS.

Errors: only botocore's are translated (``lake.aws.errors.translate``: not found,
transient, terminal); anything else raised inside the SDK call is a bug and propagates
unchanged. A missing key is :class:`lake.errors.NotFoundError` in every implementation.

Readers that scan Parquet datasets (the local query engine, ``lake demo``'s counts) get
pyarrow's S3 filesystem from :func:`s3_filesystem`, pointed at the same endpoint.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from lake.aws.errors import AWS_ERRORS, error_code, translate
from lake.errors import NotFoundError, TerminalError
from lake.settings import Settings

if TYPE_CHECKING:
    from pyarrow import fs as pafs

# DeleteObjects takes at most this many keys per call.
_DELETE_BATCH = 1000


@dataclass(frozen=True)
class ObjectInfo:
    """An object's key, size in bytes and user metadata (empty when a listing does not carry it)."""

    key: str
    size: int
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatedObject:
    """An object's key, size in bytes and last-modified time (epoch seconds)."""

    key: str
    size: int
    modified: float


class ObjectReader(Protocol):
    """What a reader of a zone needs (replay): list keys under a prefix, get an object's bytes."""

    def list(self, prefix: str, delimiter: str | None = None) -> Iterator[str]:
        """Keys under ``prefix`` in key order; with ``delimiter``, the common prefixes one level down."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; :class:`NotFoundError` if there is none."""
        ...


class ObjectStore(ObjectReader, Protocol):
    """The objects of one bucket: the whole door."""

    bucket: str

    def put(self, key: str, body: bytes, *, content_type: str | None = None,
            metadata: Mapping[str, str] | None = None) -> None:
        """Write (or overwrite) one object; metadata values must be ASCII (they travel as HTTP headers)."""
        ...

    def list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` with their sizes, in key order (no metadata: use :meth:`head`)."""
        ...

    def head(self, key: str) -> ObjectInfo:
        """One object's size and metadata without its body; :class:`NotFoundError` if there is none."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Delete objects; a key that does not exist is fine."""
        ...

    def for_bucket(self, bucket: str) -> ObjectStore:
        """The same kind of store on another bucket (a claim check names its own bucket)."""
        ...


class S3ObjectStore:
    """One S3 bucket, through an injected boto3 S3 client (see :class:`lake.aws.clients.Clients`)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def __repr__(self) -> str:
        return f"S3ObjectStore(s3://{self.bucket})"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def for_bucket(self, bucket: str) -> S3ObjectStore:
        return self if bucket == self.bucket else S3ObjectStore(self.s3, bucket)

    def _error(self, exc: ClientError | BotoCoreError, key: str) -> Exception:
        if error_code(exc) == "NoSuchBucket":
            return translate(exc, "S3 bucket", self.bucket)
        return translate(exc, "S3 object", self.url(key))

    def get(self, key: str) -> bytes:
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except AWS_ERRORS as e:
            raise self._error(e, key) from e

    def put(self, key: str, body: bytes, *, content_type: str | None = None,
            metadata: Mapping[str, str] | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
        if content_type:
            kwargs["ContentType"] = content_type
        if metadata:
            kwargs["Metadata"] = dict(metadata)
        try:
            self.s3.put_object(**kwargs)
        except AWS_ERRORS as e:
            raise self._error(e, key) from e

    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        try:
            yield from self.s3.get_paginator("list_objects_v2").paginate(**kwargs)
        except AWS_ERRORS as e:
            raise translate(e, "S3 bucket", self.bucket) from e

    def list(self, prefix: str, delimiter: str | None = None) -> Iterator[str]:
        for page in self._pages(prefix, delimiter):
            if delimiter:
                yield from (p["Prefix"] for p in page.get("CommonPrefixes", []))
            else:
                yield from (o["Key"] for o in page.get("Contents", []))

    def list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        for page in self._pages(prefix, None):
            yield from (ObjectInfo(o["Key"], int(o["Size"])) for o in page.get("Contents", []))

    def list_dated(self, prefix: str) -> Iterator[DatedObject]:
        """Keys under ``prefix`` with size and last-modified time (orphan removal's grace)."""
        for page in self._pages(prefix, None):
            yield from (DatedObject(o["Key"], int(o["Size"]), o["LastModified"].timestamp())
                        for o in page.get("Contents", []))

    def head(self, key: str) -> ObjectInfo:
        try:
            resp = self.s3.head_object(Bucket=self.bucket, Key=key)
        except AWS_ERRORS as e:
            if error_code(e) in ("404", "NotFound"):  # HEAD has no body, so no NoSuchKey code
                raise NotFoundError("S3 object", self.url(key)) from e
            raise self._error(e, key) from e
        return ObjectInfo(key, int(resp.get("ContentLength", 0)), dict(resp.get("Metadata") or {}))

    def delete(self, keys: Iterable[str]) -> None:
        batch: builtins.list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                self._delete(batch)
                batch = []
        if batch:
            self._delete(batch)

    def _delete(self, keys: builtins.list[str]) -> None:
        try:
            resp = self.s3.delete_objects(Bucket=self.bucket,
                                          Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
        except AWS_ERRORS as e:
            raise translate(e, "S3 bucket", self.bucket) from e
        for err in resp.get("Errors") or []:
            raise TerminalError(f"S3 object {self.url(err.get('Key', ''))}: delete refused: "
                                f"{err.get('Code')}: {err.get('Message', '')}")


class MemoryObjectStore:
    """A bucket as a dict of key → bytes (unit tests, benchmarks). ``objects`` may be edited directly."""

    def __init__(self, objects: Mapping[str, bytes] | None = None, bucket: str = "memory") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = dict(objects or {})
        self.metadata: dict[str, dict[str, str]] = {}
        self.content_types: dict[str, str] = {}
        # other buckets of the same "account", so a claim check's bucket resolves
        self._siblings: dict[str, MemoryObjectStore] = {bucket: self}

    def __repr__(self) -> str:
        return f"MemoryObjectStore({self.bucket!r}, {len(self.objects)} objects)"

    def for_bucket(self, bucket: str) -> MemoryObjectStore:
        if bucket not in self._siblings:
            other = MemoryObjectStore(bucket=bucket)
            other._siblings = self._siblings
            self._siblings[bucket] = other
        return self._siblings[bucket]

    def get(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise NotFoundError("object", f"{self.bucket}/{key}") from None

    def put(self, key: str, body: bytes, *, content_type: str | None = None,
            metadata: Mapping[str, str] | None = None) -> None:
        self.objects[key] = bytes(body)
        self.metadata[key] = dict(metadata or {})
        if content_type:
            self.content_types[key] = content_type

    def list(self, prefix: str, delimiter: str | None = None) -> Iterator[str]:
        keys = sorted(k for k in self.objects if k.startswith(prefix))
        if not delimiter:
            yield from keys
            return
        seen: builtins.list[str] = []
        for k in keys:
            head, sep, _ = k[len(prefix):].partition(delimiter)
            if sep and (not seen or seen[-1] != head):
                seen.append(head)
        yield from (f"{prefix}{h}{delimiter}" for h in seen)

    def list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        for key in self.list(prefix):
            yield ObjectInfo(key, len(self.objects[key]))

    def head(self, key: str) -> ObjectInfo:
        return ObjectInfo(key, len(self.get(key)), dict(self.metadata.get(key, {})))

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)
            self.metadata.pop(key, None)
            self.content_types.pop(key, None)


class LocalObjectStore:
    """A bucket as files under a directory (its root); metadata is not kept."""

    def __init__(self, root: str | Path, bucket: str = "local") -> None:
        self.root = Path(root)
        self.bucket = bucket

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    def for_bucket(self, bucket: str) -> LocalObjectStore:
        # sibling buckets as sibling directories
        return self if bucket == self.bucket else LocalObjectStore(self.root.parent / bucket, bucket)

    def _path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError("file", str(self._path(key))) from None

    def put(self, key: str, body: bytes, *, content_type: str | None = None,
            metadata: Mapping[str, str] | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def list(self, prefix: str, delimiter: str | None = None) -> Iterator[str]:
        # a prefix is a directory here ("raw/table=x/"), as the lake's zone prefixes are
        base = self.root / prefix
        if delimiter:
            if base.is_dir():
                yield from sorted(f"{prefix}{p.name}/" for p in base.iterdir() if p.is_dir())
            return
        if base.is_dir():
            yield from sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())

    def list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        for key in self.list(prefix):
            yield ObjectInfo(key, self._path(key).stat().st_size)

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if not path.is_file():
            raise NotFoundError("file", str(path))
        return ObjectInfo(key, path.stat().st_size)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)


def s3_filesystem(settings: Settings) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem for the lake: the settings' endpoint (the embedded AWS) when one is set."""
    # imported here: the archive and fan-out Lambdas never load pyarrow
    from pyarrow import fs as pafs

    kwargs: dict[str, Any] = {"region": settings.region}
    if settings.endpoint_url:
        url = urlparse(settings.endpoint_url)
        kwargs.update(endpoint_override=url.netloc, scheme=url.scheme or "http")
        if settings.is_local:
            kwargs.update(access_key="testing", secret_key="testing", allow_bucket_creation=False)
    return pafs.S3FileSystem(**kwargs)
