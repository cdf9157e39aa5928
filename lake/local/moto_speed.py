"""The embedded AWS's hot paths, made fast: patches pinned to moto 5.2.5.

Measured under `lake up` with external writers (benchmarks/bench_lake_up.py, py-spy), most of
the server's time went to three things this module replaces, each with the same output:

* **Response serialisation** of DynamoDB Streams and Kinesis ``GetRecords``: moto walks each
  record through its generic, model-driven serializer, asking an attribute picker with alias
  providers for every member of every attribute value (~1 ms per stream record, on every read).
  :class:`FastJSONResult` serialises the same result through a function compiled once per
  output shape, for plain ``dict``/``list`` results (anything else takes moto's own path).
* **Dispatch**: moto's WSGI dispatcher lists its package directory (``os.listdir`` and an
  ``isdir`` per service) and tries every service's URL patterns on every request; the answer
  depends on the host alone, so it is remembered per host.
* **Stream record images**: each write's stream record renders the item's images through
  ``DynamoType.to_regular_json``, which deep-copies every map and list at every level (quadratic
  in the depth), and the embedded patch renders the item a second time for its keys; here the
  same images are built without the copies, once per record.
* **Kinesis GetRecords** scans the shard's records from its start on every read; the records of
  a shard are numbered densely (moto numbers each put ``last + 1``, and the embedded streams
  trim from the front only), so a read indexes its first record directly.

And one fix found while measuring: moto numbers a stream record ``len(records) + start`` (DynamoDB
Streams) or ``last + 1`` (Kinesis) without a lock, and its server answers each request in a thread
of its own: two writers at once could get the same sequence number (20,001 records under 19,897
numbers in 20,000 changes from two writer processes), and the lake, which keys changes by
sequence number, kept one of each pair. :func:`_patch_stream_order` numbers them one at a time.

Each patch checks the moto version it was written for (:data:`PINNED_MOTO`) and does nothing on
another one (logged): a patch of internals that changed could return wrong answers. The tests in
tests/integration/test_moto_speed.py compare each patched path with moto's own, on the pinned
version, and fail when the version moves.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from enum import Enum
from typing import Any

log = logging.getLogger(__name__)

PINNED_MOTO = "5.2.5"
"""The moto version these patches were written for and checked against."""

MOTO_ORIGINALS: dict[str, Callable[..., Any]] = {}
"""moto's own functions, by qualified name, replaced here (the tests compare them with ours)."""

_PATCHED = False


def moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def patch_moto_speed() -> bool:
    """Install the patches (idempotent); False when moto is not the pinned version."""
    global _PATCHED
    if _PATCHED:
        return True
    found = moto_version()
    if found != PINNED_MOTO:
        log.warning("moto %s is not %s: the embedded AWS runs without its speed patches", found, PINNED_MOTO)
        return False
    _patch_dispatch()
    _patch_get_records()
    _patch_kinesis_scan()
    _patch_stream_order()
    _patch_stream_record_images()
    _PATCHED = True
    return True


# -- Response serialisation -------------------------------------------------------------------

class _Fallback(Exception):
    """The result is not plain data: moto's own serializer handles it."""


_MISSING = object()
Serializer = Callable[[Any], Any]


