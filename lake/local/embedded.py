"""The embedded AWS: moto in server mode, in this process, on loopback.

moto stands in for DynamoDB (+ Streams), Kinesis, S3, SQS, SNS, EventBridge and
Glue. Because the server runs in our own process we can also do the one thing
moto does not: expire items whose Time to Live has passed, producing REMOVE
stream records with DynamoDB's service identity, as the real TTL sweeper does.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from lake.records import TTL_PRINCIPAL

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_PATCHED = False


def patch_moto() -> None:
    """Make moto behave like AWS where the lake depends on it (idempotent).

    DynamoDB Streams records look like DynamoDB's in two places:

    * ``UpdateItem`` of a missing item: moto first puts the bare key (one INSERT record) and
      then applies the update (a second INSERT); DynamoDB writes one INSERT. The bare-key
      record is never added (suppressed in the request's own thread, so no reader can see
      it and sequence numbers stay dense).
    * Binary key attributes: moto base64-encodes the already-encoded key once more in
      ``Keys``; the item's own attributes hold the right value, so Keys are taken from it.

    And Glue's ``UpdateTable`` checks ``VersionId`` (see :func:`_patch_glue_version_check`).
    """
    global _PATCHED
    if _PATCHED:
        return
    try:
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models.table import StreamRecord, StreamShard
    except ImportError:  # pragma: no cover - a moto without these internals
        log.warning("moto internals changed: stream records keep moto's quirks")
        return
    original_init = StreamRecord.__init__
    original_update = DynamoDBBackend.update_item
    original_add = StreamShard.add
    local = threading.local()

    def init(self: Any, table: Any, stream_type: str, event_name: str, old: Any, new: Any, seq: int) -> None:
        original_init(self, table, stream_type, event_name, old, new, seq)
        item = old if old is not None else new
        if item is None:
            return
        attrs = item.to_json()["Attributes"]
        keys = self.record["dynamodb"]["Keys"]
        for name in keys:
            if name in attrs:
                keys[name] = attrs[name]

    def add(self: Any, old: Any, new: Any) -> None:
        if getattr(local, "suppress_bare_insert", False) and old is None and new is not None:
            local.suppress_bare_insert = False  # the bare key put by moto's upsert: not a change
            return
        original_add(self, old, new)

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table = self.get_table(table_name)
        local.suppress_bare_insert = table.get_item(*self.get_keys_value(table, key)) is None
        try:
            return original_update(self, table_name, key, *args, **kwargs)
        finally:
            local.suppress_bare_insert = False

    StreamRecord.__init__ = init  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    StreamShard.add = add  # type: ignore[method-assign]
    _patch_glue_version_check()
    _PATCHED = True


def _patch_glue_version_check() -> None:
    """Glue's ``UpdateTable`` with a ``VersionId`` that is no longer the table's current one
    fails with ``ConcurrentModificationException`` on AWS; moto accepts it and the last
    writer wins. Iceberg's optimistic commits rely on the check (ADR 0003), so the
    embedded Glue makes it, atomically with the update."""
    try:
        from moto.core.exceptions import JsonRESTError
        from moto.glue.responses import GlueResponse
    except ImportError:  # pragma: no cover - a moto without these internals
        log.warning("moto internals changed: the embedded Glue does not check VersionId")
        return
    original = GlueResponse.update_table
    lock = threading.Lock()

    def update_table(self: Any) -> Any:
        version = self.parameters.get("VersionId")
        with lock:
            if version is not None:
                name = (self.parameters.get("TableInput") or {}).get("Name")
                table = self.glue_backend.get_table(self.parameters.get("DatabaseName"), name)
                if str(table._current_version) != str(version):
                    raise JsonRESTError("ConcurrentModificationException",
                                        f"Update table failed due to concurrent modifications: version {version} "
                                        f"is not the current {table._current_version}")
            return original(self)

    GlueResponse.update_table = update_table  # type: ignore[method-assign]


class EmbeddedAWS:
    """moto's ThreadedMotoServer bound to loopback; ``port=0`` picks a free port."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requested_port = port
        self._server: Any = None
        self.port: int | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("embedded AWS not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        # Imported here: moto's server pulls in flask and every backend, which
        # the Lambda handlers and the pure core never need.
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        patch_moto()
        if self.requested_port:
            # werkzeug exits its thread on a taken port and moto then waits forever: check first.
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.host, self.requested_port))
                except OSError as e:
                    raise OSError(f"cannot listen on {self.host}:{self.requested_port}: {e.strerror}") from e
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.requested_port, verbose=False)
        self._server.start()
        self.port = int(self._server.get_host_and_port()[1])
        log.info("embedded AWS listening on %s", self.endpoint_url)
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedAWS:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- Time to Live -------------------------------------------------------------

@dataclass
class TTLSweepResult:
    table: str
    expired: int


def sweep_ttl(region: str = "us-east-1", now: float | None = None,
              account_id: str = ACCOUNT_ID) -> list[TTLSweepResult]:
    """Delete every item whose TTL attribute is in the past, as DynamoDB's sweeper.

    Works on the in-process moto backend only (the embedded AWS). Each deletion
    yields a REMOVE stream record whose ``userIdentity`` is
    ``{"type": "Service", "principalId": "dynamodb.amazonaws.com"}``.
    """
    from moto.dynamodb.models import dynamodb_backends

    now = time.time() if now is None else now
    backend = dynamodb_backends[account_id][region]
    results = []
    for table in list(backend.tables.values()):
        ttl = getattr(table, "ttl", {}) or {}
        attr = ttl.get("AttributeName")
        if ttl.get("TimeToLiveStatus") != "ENABLED" or not attr:
            continue
        expired = 0
        for item in list(table.all_items()):
            value = item.attrs.get(attr)
            if value is None or value.type != "N":
                continue  # DynamoDB ignores TTL attributes that are not numbers
            try:
                expires = Decimal(value.value)
            except InvalidOperation:
                continue
            if expires > Decimal(str(now)):
                continue
            key = {table.hash_key_attr: item.hash_key.to_json()}
            if table.range_key_attr is not None and item.range_key is not None:
                key[table.range_key_attr] = item.range_key.to_json()
            before = len(table.stream_shard.items) if table.stream_shard else 0
            backend.delete_item(table.name, key)
            if table.stream_shard is not None and len(table.stream_shard.items) > before:
                # moto serialises records through the API model, whose member
                # names are capitalised; the runtime lower-cases them as Lambda does.
                table.stream_shard.items[-1].record["userIdentity"] = {
                    "Type": "Service", "PrincipalId": TTL_PRINCIPAL,
                }
            expired += 1
        results.append(TTLSweepResult(table.name, expired))
    return results


class TTLSweeper:
    """A background thread calling :func:`sweep_ttl` every ``interval`` seconds."""

    def __init__(self, region: str, interval: float = 1.0) -> None:
        self.region, self.interval = region, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ttl-sweeper", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for r in sweep_ttl(self.region):
                    if r.expired:
                        log.info("TTL expired %d item(s) in %s", r.expired, r.table)
            except Exception:  # a sweeper hiccup must not kill `lake up`
                log.exception("TTL sweep failed")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
