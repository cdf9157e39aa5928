"""The embedded AWS: moto in server mode, in this process, on loopback.

moto stands in for DynamoDB (+ Streams), Kinesis, S3, SQS, SNS, EventBridge and
Glue. Because the server runs in our own process we can also do the one thing
moto does not: expire items whose Time to Live has passed, producing REMOVE
stream records with DynamoDB's service identity, as the real TTL sweeper does.
"""

from __future__ import annotations

import heapq
import hmac
import ipaddress
import logging
import secrets
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from lake.records import TTL_PRINCIPAL

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_PATCHED = False
_LOCAL = threading.local()  # per request thread: moto's stream records are made in the writer's thread


def patch_moto() -> None:
    """Make moto behave like AWS where the lake depends on it (idempotent).

    DynamoDB Streams records look like DynamoDB's in two places:

    * ``UpdateItem`` of a missing item: moto first puts the bare key (one INSERT record) and
      then applies the update (a second INSERT); DynamoDB writes one INSERT. The bare-key
      record is never added (suppressed in the request's own thread, so no reader can see
      it and sequence numbers stay dense).
    * Binary key attributes: moto base64-encodes the already-encoded key once more in
      ``Keys``; the item's own attributes hold the right value, so Keys are taken from it.

    The TTL sweeper's deletions carry DynamoDB's service identity (marked in the sweeper's
    thread), and every write path feeds the tables' expiry indexes (:class:`ExpiryIndex`).

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
    from moto.dynamodb.models.table import Table

    original_init = StreamRecord.__init__
    original_update = DynamoDBBackend.update_item
    original_add = StreamShard.add
    original_put = Table.put_item
    local = _LOCAL

    def init(self: Any, table: Any, stream_type: str, event_name: str, old: Any, new: Any, seq: int) -> None:
        original_init(self, table, stream_type, event_name, old, new, seq)
        if event_name == "REMOVE" and getattr(local, "ttl_delete", False):
            # moto serialises records through the API model, whose member names are
            # capitalised; the runtime lower-cases them as Lambda does.
            self.record["userIdentity"] = {"Type": "Service", "PrincipalId": TTL_PRINCIPAL}
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
            item = original_update(self, table_name, key, *args, **kwargs)
        finally:
            local.suppress_bare_insert = False
        _note_expiry(table, item)  # updated in place: its (new) expiry goes to the TTL index
        return item

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original_put(self, *args, **kwargs)
        _note_expiry(self, item)
        return item

    StreamRecord.__init__ = init  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    StreamShard.add = add  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
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


ADMIN_TOKEN_HEADER = "X-Lake-Admin-Token"
"""The header carrying an :class:`EmbeddedAWS`'s ``admin_token``: moto's ``/moto-api/…`` needs it."""


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``*.localhost`` (RFC 6761) or a loopback address (127.0.0.0/8, ::1)."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(authority: str) -> str:
    """The host of ``host[:port]`` / ``[v6]:port``."""
    if authority.startswith("["):
        return authority[: authority.find("]") + 1]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


class LoopbackGuard:
    """WSGI middleware around moto's app: the embedded AWS answers only the machine's own programs.

    * A request carrying an ``Origin`` (a browser's) is refused unless the origin is loopback:
      a web page elsewhere can neither write (a "simple" cross-origin POST needs no preflight)
      nor read. Preflights from other origins are refused too.
    * A request whose ``Host`` is not loopback is refused: a page on a DNS name rebound to
      127.0.0.1 is same-origin to itself and would otherwise read freely.
    * No response carries ``Access-Control-*`` headers (moto's flask-cors echoes any origin),
      so a browser refuses every cross-origin read.
    * moto's management API (``/moto-api/…``: reset, state dumps, seeding) needs
      ``X-Lake-Admin-Token``, a secret of the :class:`EmbeddedAWS` instance.

    SDKs (boto3, the AWS CLI, pyarrow's S3 client) send no ``Origin`` and address the
    endpoint by its loopback address or ``localhost``: they are unaffected.
    """

    def __init__(self, app: Any, admin_token: str) -> None:
        self.app = app
        self.admin_token = admin_token

    def refusal(self, environ: dict[str, Any]) -> str | None:
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None:
            parts = urlsplit(origin.strip())
            if parts.scheme not in ("http", "https") or not is_loopback_host(parts.hostname or ""):
                return f"requests from origin {origin!r} are refused: the embedded AWS serves loopback only"
        host = environ.get("HTTP_HOST")
        if host and not is_loopback_host(_host_of(host)):
            return f"requests for host {host!r} are refused: the embedded AWS serves loopback only"
        path = environ.get("PATH_INFO") or ""
        if path.startswith("/moto-api"):
            token = environ.get("HTTP_" + ADMIN_TOKEN_HEADER.upper().replace("-", "_"), "")
            if not hmac.compare_digest(token.encode(), self.admin_token.encode()):
                return "moto's management API is reserved to the lake itself"
        return None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        reason = self.refusal(environ)
        if reason is not None:
            body = reason.encode() + b"\n"
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(body)))])
            return [body]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, exc_info) if exc_info else start_response(status, kept)

        return self.app(environ, start)


class EmbeddedAWS:
    """moto's server app behind :class:`LoopbackGuard`, bound to loopback; ``port=0`` picks a free port.

    Like moto's ``ThreadedMotoServer`` (one werkzeug server thread, a thread per request),
    with the guard around moto's dispatcher.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        if not is_loopback_host(host):
            raise ValueError(f"the embedded AWS binds a loopback address only, not {host!r}")
        self.host = host
        self.requested_port = port
        self.admin_token = secrets.token_urlsafe(32)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("embedded AWS not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def server_address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("embedded AWS not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> str:
        # Imported here: moto's server pulls in flask and every backend, which
        # the Lambda handlers and the pure core never need.
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        patch_moto()
        if self.requested_port:
            # Name the taken port (werkzeug's own error is a bare errno).
            with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.host, self.requested_port))
                except OSError as e:
                    raise OSError(f"cannot listen on {self.host}:{self.requested_port}: {e.strerror}") from e
        app = LoopbackGuard(DomainDispatcherApplication(create_backend_app), self.admin_token)
        try:
            self._server = make_server(self.host, self.requested_port, app, threaded=True,
                                       request_handler=MotoRequestHandler)
        except OSError as e:
            raise OSError(f"cannot listen on {self.host}:{self.requested_port}: {e.strerror}") from e
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()
        self.port = self.server_address()[1]
        log.info("embedded AWS listening on %s", self.endpoint_url)
        return self.endpoint_url

    def reset(self) -> None:
        """moto's reset (every table, stream, bucket… is wiped), as the lake itself."""
        req = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST",
                                     headers={ADMIN_TOKEN_HEADER: self.admin_token})
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> EmbeddedAWS:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- Time to Live -------------------------------------------------------------

TTL_MAX_AGE_S = 5 * 365 * 24 * 3600
"""DynamoDB never expires an item whose TTL is more than five years in the past."""
_INDEX_ATTR = "_lake_ttl_index"


def _expiry(item: Any, attr: str) -> float | None:
    """The item's expiry as epoch seconds, or None when its TTL attribute is not a number."""
    value = item.attrs.get(attr)
    if value is None or value.type != "N":
        return None  # DynamoDB ignores TTL attributes that are not numbers
    try:
        return float(Decimal(value.value))
    except (InvalidOperation, ValueError, TypeError):
        return None


class ExpiryIndex:
    """A table's items ordered by expiry: a heap of ``(expires, n, hash key, range key)``.

    Kept up to date by every write path (``Table.put_item`` — PutItem, BatchWriteItem,
    TransactWriteItems, PartiQL — and ``DynamoDBBackend.update_item``; see
    :func:`patch_moto`). Entries are never removed on write: an entry is checked against the
    item when it comes due (a rewritten or deleted item's stale entry is skipped then), and the
    heap is rebuilt from the table when stale entries outnumber live ones.
    """

    def __init__(self, attr: str) -> None:
        self.attr = attr
        self.heap: list[tuple[float, int, Any, Any]] = []
        self.lock = threading.Lock()
        self._n = 0
        self.rebuild_above = 0

    def note(self, item: Any) -> None:
        expires = _expiry(item, self.attr)
        if expires is None:
            return
        with self.lock:
            self._n += 1
            heapq.heappush(self.heap, (expires, self._n, item.hash_key, item.range_key))

    def pop_due(self, now: float) -> tuple[Any, Any] | None:
        with self.lock:
            if not self.heap or self.heap[0][0] > now:
                return None
            _, _, hash_key, range_key = heapq.heappop(self.heap)
            return hash_key, range_key

    def __deepcopy__(self, memo: dict[int, Any]) -> ExpiryIndex:
        # moto deep-copies a table to roll a failed transaction back: the copy's index
        # describes the copy's items (a lock cannot be copied).
        import copy

        clone = ExpiryIndex(self.attr)
        with self.lock:
            clone.heap = copy.deepcopy(self.heap, memo)
            clone._n, clone.rebuild_above = self._n, self.rebuild_above
        return clone


def _note_expiry(table: Any, item: Any) -> None:
    """Called by the patched write paths with the item as written."""
    index = table.__dict__.get(_INDEX_ATTR)
    if index is not None and item is not None:
        index.note(item)


def _items_of(table: Any) -> list[Any]:
    """Every item of a moto table, unsorted (``Table.all_items`` sorts them)."""
    if table.range_key_attr:
        return [i for bucket in list(table.items.values()) for i in list(bucket.values())]
    return list(table.items.values())


def _item_at(table: Any, hash_key: Any, range_key: Any) -> Any:
    bucket = table.items.get(hash_key)  # not get_item: moto's defaultdict would grow a bucket
    if bucket is None or not table.range_key_attr:
        return bucket
    return bucket.get(range_key)


def _index_of(table: Any, attr: str) -> tuple[ExpiryIndex, int]:
    """The table's expiry index for ``attr``, built by listing the table when unknown or too stale.
    Returns it with the number of items listed (0 when it was known)."""
    index = table.__dict__.get(_INDEX_ATTR)
    if index is not None and index.attr == attr and len(index.heap) <= index.rebuild_above:
        return index, 0
    index = ExpiryIndex(attr)
    setattr(table, _INDEX_ATTR, index)  # first: writes racing with the listing are noted too
    items = _items_of(table)
    for item in items:
        index.note(item)
    index.rebuild_above = 2 * len(index.heap) + 10_000
    return index, len(items)


@dataclass
class TTLSweepResult:
    table: str
    expired: int
    examined: int = 0  # items looked at: the due index entries, plus the table once when it was listed


def sweep_ttl(region: str = "us-east-1", now: float | None = None,
              account_id: str = ACCOUNT_ID) -> list[TTLSweepResult]:
    """Delete every item whose TTL attribute is in the past, as DynamoDB's sweeper.

    Works on the in-process moto backend only (the embedded AWS). Each deletion
    yields a REMOVE stream record whose ``userIdentity`` is
    ``{"type": "Service", "principalId": "dynamodb.amazonaws.com"}``.

    A pass costs the number of expired items, not the table's size: each table with TTL
    enabled has an :class:`ExpiryIndex`, listed from the table only the first time (or after
    the TTL attribute changed, or when stale entries dominate).
    """
    from moto.dynamodb.models import dynamodb_backends

    patch_moto()
    now = time.time() if now is None else now
    backend = dynamodb_backends[account_id][region]
    results = []
    for table in list(backend.tables.values()):
        ttl = getattr(table, "ttl", {}) or {}
        attr = ttl.get("AttributeName")
        if ttl.get("TimeToLiveStatus") != "ENABLED" or not attr:
            table.__dict__.pop(_INDEX_ATTR, None)
            continue
        index, examined = _index_of(table, attr)
        expired = 0
        while (due := index.pop_due(now)) is not None:
            examined += 1
            item = _item_at(table, *due)
            if item is None:
                continue  # deleted since
            expires = _expiry(item, attr)
            if expires is None or expires > now or expires < now - TTL_MAX_AGE_S:
                continue  # rewritten since (its new expiry has its own entry), or too old to count
            _LOCAL.ttl_delete = True
            try:
                if _item_at(table, *due) is item:  # not replaced meanwhile by a request thread
                    table.delete_item(item.hash_key, item.range_key)
                    expired += 1
            finally:
                _LOCAL.ttl_delete = False
        results.append(TTLSweepResult(table.name, expired, examined))
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
