"""Build boto3 clients from the one settings object, and hand out the doors built on them.

Every adapter takes a client (or this factory) and builds one only when given
none; nothing here connects at import time. The stages reach objects through
``Clients.store(bucket)`` (``lake.aws.storage``) and Glue through
``Clients.catalog(database)`` (``lake.aws.catalog``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

# Error translation lives in lake.aws.errors (no boto3 there); the names stay importable from here.
from lake.aws.errors import AWS_ERRORS, NOT_FOUND_CODES, TRANSIENT_CODES, error_code, explain, translate
from lake.aws.storage import S3ObjectStore
from lake.settings import Settings

if TYPE_CHECKING:
    from lake.aws.catalog import GlueCatalog

__all__ = ["AWS_ERRORS", "NOT_FOUND_CODES", "TRANSIENT_CODES", "Clients", "HandlerRuntime", "error_code",
           "explain", "translate"]

_RETRY_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32)
_ONE_ATTEMPT = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=32)


class Clients:
    """A lazily built, thread-safe cache of boto3 clients for one ``Settings``."""

    def __init__(self, settings: Settings, session: boto3.session.Session | None = None) -> None:
        self.settings = settings
        self._session = session
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> boto3.session.Session:
        if self._session is None:
            self._session = boto3.session.Session(**self.settings.boto3_session_kwargs())
        return self._session

    def client(self, service: str, *, one_attempt: bool = False) -> Any:
        """The service's client, built once. ``one_attempt``: a client that never repeats a
        call itself, for writes whose outcome the caller must know — an Iceberg commit's
        ``UpdateTable`` retried after a lost response would be refused as a conflict, and
        pyiceberg would then delete the files of the commit that had landed."""
        key = f"{service}#one-attempt" if one_attempt else service
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self.session.client(
                    service, endpoint_url=self.settings.endpoint_url,
                    config=_ONE_ATTEMPT if one_attempt else _RETRY_CONFIG,
                )
            return self._clients[key]

    # The bucket and database are always named by the caller: a stage's settings may differ from
    # the ones these clients were built for (same endpoint and credentials, another bucket).
    def store(self, bucket: str) -> S3ObjectStore:
        """The storage door on ``bucket``."""
        return S3ObjectStore(self.s3, bucket)

    def catalog(self, database: str) -> GlueCatalog:
        """The catalog door on Glue ``database``."""
        # imported here: the archive and fan-out Lambdas never load pyarrow and sqlglot
        from lake.aws.catalog import GlueCatalog

        return GlueCatalog(self.glue, database)

    def __getattr__(self, name: str) -> Any:
        # clients.s3, clients.dynamodb, clients.kinesis ... read like the services.
        if name.startswith("_"):
            raise AttributeError(name)
        return self.client(name.replace("_", "-") if name == "lambda_" else name)


class HandlerRuntime:
    """Settings and clients of a Lambda handler module, for warm invocations.

    Settings are resolved from the environment on every invocation (cheap, and a
    test or the local runtime may change it); the ``Clients`` built for them are
    kept while the settings stay equal, since building a boto3 session per
    invocation costs more than most batches. Nothing connects at import time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._injected: tuple[Settings | None, Clients | None] = (None, None)
        self._cached: Clients | None = None

    def configure(self, settings: Settings | None = None, clients: Clients | None = None) -> None:
        """Inject settings and/or clients (tests); ``configure()`` goes back to the environment,
        dropping the clients an earlier invocation built."""
        with self._lock:
            self._injected = (settings if settings is not None else (clients.settings if clients else None), clients)
            self._cached = None

    def get(self) -> tuple[Settings, Clients]:
        with self._lock:
            settings, clients = self._injected
            if settings is None:
                settings = Settings.resolve()
            if clients is None:
                if self._cached is None or self._cached.settings != settings:
                    self._cached = Clients(settings)
                clients = self._cached
            return settings, clients