def _compile(shape: Any, timestamps: Any, cache: dict[Any, Serializer]) -> Serializer:
    """A function doing what moto's JSON serializer does to a value of ``shape`` (moto/core/serialize.py:
    ``BaseJSONSerializer`` and ``ResponseSerializer``), for values that are plain data."""
    # botocore makes a new Shape per reference: a shape is known by its name and traits (and a
    # recursive one, AttributeValue, finds itself through its M and L).
    ident = (shape.name, json.dumps(shape.serialization, sort_keys=True, default=str))
    done = cache.get(ident)
    if done is not None:
        return done
    kind = shape.type_name
    fn: Serializer
    if kind == "structure":
        if shape.is_document_type:
            def fn(value: Any) -> Any:
                return value
        else:
            members: list[tuple[str, str, Serializer]] = []

            def fn(value: Any) -> Any:
                if value is None:
                    return _MISSING
                if type(value) is not dict:
                    raise _Fallback  # objects: moto's attribute picker finds their aliases
                out = {}
                for key, name, ser in members:
                    v = value.get(key)
                    if v is not None:
                        s = ser(v)
                        if s is not _MISSING:
                            out[name] = s
                return out

            cache[ident] = fn  # before the members: shapes may be recursive (AttributeValue)
            for key, member in shape.members.items():
                members.append((key, member.serialization.get("name", key), _compile(member, timestamps, cache)))
            return fn
    elif kind == "list":
        item: list[Serializer] = []

        def fn(value: Any) -> Any:
            out = []
            for v in value:
                s = item[0](v)
                out.append(v if s is _MISSING else s)  # as moto: an item that serialised to nothing stays raw
            return out

        cache[ident] = fn
        item.append(_compile(shape.member, timestamps, cache))
        return fn
    elif kind == "map":
        val: list[Serializer] = []

        def fn(value: Any) -> Any:
            out = {}
            for k, v in value.items():
                s = val[0](v)
                if s is not _MISSING:
                    out[k] = s
            return out

        cache[ident] = fn
        val.append(_compile(shape.value, timestamps, cache))
        return fn
    elif kind == "string":
        def fn(value: Any) -> Any:
            if isinstance(value, Enum):
                value = value.value
            return str(value) if value not in (None, {}, []) else value
    elif kind == "blob":
        def fn(value: Any) -> Any:
            if isinstance(value, str):
                value = value.encode("utf-8")
            return base64.b64encode(value).strip().decode("utf-8")
    elif kind == "timestamp":
        fmt = shape.serialization.get("timestampFormat", timestamps.default_format)

        def fn(value: Any) -> Any:
            return timestamps._convert_timestamp_to_str(value, fmt)
    elif kind in ("integer", "long"):
        fn = int
    elif kind in ("float", "double"):
        fn = float
    else:
        def fn(value: Any) -> Any:
            return value
    cache[ident] = fn
    return fn


_COMPILED: dict[tuple[str, str], tuple[Serializer, str, int]] = {}


def _output_serializer(context: Any) -> tuple[Serializer, str, int] | None:
    """(serialise the output, its content type, its status) for the operation; None if not plain JSON."""
    from moto.core.serialize import BaseJSONSerializer, TimestampSerializer

    op = context.operation_model
    key = (op.service_model.service_name, op.name)
    found = _COMPILED.get(key)
    if found is None:
        cls = context.serializer_class
        if not issubclass(cls, BaseJSONSerializer) or cls._serialize_type_structure is not \
                BaseJSONSerializer._serialize_type_structure or op.output_shape is None:
            return None
        serializer = cls(operation_model=op)
        fn = _compile(op.output_shape, TimestampSerializer(cls.DEFAULT_TIMESTAMP_FORMAT), {})
        found = _COMPILED[key] = (fn, serializer._get_protocol_specific_content_type(),
                                  int(op.http.get("responseCode", cls.DEFAULT_RESPONSE_CODE)))
    return found


def _fast_result_class() -> type:
    from moto import settings
    from moto.core.responses import ActionResult

    class FastJSONResult(ActionResult):
        """An ``ActionResult`` serialised by a compiled function (same JSON as moto's serializer)."""

        def execute_result(self, context: Any) -> Any:
            if not settings.PRETTIFY_RESPONSES and not getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER",
                                                                None):
                compiled = _output_serializer(context)
                if compiled is not None:
                    fn, content_type, status = compiled
                    try:
                        body = fn(self.result)
                    except _Fallback:
                        pass
                    else:
                        return status, {"Content-Type": content_type}, json.dumps({} if body is _MISSING else body)
            return super().execute_result(context)

    return FastJSONResult


def _patch_get_records() -> None:
    """DynamoDB Streams' and Kinesis' ``GetRecords`` answer through :class:`FastJSONResult`."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.kinesis.responses import KinesisResponse

    fast = _fast_result_class()
    for cls in (DynamoDBStreamsHandler, KinesisResponse):
        original = cls.get_records
        MOTO_ORIGINALS[original.__qualname__] = original

        def get_records(self: Any, _original: Callable[..., Any] = original) -> Any:
            result = _original(self)
            return fast(result.result) if type(result).__name__ == "ActionResult" else result

        cls.get_records = get_records  # type: ignore[method-assign]


# -- Dispatch ----------------------------------------------------------------------------------

def _patch_dispatch() -> None:
    """Remember moto's service for each host, and its list of service modules."""
    import moto.backends as backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original_list = backends.list_of_moto_modules
    original_for_host = DomainDispatcherApplication.get_backend_for_host
    MOTO_ORIGINALS[original_list.__qualname__] = original_list
    MOTO_ORIGINALS[original_for_host.__qualname__] = original_for_host
    modules = tuple(original_list())

    def list_of_moto_modules() -> Any:
        return iter(modules)  # moto's package directory does not change while it runs

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        # Called with the dispatcher's lock held (DomainDispatcherApplication.get_application).
        memo = self.__dict__.setdefault("_lake_backend_for_host", {})
        if host in memo:
            return memo[host]
        backend = original_for_host(self, host)
        if len(memo) < 1024:  # hosts are a handful (service.region.amazonaws.com); bound it anyway
            memo[host] = backend
        return backend

    backends.list_of_moto_modules = list_of_moto_modules
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


