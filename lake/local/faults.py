"""Fault injection for ``lake up --faults SPEC``: the embedded AWS and the handlers fail on purpose.

A feature, not a hack (dlt's ``dummy`` destination with ``fail_prob``): the lake's resilience
is tested against the failures AWS really produces, at given rates, reproducibly (``seed``).

SPEC is a comma-separated list of ``fault=rate`` (a probability, ``0.02`` or ``2%``) plus an
optional ``seed=N``::

    s3.5xx=0.02,s3.slowdown=0.01,conn.reset=0.005,conn.drop=0.002,kinesis.partial=0.05,kinesis.throttle=0.02,
    handler.error=0.01,handler.crash=0.01,poison=0.001,seed=7

See :data:`FAULTS` for what each fault does and which requests it may hit. Server-side faults
are a WSGI middleware around moto's app (:class:`FaultMiddleware`, given to
:class:`lake.local.embedded.EmbeddedAWS` as ``wrap``); handler faults wrap each invocation
(:func:`install`, the runtime's ``invoke.wrap_handler`` hook).

Faults hit the lake's own pipeline only: DynamoDB itself (where outside writers write the
source tables) is never touched, nor are control-plane calls (creating a bucket or a stream),
nor any request whose User-Agent carries :data:`EXEMPT_APP_ID` (a soak harness verifying the
lake sets ``AWS_SDK_UA_APP_ID=lake-no-faults``). Nothing is injected before :meth:`FaultInjector.arm`
(``lake up`` arms after provisioning).

Every decision is a hash of the seed, the fault, the request's identity (its method, path and
body, or a record's eventID) and how often that identity was seen: the same requests get the
same faults whatever the threads' interleaving, and a retried request draws again. A poisoned
record is the exception: it is poison on every read, for every mapping, as a real poison record.

Counts are written to ``<state-dir>/faults.json`` (:data:`FAULTS_FILE`) every second and at stop;
see :meth:`FaultInjector.snapshot` for its shape.

Over 500 lines on purpose (ARCHITECTURE rule 7): the spec, the injector's decisions and counts,
and the middleware that applies them to moto's requests are one feature, read together.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import logging
import re
import socket
import struct
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lake.clock import SYSTEM_CLOCK, Clock
from lake.errors import ConfigError
from lake.invocation import Handler

log = logging.getLogger("lake.local.faults")

FAULTS: Mapping[str, str] = {
    "s3.5xx": "an S3 object request (or bucket listing) answers 500 InternalError",
    "s3.slowdown": "an S3 object request (or bucket listing) answers 503 SlowDown",
    "conn.reset": "the connection of an S3, Kinesis or DynamoDB Streams data request is closed without "
                  "an answer, before the request is processed",
    "conn.drop": "the same, after the request was processed: it took effect, its answer is lost (a retry "
                 "repeats it: an S3 put is written again, Kinesis records are put twice)",
    "kinesis.partial": "each PutRecords entry fails alone (ProvisionedThroughputExceededException or "
                       "InternalFailure) and is not written; the others are",
    "kinesis.throttle": "a whole Kinesis data call (PutRecord(s), GetRecords, GetShardIterator) answers "
                        "ProvisionedThroughputExceededException",
    "handler.error": "an invocation raises before its handler runs",
    "handler.crash": "an invocation dies as a crashed process after its handler ran: the work may be "
                     "done, the reply is lost",
    "poison": "a DynamoDB stream record (chosen by eventID: the same on every read) is delivered as a "
              "record no stage can process (an attribute nested past any JSON encoder's depth)",
}
FAULT_NAMES = tuple(FAULTS)
# Faults drawn by one decision share it: their rates add up to at most 1.
_EXCLUSIVE = (("s3.5xx", "s3.slowdown", "conn.reset", "conn.drop"), ("kinesis.throttle", "conn.reset", "conn.drop"),
              ("handler.error", "handler.crash"))

FAULTS_FILE = "faults.json"
EXEMPT_APP_ID = "lake-no-faults"
"""A request whose User-Agent holds this (``AWS_SDK_UA_APP_ID=lake-no-faults``) is never faulted."""
POISON_ATTRIBUTE = "lake_fault_poison"
POISON_DEPTH = 150  # maps nested deeper than orjson's limit (the runtime cannot serialise the record)
MAX_POISONED_LISTED = 10_000
_SEEN_LIMIT = 200_000  # identities whose draws are counted (oldest forgotten first)


def faults_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / FAULTS_FILE


# -- the spec ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaultSpec:
    """Rates by fault name (absent = 0) and the seed."""

    rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0

    def rate(self, name: str) -> float:
        return float(self.rates.get(name, 0.0))

    def render(self) -> str:
        return ",".join([*(f"{n}={self.rates[n]:g}" for n in FAULT_NAMES if n in self.rates), f"seed={self.seed}"])

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """``fault=rate,...[,seed=N]``; a :class:`ConfigError` naming what is wrong."""
        rates: dict[str, float] = {}
        seed: int | None = None
        items = [part.strip() for part in text.split(",") if part.strip()]
        if not items:
            raise ConfigError(f"--faults: empty spec; expected fault=rate,... with faults {', '.join(FAULT_NAMES)}")
        for item in items:
            name, sep, value = (s.strip() for s in item.partition("="))
            if not sep or not name or not value:
                raise ConfigError(f"--faults: {item!r} is not name=value (e.g. s3.5xx=0.02)")
            if name == "seed":
                if seed is not None:
                    raise ConfigError("--faults: seed given twice")
                try:
                    seed = int(value)
                except ValueError:
                    raise ConfigError(f"--faults: seed {value!r} is not an integer") from None
                continue
            if name not in FAULTS:
                close = difflib.get_close_matches(name, [*FAULT_NAMES, "seed"], n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(f"--faults: unknown fault {name!r}{hint}; known: {', '.join(FAULT_NAMES)}, seed")
            if name in rates:
                raise ConfigError(f"--faults: {name} given twice")
            rates[name] = _rate(name, value)
        for group in _EXCLUSIVE:
            total = sum(rates.get(n, 0.0) for n in group)
            if total > 1.0 + 1e-12:
                raise ConfigError(f"--faults: {' + '.join(group)} = {total:g}: one request can fail one way "
                                  "only, so these rates must add up to at most 1")
        return cls(rates, 0 if seed is None else seed)


def _rate(name: str, value: str) -> float:
    text = value[:-1] if value.endswith("%") else value
    try:
        rate = float(text) / (100.0 if value.endswith("%") else 1.0)
    except ValueError:
        raise ConfigError(f"--faults: {name}={value!r}: the rate is not a number (e.g. 0.02 or 2%)") from None
    if not 0.0 <= rate <= 1.0 or rate != rate:
        raise ConfigError(f"--faults: {name}={value}: a rate is a probability between 0 and 1 (or 0% and 100%)")
    return rate


def parse_spec_arg(text: str) -> FaultSpec:
    """``argparse`` type of ``--faults``: a bad spec is a usage error."""
    import argparse

    try:
        return FaultSpec.parse(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--faults: ")) from None


# -- the injector --------------------------------------------------------------------------------

class InjectedCrash(SystemExit):
    """A handler's invocation that died as its process would (``handler.crash``)."""


