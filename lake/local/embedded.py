"""The embedded AWS: moto in server mode, in this process, on loopback.

moto stands in for DynamoDB (+ Streams), Kinesis, S3, SQS, SNS, EventBridge and
Glue. Because the server runs in our own process we can also do the one thing
moto does not: expire items whose Time to Live has passed, producing REMOVE
stream records with DynamoDB's service identity, as the real TTL sweeper does.

The server is closed to other origins (:class:`LoopbackGuard`), the TTL sweeper keeps an
expiry index (:class:`ExpiryIndex`), and the streams forget what AWS forgets
(:class:`IteratorStore`, :func:`_patch_stream_memory`).

Over 500 lines on purpose (ARCHITECTURE rule 7): every patch pinned to moto's internals lives
here, next to the others it interacts with (they wrap the same moto functions, in an order
that matters: see :func:`patch_moto`); the tests pinning them are tests/integration/test_embedded*.py.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import hashlib
import heapq
import hmac
import ipaddress
import logging
import secrets
import socket
import threading
import time
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from lake.local.persist import StateStore
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

    _patch_stream_memory()  # first: it wraps moto's own StreamRecord.__init__ and StreamShard.add
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
    _patch_kinesis_routing()
    _patch_dynamodb_atomic_writes()
    __import__("lake.local.moto_speed", fromlist=["*"]).patch_moto_speed()  # hot paths: lake/local/moto_speed.py
    # Step Functions' interpreter calls this server; S3's EventBridge events get ids of their own
    __import__("lake.local.moto_sfn", fromlist=["*"]).patch()
    _PATCHED = True


# -- Stream memory --------------------------------------------------------------

stream_now: Callable[[], float] = time.time
"""The clock of the streams' retention and iterator expiry (tests replace it)."""
DDB_STREAM_RETENTION_S = 24 * 3600.0
"""DynamoDB Streams keep a record 24 hours. Kinesis streams keep theirs ``RetentionPeriodHours``."""
DDB_ITERATOR_TTL_S = 15 * 60.0
"""A DynamoDB Streams shard iterator expires 15 minutes after it is handed out."""
CONSUMED_ITERATOR_GRACE_S = 60.0
"""A consumed iterator stays usable this long: a reader whose answer was lost may read it again."""
MAX_ITERATORS = 10_000
"""At most this many live iterators per region (AWS allows 5 GetShardIterator/s per shard: 4,500 in
15 minutes); beyond, the oldest go first. About 1.3 KB each in moto."""
MOTO_ORIGINALS: dict[str, Callable[..., Any]] = {}
"""The moto functions the stream patches wrap, by qualified name (for the tests that pin them)."""
_DDB_TRIM_EVERY_S = 60.0