# -- Kinesis GetRecords --------------------------------------------------------------------------

def _patch_kinesis_scan() -> None:
    """``Shard.get_records`` from the first record after ``last_sequence_id`` without a scan."""
    from moto.kinesis.models import Shard

    original = Shard.get_records
    MOTO_ORIGINALS[original.__qualname__] = original

    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> Any:
        records = self.records
        if not records:
            return original(self, last_sequence_id, limit)
        first, last = next(iter(records)), next(reversed(records))
        if last - first + 1 != len(records):  # not dense (never seen): moto's scan
            return original(self, last_sequence_id, limit)
        last_int = int(last_sequence_id)
        start = max(last_int + 1, first)
        end = last if limit is None else min(last, start + limit - 1)
        results = [records[s] for s in range(start, end + 1)]
        if not results:
            return [], last_int, 0
        secs = records[last].created_at - results[-1].created_at
        return results, end, int(secs * 1000)

    Shard.get_records = get_records  # type: ignore[method-assign]


# -- Stream record numbering ----------------------------------------------------------------------

STREAM_LOCK = threading.RLock()
"""Held while a stream record is numbered and added (DynamoDB Streams and Kinesis)."""


def _patch_stream_order() -> None:
    """``StreamShard.add`` and Kinesis ``Stream.put_record`` one at a time: each record its own number."""
    from moto.dynamodb.models.table import StreamShard
    from moto.kinesis.models import Stream

    for cls, name in ((StreamShard, "add"), (Stream, "put_record")):
        original = getattr(cls, name)
        MOTO_ORIGINALS[f"{cls.__name__}.{name}"] = original

        def locked(self: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with STREAM_LOCK:
                return _original(self, *args, **kwargs)

        setattr(cls, name, locked)


# -- Stream record images -------------------------------------------------------------------------

_IMAGES = threading.local()


def _patch_stream_record_images() -> None:
    """``DynamoType.to_regular_json`` without deep copies; ``Item.to_json`` once per item while a stream
    record is made (moto's ``StreamRecord.__init__`` and the embedded patch around it both call it)."""
    import copy

    from moto.dynamodb.models.dynamo_type import DDBType, DynamoType, Item
    from moto.dynamodb.models.table import StreamRecord

    original_regular = DynamoType.to_regular_json
    original_item_json = Item.to_json
    original_record_init = StreamRecord.__init__
    for f in (original_regular, original_item_json):
        MOTO_ORIGINALS[f.__qualname__] = f
    MOTO_ORIGINALS["StreamRecord.__init__"] = original_record_init
    binary = DDBType.BINARY

    def to_regular_json(self: Any) -> dict[str, Any]:
        # What moto returns, built fresh instead of from a deep copy (its containers are new
        # either way; the leaves are immutable strings, numbers, booleans and bytes).
        value = self.value
        if isinstance(value, dict):
            value = {k: v.to_regular_json() if isinstance(v, DynamoType) else copy.deepcopy(v)
                     for k, v in value.items()}
        elif isinstance(value, list):
            value = [v.to_regular_json() if isinstance(v, DynamoType) else copy.deepcopy(v) for v in value]
        if self.type == binary and isinstance(value, str):
            value = base64.b64decode(value)
        return {self.type: value}

    def item_to_json(self: Any, root_attr_name: str = "Attributes") -> dict[str, Any]:
        memo = getattr(_IMAGES, "memo", None)
        if memo is None:
            return original_item_json(self, root_attr_name)
        key = (id(self), root_attr_name)
        found = memo.get(key)
        if found is None:
            found = memo[key] = original_item_json(self, root_attr_name)
        return found

    def record_init(self: Any, *args: Any, **kwargs: Any) -> None:
        outer = getattr(_IMAGES, "memo", None)
        _IMAGES.memo = {}
        try:
            original_record_init(self, *args, **kwargs)
        finally:
            _IMAGES.memo = outer

    DynamoType.to_regular_json = to_regular_json  # type: ignore[method-assign]
    Item.to_json = item_to_json  # type: ignore[method-assign]
    StreamRecord.__init__ = record_init  # type: ignore[method-assign]