class InjectedError(RuntimeError):
    """An invocation that failed before its handler ran (``handler.error``)."""


class FaultInjector:
    """Draws faults from a :class:`FaultSpec`, counts them, and writes the counts to ``path``."""

    def __init__(self, spec: FaultSpec | str, path: Path | None = None, write_interval_s: float = 1.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.spec = FaultSpec.parse(spec) if isinstance(spec, str) else spec
        self.path, self.write_interval_s, self.clock = path, write_interval_s, clock
        self.armed = False
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, int] = OrderedDict()
        self.injected: dict[str, int] = dict.fromkeys(FAULT_NAMES, 0)
        self.eligible: dict[str, int] = dict.fromkeys(FAULT_NAMES, 0)
        self.poisoned: dict[str, dict[str, Any]] = {}
        self.sessions = 0  # the `lake up` sessions these counts cover (a restart adds to them)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # decisions
    def _u(self, name: str, identity: str, count: bool = True) -> float:
        """A uniform number in [0, 1) for the ``n``-th draw of ``identity`` (``n`` counted unless not ``count``)."""
        n = 0
        if count:
            key = f"{name}\0{identity}"
            with self._lock:
                n = self._seen.pop(key, 0) + 1
                self._seen[key] = n
                if len(self._seen) > _SEEN_LIMIT:
                    self._seen.popitem(last=False)
        digest = hashlib.blake2b(f"{self.spec.seed}\0{name}\0{identity}\0{n}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0 ** 64

    def choose(self, candidates: Iterable[str], identity: str, group: str) -> str | None:
        """One draw for a request that may fail in any of ``candidates`` ways (each counted as eligible)."""
        names = [n for n in candidates if self.spec.rate(n) > 0]
        if not self.armed or not names:
            return None
        u = self._u(group, identity)
        edge = 0.0
        with self._lock:
            for n in names:
                self.eligible[n] += 1
            for n in names:
                edge += self.spec.rate(n)
                if u < edge:
                    self.injected[n] += 1
                    return n
        return None

    def is_poison(self, event_id: str, where: Mapping[str, Any]) -> bool:
        """Whether this stream record is poison (the same answer on every read); counted once per record."""
        rate = self.spec.rate("poison")
        if not self.armed or rate <= 0:
            return False
        poison = self._u("poison", event_id, count=False) < rate
        listed = False
        with self._lock:
            self.eligible["poison"] += 1
            if poison and event_id not in self.poisoned:
                self.injected["poison"] += 1
                if len(self.poisoned) < MAX_POISONED_LISTED:
                    self.poisoned[event_id] = {"event_id": event_id, **where}
                    listed = True
        if listed:
            # written now, not at the next tick: the record reaches the dead-letter queue (and a
            # snapshot of it) within moments, and a kill -9 before the tick would leave it unlisted
            self.write()
        return poison

    # lifecycle
    def arm(self) -> None:
        """Start injecting (and writing the counts, if there is a ``path``: a restarted lake adds
        to the counts an earlier session left there; delete the file to count afresh)."""
        if not self.sessions:
            self._resume()
            self.sessions += 1
        self.armed = True
        if self.path is not None and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="fault-counts", daemon=True)
            self._thread.start()

    def _resume(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            before = orjson.loads(self.path.read_bytes())
            with self._lock:
                for counts, old in ((self.injected, before["injected"]), (self.eligible, before["eligible"])):
                    for name in FAULT_NAMES:
                        counts[name] += int(old.get(name, 0))
                self.poisoned.update({p["event_id"]: p for p in before.get("poisoned", [])})
                self.sessions = int(before.get("sessions", 1))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:  # a damaged file: count afresh
            log.warning("fault counts in %s not resumed (%s): counting afresh", self.path, e)

    def disarm(self) -> None:
        """Stop injecting (the cause is fixed); the counts stay, and are written once more."""
        self.armed = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.write()

    def snapshot(self) -> dict[str, Any]:
        """What ``faults.json`` holds::

            {"spec": "s3.5xx=0.02,...,seed=7", "seed": 7, "rates": {"s3.5xx": 0.02, ...}, "armed": true,
             "injected": {"s3.5xx": 12, ...every fault...}, "eligible": {"s3.5xx": 640, ...},
             "total_injected": 40, "poisoned": [{"event_id": ..., "sequence_number": ..., "stream_arn": ...}],
             "sessions": 1, "updated_at": <epoch seconds>}

        ``eligible``: the chances each fault had (requests, PutRecords entries, invocations, stream
        records read, that it could have hit); ``poisoned``: the poisoned records (at most 10,000);
        ``sessions``: the `lake up` runs counted (a restart with the same state directory adds to
        the counts; they are written every second, so a ``kill -9`` may lose the last second's).
        """
        with self._lock:
            return {"spec": self.spec.render(), "seed": self.spec.seed, "rates": dict(self.spec.rates),
                    "armed": self.armed, "injected": dict(self.injected), "eligible": dict(self.eligible),
                    "total_injected": sum(self.injected.values()), "poisoned": list(self.poisoned.values()),
                    "sessions": self.sessions, "updated_at": self.clock.now()}

    def write(self) -> None:
        if self.path is None:
            return
        from lake.local.status import write_status

        try:
            write_status(self.path, self.snapshot())
        except OSError as e:  # counts are for people and harnesses: never stop the lake over them
            log.warning("could not write the fault counts to %s: %s", self.path, e)

    def _run(self) -> None:
        while not self.clock.wait(self._stop, self.write_interval_s):
            self.write()

    # handler faults
    def wrap(self, handler: Handler, context: Any) -> Handler:
        """The handler of one invocation, with ``handler.error`` / ``handler.crash`` drawn for it."""
        fault = self.draw(context)
        if fault is None:
            return handler
        name = getattr(context, "function_name", "handler")
        if fault == "handler.error":
            def failing(event: dict[str, Any], ctx: Any) -> Any:
                raise InjectedError(f"injected fault handler.error: {name} failed before it ran")
            return failing

        def crashing(event: dict[str, Any], ctx: Any) -> Any:
            handler(event, ctx)
            raise InjectedCrash(f"injected fault handler.crash: {name}'s process died before it replied")
        return crashing


    def draw(self, context: Any) -> str | None:
        """``handler.error``, ``handler.crash`` or None for one invocation (a handler in a worker
        process: the runtime fails it before sending, or kills its process after it ran)."""
        return self.choose(("handler.error", "handler.crash"), _invocation_identity(context), "handler")


def _invocation_identity(context: Any) -> str:
    # A retried batch has a new request id: the identity is the function and the draw's count.
    return str(getattr(context, "function_name", ""))


# -- handler hook --------------------------------------------------------------------------------

_installed: FaultInjector | None = None


def install(injector: FaultInjector | None) -> None:
    """Make every invocation of the local runtime go through ``injector`` (None: stop)."""
    global _installed
    from lake.local.runtime import invoke

    _installed = injector
    invoke.wrap_handler = injector.wrap if injector is not None else None
    invoke.draw_fault = injector.draw if injector is not None else None


# -- the middleware ------------------------------------------------------------------------------

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
_KINESIS_DATA = frozenset({"PutRecord", "PutRecords", "GetRecords", "GetShardIterator"})
_STREAMS_DATA = frozenset({"GetRecords", "GetShardIterator"})


@dataclass(frozen=True)
class Request:
    """What the middleware needs to know of a request: its service and operation."""

    service: str  # "s3" | "kinesis" | "dynamodbstreams" | "" (other)
    operation: str  # the X-Amz-Target operation, or the S3 method


def classify(environ: Mapping[str, Any]) -> Request:
    """The service (from the SigV4 credential scope and ``X-Amz-Target``) and operation of a request."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    prefix, _, operation = target.partition(".")
    if prefix.startswith("Kinesis_"):
        return Request("kinesis", operation)
    if prefix.startswith("DynamoDBStreams_"):
        return Request("dynamodbstreams", operation)
    if target:
        return Request("", operation)
    scope = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")) or str(environ.get("QUERY_STRING", "")))
    if scope and scope.group(1) == "s3":
        return Request("s3", str(environ.get("REQUEST_METHOD", "GET")))
    return Request("", "")


def _s3_data_request(environ: Mapping[str, Any]) -> bool:
    """An object request, or a bucket listing / multi-delete; not creating or configuring a bucket."""
    path = str(environ.get("PATH_INFO", "")).strip("/")
    host = str(environ.get("HTTP_HOST", "")).split(":")[0]
    virtual = host.count(".") >= 1 and not host.replace(".", "").isdigit() and not host.startswith("s3.")
    has_key = bool(path) if virtual else "/" in path
    return has_key or ((bool(path) or virtual) and environ.get("REQUEST_METHOD") in ("GET", "POST"))


class FaultMiddleware:
    """WSGI middleware around moto's app injecting the server-side faults of ``injector``."""

    def __init__(self, app: Any, injector: FaultInjector) -> None:
        self.app, self.injector = app, injector

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        inj = self.injector
        if not inj.armed or EXEMPT_APP_ID in str(environ.get("HTTP_USER_AGENT", "")):
            return self.app(environ, start_response)
        req = classify(environ)
        if req.service == "s3" and _s3_data_request(environ):
            identity = f"{req.operation} {environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"
            fault = inj.choose(("conn.reset", "conn.drop", "s3.5xx", "s3.slowdown"), identity, "s3")
            if fault in ("conn.reset", "conn.drop"):
                return self._reset(environ, processed=fault == "conn.drop")
            if fault == "s3.5xx":
                return _s3_error(environ, start_response, "500 Internal Server Error", "InternalError",
                                 "We encountered an internal error. Please try again.")
            if fault == "s3.slowdown":
                return _s3_error(environ, start_response, "503 Slow Down", "SlowDown",
                                 "Please reduce your request rate.")
            return self.app(environ, start_response)
        if req.service == "kinesis" and req.operation in _KINESIS_DATA:
            body = _read_body(environ)
            identity = f"{req.operation} {hashlib.blake2b(body, digest_size=16).hexdigest()}"
            fault = inj.choose(("conn.reset", "conn.drop", "kinesis.throttle"), identity, "kinesis")
            if fault in ("conn.reset", "conn.drop"):
                return self._reset(environ, processed=fault == "conn.drop")
            if fault == "kinesis.throttle":
                return _json_error(start_response, "ProvisionedThroughputExceededException",
                                   "Rate exceeded for shard shardId-000000000000 in stream under account "
                                   "123456789012 (injected fault)")
            if req.operation == "PutRecords" and inj.spec.rate("kinesis.partial") > 0:
                return self._partial_put(environ, start_response, body)
            return self.app(environ, start_response)
        if req.service == "dynamodbstreams" and req.operation in _STREAMS_DATA:
            body = _read_body(environ)
            identity = f"{req.operation} {hashlib.blake2b(body, digest_size=16).hexdigest()}"
            fault = inj.choose(("conn.reset", "conn.drop"), identity, "dynamodbstreams")
            if fault is not None:
                return self._reset(environ, processed=fault == "conn.drop")
            if req.operation == "GetRecords" and inj.spec.rate("poison") > 0:
                return self._poisoned_read(environ, start_response, body)
        return self.app(environ, start_response)

    def _reset(self, environ: dict[str, Any], processed: bool) -> list[bytes]:
        if processed:
            self._call(environ)  # it takes effect (reading its body); its answer is never sent
        return _reset(environ, read=not processed)

    def _call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], body

    def _partial_put(self, environ: dict[str, Any], start_response: Any, body: bytes) -> Any:
        request = orjson.loads(body)
        entries = request.get("Records") or []
        doomed = []
        for entry in entries:
            data = hashlib.blake2b(str(entry.get("Data")).encode(), digest_size=16).hexdigest()
            identity = f"{entry.get('PartitionKey')} {data}"
            doomed.append(self.injector.choose(("kinesis.partial",), identity, "kinesis.partial") is not None)
        if not any(doomed):
            _set_body(environ, body)
            return self.app(environ, start_response)
        kept = [e for e, d in zip(entries, doomed, strict=True) if not d]
        real: list[dict[str, Any]] = []
        status, headers = "200 OK", [("Content-Type", "application/x-amz-json-1.1")]
        if kept:
            _set_body(environ, orjson.dumps({**request, "Records": kept}))
            status, headers, answer = self._call(environ)
            if not status.startswith("200"):
                return _respond(start_response, status, headers, answer)  # the call failed as a whole
            real = orjson.loads(answer)["Records"]
        it = iter(real)
        out = []
        for i, d in enumerate(doomed):
            if not d:
                out.append(next(it))
            elif self.injector._u("kinesis.partial.code", str(i), count=False) < 0.5:
                out.append({"ErrorCode": "ProvisionedThroughputExceededException",
                            "ErrorMessage": "Rate exceeded for shard shardId-000000000000 in stream under "
                                            "account 123456789012 (injected fault)"})
            else:
                out.append({"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."})
        failed = sum(1 for r in out if r.get("ErrorCode"))
        reply = orjson.dumps({"FailedRecordCount": failed, "Records": out})
        return _respond(start_response, status, headers, reply)

    def _poisoned_read(self, environ: dict[str, Any], start_response: Any, body: bytes) -> Any:
        iterator = str(orjson.loads(body).get("ShardIterator", ""))
        # GetRecords' records do not name their stream; moto's iterators begin with its ARN
        stream_arn = iterator.split("|", 1)[0] if iterator.startswith("arn:") else None
        status, headers, answer = self._call(environ)
        if not status.startswith("200"):
            return _respond(start_response, status, headers, answer)
        doc = orjson.loads(answer)
        changed = False
        for record in doc.get("Records") or []:
            ddb = record.get("dynamodb") or {}
            where = {"sequence_number": ddb.get("SequenceNumber"), "stream_arn": stream_arn}
            if self.injector.is_poison(str(record.get("eventID")), where):
                image = ddb.setdefault("NewImage" if "NewImage" in ddb or "OldImage" not in ddb else "OldImage", {})
                image[POISON_ATTRIBUTE] = nested_map(POISON_DEPTH)
                changed = True
        if changed:
            # the stdlib encoder: orjson refuses the depth the poison is made of
            import json

            answer = json.dumps(doc).encode()
        return _respond(start_response, status, headers, answer)