class IteratorStore(dict):  # type: ignore[type-arg]
    """moto's DynamoDB Streams iterator table (``shard_iterators``), forgetting as AWS does.

    moto keeps every iterator it hands out (two per idle poll, ~1.5 KB each, a fresh random
    id each). Here an iterator names its position (see :func:`_patch_stream_memory`), so an idle
    reader asking again and again holds one entry, and an iterator is dropped 15 minutes after it
    was last handed out, or :data:`CONSUMED_ITERATOR_GRACE_S` after a GetRecords read it (the
    answer carries the next one) unless handed out again since, or when :data:`MAX_ITERATORS`
    newer ones exist. Reading a dropped iterator fails with ``ExpiredIteratorException``, as on
    AWS, and the reader asks for a new one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._born: OrderedDict[str, float] = OrderedDict()
        self._consumed: deque[tuple[float, str, float]] = deque()
        self._lock = threading.Lock()

    def __setitem__(self, key: str, value: Any) -> None:
        now = stream_now()
        with self._lock:
            self._prune(now)
            super().__setitem__(key, value)
            self._born[key] = now
            self._born.move_to_end(key)

    def __getitem__(self, key: str) -> Any:
        from moto.core.exceptions import JsonRESTError

        now = stream_now()
        with self._lock:
            self._prune(now)
            if key not in self:
                raise JsonRESTError("ExpiredIteratorException",
                                    "Iterator expired. The iterator was created over 15 minutes ago "
                                    "or was consumed over a minute ago.")
            self._consumed.append((now + CONSUMED_ITERATOR_GRACE_S, key, self._born[key]))
            return super().__getitem__(key)

    def __reduce__(self) -> Any:
        return (IteratorStore, ())  # pickled with its backend: iterators do not outlive a process

    def _prune(self, now: float) -> None:
        while self._consumed and self._consumed[0][0] <= now:
            _, key, born = self._consumed.popleft()
            if self._born.get(key) == born:  # not handed out again since it was read
                self.pop(key, None)
                del self._born[key]
        while self._born:
            key, born = next(iter(self._born.items()))
            if now - born <= DDB_ITERATOR_TTL_S and len(self._born) < MAX_ITERATORS:
                break
            self._born.popitem(last=False)
            self.pop(key, None)


def _ddb_record_at(record: Any) -> float:
    at = record.__dict__.get("_lake_at")
    if at is None:  # made before the patch: moto's own (naive UTC) timestamp
        created = record.record["dynamodb"]["ApproximateCreationDateTime"]
        at = record._lake_at = calendar.timegm(created.utctimetuple())
    return float(at)


def _trim_ddb_shard(shard: Any, now: float) -> None:
    """Drop the records older than the retention, at most once a minute (a list's head is costly to
    cut). The shard's ``starting_sequence_number`` moves past them, so moto's arithmetic
    (``seq = starting + position``) numbers the next records on, and TRIM_HORIZON starts at the
    oldest record kept."""
    if now < shard.__dict__.get("_lake_next_trim", 0.0):
        return
    shard._lake_next_trim = now + _DDB_TRIM_EVERY_S
    horizon = now - DDB_STREAM_RETENTION_S
    items = shard.items
    n = 0
    while n < len(items) and _ddb_record_at(items[n]) < horizon:
        n += 1
    if n:
        del items[:n]
        shard.starting_sequence_number += n


def _kinesis_record_at(record: Any) -> float:
    return float(record.__dict__.get("_lake_at", record.created_at))  # before the patch: moto's own


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


def _trimmed(what: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError("TrimmedDataAccessException",
                         f"{what} is older than the stream's 24 hour retention: read from TRIM_HORIZON")


def _patch_stream_memory() -> None:
    """moto keeps every DynamoDB Streams iterator and every stream record (DynamoDB Streams
    and Kinesis) forever. Iterators name their position (``|1|AT<seq>``, ``|1|TH<seq>`` after
    the stream's ARN, instead of 472 random bytes) and go to an :class:`IteratorStore`; records older than the
    retention are dropped (DynamoDB Streams: 24 h, :func:`_trim_ddb_shard`; Kinesis: the
    stream's ``RetentionPeriodHours``, on each put), with sequence numbers going on and
    GetRecords unchanged for what is kept. Kinesis iterators are moto's encoded positions:
    nothing is kept for them."""
    from moto.dynamodb.models.table import StreamRecord, StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator
    from moto.kinesis.models import Shard, Stream

    original_backend_init = DynamoDBStreamsBackend.__init__
    original_iterator_init = ShardIterator.__init__
    original_record_init = StreamRecord.__init__
    original_add = StreamShard.add
    original_get_iterator = DynamoDBStreamsBackend.get_shard_iterator
    original_iterator_get = ShardIterator.get
    original_kinesis_put = Shard.put_record
    original_stream_put = Stream.put_record

    def backend_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_backend_init(self, *args, **kwargs)
        self.shard_iterators = IteratorStore()

    def iterator_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_iterator_init(self, *args, **kwargs)
        # An iterator is a position: LATEST and AFTER_SEQUENCE_NUMBER n are AT_SEQUENCE_NUMBER
        # of the next record; TRIM_HORIZON stays itself (it follows the trim horizon).
        kind = "TH" if self.shard_iterator_type == "TRIM_HORIZON" else "AT"
        self.id = f"{kind}{self.sequence_number}"

    def record_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_record_init(self, *args, **kwargs)
        self._lake_at = stream_now()

    def add(self: Any, old: Any, new: Any) -> None:
        original_add(self, old, new)
        _trim_ddb_shard(self, stream_now())

    def get_shard_iterator(self: Any, arn: str, shard_id: str, shard_iterator_type: str,
                           sequence_number: Any = None) -> Any:
        if shard_iterator_type in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER") and sequence_number is not None:
            shard = self._get_table_from_arn(arn).stream_shard
            first = int(sequence_number) + (shard_iterator_type == "AFTER_SEQUENCE_NUMBER")
            if shard is not None and first < shard.starting_sequence_number:
                raise _trimmed(f"sequence number {sequence_number}")
        return original_get_iterator(self, arn, shard_id, shard_iterator_type, sequence_number)

    def iterator_get(self: Any, limit: int = 1000) -> Any:
        start = self.stream_shard.starting_sequence_number
        if self.sequence_number < start:  # its records were dropped since it was handed out
            if self.shard_iterator_type != "TRIM_HORIZON":
                raise _trimmed("the iterator's position")
            self.sequence_number = start
        return original_iterator_get(self, limit)

    def kinesis_put(self: Any, *args: Any, **kwargs: Any) -> str:
        # Numbered from the last number handed out, not from the last record kept.
        seq = int(original_kinesis_put(self, *args, **kwargs))
        last = self.__dict__.get("_lake_last_seq", 0)
        record = self.records[seq]
        if seq <= last:  # every record was dropped: moto restarted at 1
            del self.records[seq]
            seq = record.sequence_number = last + 1
            self.records[seq] = record
        record._lake_at = stream_now()
        self._lake_last_seq = seq
        return str(seq)

    def max_seq(self: Any) -> int:
        if self.records:
            return int(next(reversed(self.records)))
        return int(self.__dict__.get("_lake_last_seq", 0)) if self.__dict__.get("_lake_trimmed") else 0

    def min_seq(self: Any) -> int:
        return int(next(iter(self.records))) if self.records else 0

    def stream_put(self: Any, *args: Any, **kwargs: Any) -> Any:
        seq, shard_id = original_stream_put(self, *args, **kwargs)
        shard = self.shards.get(shard_id)
        if shard is not None and shard.records:
            horizon = stream_now() - self.retention_period_hours * 3600
            records = shard.records
            while records and _kinesis_record_at(next(iter(records.values()))) < horizon:
                records.popitem(last=False)
                shard._lake_trimmed = True
        return seq, shard_id

    # moto's BaseModel.__new__ appends every instance to its class's ``instances_tracked`` (for
    # the /moto-api dashboard) until a reset: every item version, stream record and iterator
    # would stay alive. These four are made per request; they are not tracked.
    from moto.dynamodb.models.dynamo_type import Item
    from moto.kinesis.models import Record

    for cls in (Item, StreamRecord, ShardIterator, Record):
        cls.__new__ = _untracked_new  # type: ignore[assignment]
        setattr(cls, "instances_tracked", [])  # noqa: B010 - not in moto's typing
    MOTO_ORIGINALS.update({f.__qualname__: f for f in (
        original_backend_init, original_iterator_init, original_record_init, original_add, original_get_iterator,
        original_iterator_get,
        original_kinesis_put, original_stream_put, Shard.get_records, DynamoDBStreamsBackend.get_records,
        StreamShard.get)})
    DynamoDBStreamsBackend.__init__ = backend_init  # type: ignore[method-assign]
    ShardIterator.__init__ = iterator_init  # type: ignore[method-assign]
    StreamRecord.__init__ = record_init  # type: ignore[method-assign]
    StreamShard.add = add  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_shard_iterator = get_shard_iterator  # type: ignore[method-assign]
    ShardIterator.get = iterator_get  # type: ignore[method-assign]
    Shard.put_record = kinesis_put  # type: ignore[method-assign]
    Shard.get_max_sequence_number = max_seq  # type: ignore[method-assign]
    Shard.get_min_sequence_number = min_seq  # type: ignore[method-assign]
    Stream.put_record = stream_put  # type: ignore[method-assign]
    # Backends made before the patch (moto builds them lazily, but a reset re-makes them).
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    for account in list(dynamodbstreams_backends.keys()):
        for region in list(dynamodbstreams_backends[account].keys()):
            b = dynamodbstreams_backends[account][region]
            if not isinstance(b.shard_iterators, IteratorStore):
                store = IteratorStore()
                for k, v in b.shard_iterators.items():
                    store[k] = v
                b.shard_iterators = store


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
        # _get_param: moto 5.2.6 dropped GlueResponse.parameters (5.2.5 had both)
        version = self._get_param("VersionId")
        with lock:
            if version is not None:
                name = (self._get_param("TableInput") or {}).get("Name")
                table = self.glue_backend.get_table(self._get_param("DatabaseName"), name)
                if str(table._current_version) != str(version):
                    raise JsonRESTError("ConcurrentModificationException",
                                        f"Update table failed due to concurrent modifications: version {version} "
                                        f"is not the current {table._current_version}")
            return original(self)

    GlueResponse.update_table = update_table  # type: ignore[method-assign]


_DDB_WRITE_LOCK = threading.RLock()
_DDB_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items",
               "execute_statement", "execute_transaction", "batch_execute_statement")


def _patch_dynamodb_atomic_writes() -> None:
    """One DynamoDB write at a time, as DynamoDB applies each write to an item atomically.

    moto's server answers requests on threads and applies an ``UpdateItem`` as a read, then a
    change of the item: two concurrent ``SET n = if_not_exists(n, :zero) + :one`` could both
    read the same ``n`` (measured: 398 distinct values from 400 concurrent increments), so an
    atomic counter handed out one number twice. The lock is around the whole request handler,
    answer included, because ``ReturnValues`` are built after the backend's method returns."""
    from moto.dynamodb.responses import DynamoHandler

    for name in _DDB_WRITES:
        original = getattr(DynamoHandler, name, None)
        if original is None or getattr(original, "_lake_atomic", False):
            continue

        def atomic(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _DDB_WRITE_LOCK:
                return _original(self, *args, **kwargs)

        wrapped = functools.wraps(original)(atomic)
        wrapped._lake_atomic = True  # type: ignore[attr-defined]
        setattr(DynamoHandler, name, wrapped)


def _patch_kinesis_routing() -> None:
    """After ``SplitShard`` or ``MergeShards`` a record goes to the open shard covering its hash key,
    as on AWS; moto picks the first shard whose range covers it, the closed parent included, so
    a record put after a split lands in a shard its readers have finished (found by `make soak`:
    re-driven changes never reached the curated zone), and a split or merge leaves the parents'
    records as they were (moto renumbers them)."""
    from moto.kinesis.models import Stream

    original = Stream.get_shard_for_key

    def get_shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:
        shard = original(self, partition_key, explicit_hash_key)  # moto's argument checks and hashing
        if shard is None or shard.is_open or getattr(_LOCAL, "resharding", False):
            return shard
        key = int(explicit_hash_key) if explicit_hash_key else int(
            hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).hexdigest(), 16)
        return next((s for s in self.shards.values() if s.is_open and s.starting_hash <= key < s.ending_hash), shard)

    def resharding(method: Any) -> Any:
        # moto empties the parent and puts its records again, numbered from 1: positions a reader
        # checkpointed would then point past records it never read. On AWS a closed parent keeps
        # its records and their sequence numbers; so do we.
        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            kept = {shard_id: shard.records for shard_id, shard in self.shards.items() if shard.is_open}
            _LOCAL.resharding = True
            try:
                return method(self, *args, **kwargs)
            finally:
                _LOCAL.resharding = False
                for shard_id, records in kept.items():
                    shard = self.shards.get(shard_id)
                    if shard is not None and not shard.is_open:
                        shard.records = records
        return wrapped

    Stream.get_shard_for_key = get_shard_for_key  # type: ignore[method-assign]
    Stream.split_shard = resharding(Stream.split_shard)  # type: ignore[method-assign]
    Stream.merge_shards = resharding(Stream.merge_shards)  # type: ignore[method-assign]


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

    def __init__(self, port: int = 0, host: str = "127.0.0.1", state: StateStore | None = None,
                 wrap: Callable[[Any], Any] | None = None) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"the embedded AWS binds a loopback address only, not {host!r}")
        self.host = host
        self.state = state  # None: everything in memory, gone on stop (``lake up --ephemeral``)
        self.restored: dict[str, Any] = {}
        self.requested_port = port
        self.admin_token = secrets.token_urlsafe(32)
        self.wrap = wrap  # a WSGI middleware around moto's app, inside the guard (lake.local.faults)
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
        app: Any = DomainDispatcherApplication(create_backend_app)
        if self.state is not None:
            self.restored = self.state.restore(app, "localhost")
            app = self.state.wrap(app)  # innermost: only what reaches moto is journaled
        app = LoopbackGuard(self.wrap(app) if self.wrap else app, self.admin_token)
        try:
            self._server = make_server(self.host, self.requested_port, app, threaded=True,
                                       request_handler=MotoRequestHandler)
        except OSError as e:
            raise OSError(f"cannot listen on {self.host}:{self.requested_port}: {e.strerror}") from e
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()
        self.port = self.server_address()[1]
        if self.state is not None:
            self.state.start()
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
        if self.state is not None and self.port is not None:
            self.state.stop(final=True)  # no request can come in now: the last snapshot is complete

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

    def __getstate__(self) -> dict[str, Any]:  # picklable with its table (a lock is not)
        with self.lock:
            return {"attr": self.attr, "heap": list(self.heap), "_n": self._n, "rebuild_above": self.rebuild_above}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.Lock()

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

    def __init__(self, region: str, interval: float = 1.0, state: StateStore | None = None) -> None:
        self.region, self.interval = region, interval
        self.state = state  # a saved lake: sweeps are changes, inside its gate like a request
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ttl-sweeper", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.state.gate.request() if self.state is not None else contextlib.nullcontext():
                    results = sweep_ttl(self.region)
                if self.state is not None and any(r.expired for r in results):
                    self.state.touch()
                for r in results:
                    if r.expired:
                        log.info("TTL expired %d item(s) in %s", r.expired, r.table)
            except Exception:  # a sweeper hiccup must not kill `lake up`
                log.exception("TTL sweep failed")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
