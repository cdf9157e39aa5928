"""A loopback HTTP endpoint that receives the fan-out's changes, fails some on purpose, and
records everything: the example's "other endpoint" and its test double in one (a
fault-injecting destination is a feature, as dlt's ``dummy`` destination).

Faults, decided per request from a seeded generator: a change's first attempt answers 503
(``fail_prob``) or drops the connection without an answer (``drop_prob``); the first
``outage`` requests for the items named there all answer 503 (longer than the consumer
retries in one invocation, so its batch is redelivered); a change whose new image has a
``weight_kg`` of 0 or less is refused for good with 422.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    """One POST as received, and how it was answered (status 0: the connection was dropped)."""

    idempotency_key: str
    item: str  # X-Lake-Key
    sequence: str  # X-Lake-Sequence (DynamoDB)
    event: str
    body: bytes
    status: int


@dataclass
class Faults:
    seed: int = 0
    fail_prob: float = 0.2
    drop_prob: float = 0.05
    outage: Mapping[str, int] = field(default_factory=dict)  # item key → requests that fail first


def refusal(doc: Mapping[str, Any]) -> str | None:
    """Why the endpoint refuses a change for good (None: it accepts it)."""
    new = (doc.get("record") or {}).get("dynamodb", {}).get("NewImage") or {}
    weight = new.get("weight_kg", {}).get("N")
    if weight is not None and float(weight) <= 0:
        return f"weight_kg must be positive, got {weight}"
    return None


class Receiver:
    """The endpoint: ``url`` after :meth:`start`; ``requests`` every attempt, ``accepted`` the 2xx ones."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.attempts: dict[str, int] = {}  # idempotency key → requests so far
        self.item_requests: dict[str, int] = {}
        self.first_body: dict[str, bytes] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/changes"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def accepted(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def answer(self, key: str, item: str, body: bytes) -> tuple[int, str]:
        """The status for this request (0: drop the connection) and the answer's text."""
        with self.lock:
            attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
            n_item = self.item_requests[item] = self.item_requests.get(item, 0) + 1
            roll = self.rng.random()
            if n_item <= self.faults.outage.get(item, 0):
                return 503, "outage"
            if attempt == 1 and roll < self.faults.drop_prob:
                return 0, ""
            if attempt == 1 and roll < self.faults.drop_prob + self.faults.fail_prob:
                return 503, "try again"
            try:
                doc = json.loads(body)
            except ValueError:
                return 400, "not JSON"
            why = refusal(doc)
            if why:
                return 422, why
            if key in self.first_body:
                return 200, "duplicate" if self.first_body[key] == body else "conflict"
            self.first_body[key] = body
            return 201, "created"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key") or ""
                item = self.headers.get("X-Lake-Key") or ""
                status, text = receiver.answer(key, item, body)
                with receiver.lock:
                    receiver.requests.append(Request(key, item, self.headers.get("X-Lake-Sequence") or "",
                                                     self.headers.get("X-Lake-Event") or "", body, status))
                if status == 0:
                    self.close_connection = True  # no answer at all: the client sees the connection reset
                    return
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the scenario reports
                pass

        return Handler