def nested_map(depth: int) -> dict[str, Any]:
    """A DynamoDB map attribute nested ``depth`` levels deep."""
    value: dict[str, Any] = {"S": "poison"}
    for _ in range(depth):
        value = {"M": {"m": value}}
    return value


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request's body, put back so the app reads it too."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    # The raw socket's stream: read exactly the declared length (or to the end of a chunked
    # body); reading to its end otherwise would wait for a client that waits for us.
    if length:
        body = stream.read(length)
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    _set_body(environ, body)
    return bytes(body)


def _set_body(environ: dict[str, Any], body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def _respond(start_response: Any, status: str, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*kept, ("Content-Length", str(len(body)))])
    return [body]


def _s3_error(environ: dict[str, Any], start_response: Any, status: str, code: str, message: str) -> list[bytes]:
    _read_body(environ)  # read, not left for the connection's next request line
    request_id = uuid.uuid4().hex[:16].upper()
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>{request_id}</RequestId><HostId>lake-fault-injection</HostId></Error>").encode()
    if environ.get("REQUEST_METHOD") == "HEAD":
        body = b""
    return _respond(start_response, status, [("Content-Type", "application/xml"),
                                             ("x-amz-request-id", request_id)], body)


def _json_error(start_response: Any, code: str, message: str) -> list[bytes]:
    body = orjson.dumps({"__type": code, "message": message})
    return _respond(start_response, "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                                        ("x-amzn-ErrorType", code)], body)


def _reset(environ: dict[str, Any], read: bool = True) -> list[bytes]:
    """Close the connection without an answer (werkzeug then drops the request silently)."""
    if read:
        _read_body(environ)  # else what is left of it would be read as the connection's next request
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone
    raise ConnectionResetError("injected fault: connection closed without an answer")


def middleware(injector: FaultInjector) -> Callable[[Any], FaultMiddleware]:
    """``EmbeddedAWS(wrap=middleware(injector))``: moto's app wrapped in a :class:`FaultMiddleware`."""
    return lambda app: FaultMiddleware(app, injector)
