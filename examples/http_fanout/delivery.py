"""Deliver a Kinesis batch of the lake's changes to an HTTP endpoint: retries, per-key order,
idempotency keys. No AWS here (the handler brings the claim-check fetch and the reject queue).

**What is posted.** One ``POST`` per change, body ``{"table": <t>, "record": <the DynamoDB
stream record, untouched>}``, with ``Idempotency-Key: <the change's eventID>`` (the same
change sent twice carries the same key, whatever path duplicated it: a retried request, a
redelivered batch, the fan-out's own redelivery) and ``X-Lake-Table``, ``X-Lake-Key`` (the
item), ``X-Lake-Sequence`` (its DynamoDB sequence number) and ``X-Lake-Event``.

**Retries.** A 5xx, 408, 429 or a connection error is retried with exponential backoff and
full jitter, a bounded number of times per invocation; any other 4xx is the endpoint refusing
the change for good: it is *reported* (returned in ``rejected``; the handler puts it on the
reject queue) and the key goes on.

**Order.** A change of an item is posted only after the item's previous change was accepted
(changes of different items go in parallel). When a change still fails after its retries, the
batch reports it as a batch item failure; on Kinesis, Lambda then resumes the shard at the
lowest failed sequence number and delivers everything after it again. So nothing after a
given-up change is posted any more, and the order of waves is
:meth:`lake.fanout.plan.SendPlan.wave` with ``prefix_safe``: an item's next change only once
everything before its previous one was accepted. The redelivery then posts again at most one
already-accepted change per item, right before its successors: a duplicate with the same
idempotency key, never an older change after a newer one.
"""

from __future__ import annotations

import http.client
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from lake.curate.decode import ClaimRef, coordinates, payload, unwrap
from lake.errors import MalformedRecordError
from lake.fanout.plan import Entry, SendPlan
from lake.records import key_string, sequence_number

RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Response:
    """What one POST came back with: an HTTP status, or a connection error (status None)."""

    status: int | None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status >= 500 or self.status in RETRYABLE_STATUS


Post = Callable[[bytes, Mapping[str, str]], Response]


def http_post(url: str, timeout_s: float = 10.0) -> Post:
    """A POST to ``url`` over ``urllib`` (no dependency; on Lambda as locally)."""
    def post(body: bytes, headers: Mapping[str, str]) -> Response:
        req = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                resp.read()
                return Response(resp.status)
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read()[:200].decode(errors="replace"))
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, ConnectionError) as e:
            return Response(None, f"{type(e).__name__}: {e}")
    return post


@dataclass(frozen=True)
class DeliveryOptions:
    max_attempts: int = 6  # per change and invocation, counting the first
    base_delay_s: float = 0.05  # doubled per failing round, full jitter
    max_delay_s: float = 1.0
    parallel: int = 8  # items posted at once
    tables: frozenset[str] = frozenset()  # deliver only these tables' changes (empty: every table)


@dataclass(frozen=True)
class Change:
    """A change off the lake's stream, ready to post."""

    entry: Entry  # order bookkeeping: index, Kinesis sequence number, partition key, body
    headers: Mapping[str, str]
    record: Mapping[str, Any]


@dataclass(frozen=True)
class Rejected:
    """A change the endpoint refused for good (a 4xx), or one that is not a change at all."""

    reason: str
    status: int | None
    kinesis_sequence: str
    table: str | None = None
    idempotency_key: str | None = None
    record: Any = None

    def to_json(self) -> bytes:
        return orjson.dumps({"reason": self.reason, "status": self.status, "kinesisSequence": self.kinesis_sequence,
                             "table": self.table, "idempotencyKey": self.idempotency_key, "record": self.record})


@dataclass
class Delivery:
    posted: int = 0  # accepted POSTs
    retried: int = 0
    skipped: int = 0  # other tables' changes, repeats within the batch
    rejected: list[Rejected] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # Kinesis sequence numbers (batchItemFailures)

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failures]}


Fetch = Callable[[ClaimRef], tuple[str, Mapping[str, Any]]]


def change_of(index: int, kinesis_record: Mapping[str, Any], fetch_claim: Fetch) -> Change:
    """A Lambda Kinesis record of the lake's stream → the change to post (raises MalformedRecordError)."""
    coords = coordinates(kinesis_record)
    got = unwrap(payload(kinesis_record), coords)
    table, record = fetch_claim(got) if isinstance(got, ClaimRef) else got
    ddb = record.get("dynamodb")
    if not isinstance(ddb, Mapping) or not isinstance(ddb.get("Keys"), Mapping):
        raise MalformedRecordError("change without dynamodb.Keys")
    event_id = str(record.get("eventID") or "")
    if not event_id:
        raise MalformedRecordError("change without an eventID (no idempotency key)")
    body = orjson.dumps({"table": table, "record": record})
    headers = {"Content-Type": "application/json", "Idempotency-Key": event_id, "X-Lake-Table": table,
               "X-Lake-Key": key_string(ddb["Keys"]), "X-Lake-Sequence": sequence_number(record),
               "X-Lake-Event": str(record.get("eventName", ""))}
    partition = str((kinesis_record.get("kinesis") or {}).get("partitionKey") or f"{table}|{headers['X-Lake-Key']}")
    return Change(Entry(index, coords.sequence_number, partition, body, table, event_id), headers, record)


def deliver(records: Sequence[Mapping[str, Any]], post: Post, fetch_claim: Fetch,
            options: DeliveryOptions | None = None, sleep: Callable[[float], None] = time.sleep,
            rng: random.Random | None = None) -> Delivery:
    """Post a Kinesis batch's changes (see the module's docstring for the rules)."""
    options = options or DeliveryOptions()
    rng = rng or random.Random()
    out = Delivery()
    changes: dict[int, Change] = {}
    seen: set[str] = set()
    rejected: list[tuple[int, Rejected]] = []  # with their batch positions
    for i, kr in enumerate(records):
        seq = str((kr.get("kinesis") or {}).get("sequenceNumber", ""))
        try:
            c = change_of(i, kr, fetch_claim)
        except MalformedRecordError as e:
            rejected.append((i, Rejected(f"not a change of the lake: {e}", None, seq)))
            continue
        if (options.tables and c.entry.table not in options.tables) or c.entry.event_id in seen:
            out.skipped += 1  # a repeat in one batch: the fan-out's redelivery put it twice
            continue
        seen.add(c.entry.event_id)
        changes[i] = c

    plan = SendPlan.of(c.entry for c in changes.values())
    failing_rounds = 0
    with ThreadPoolExecutor(max_workers=max(1, options.parallel), thread_name_prefix="post") as pool:
        while plan.pending:
            wave = plan.wave(prefix_safe=True)
            if not wave:
                break
            results = list(pool.map(lambda e: post(e.data, changes[e.index].headers), wave))
            any_failed = False
            for entry, resp in zip(wave, results, strict=True):
                if resp.accepted:
                    out.posted += 1
                    plan.succeeded(entry)
                elif not resp.retryable:
                    rejected.append((entry.index, Rejected(
                        f"HTTP {resp.status}: {resp.detail}", resp.status, entry.sequence_number, entry.table,
                        entry.event_id, changes[entry.index].record)))
                    plan.succeeded(entry)  # handled: reported, and the item's next change may go
                else:
                    any_failed = True
                    out.retried += 1
                    plan.failed(entry, options.max_attempts)
            if any_failed:
                failing_rounds += 1
                sleep(rng.uniform(0, min(options.max_delay_s, options.base_delay_s * 2 ** (failing_rounds - 1))))
    first_failure = len(records)
    if plan.given_up:
        plan.abandon_rest()
        first_failure = min(e.index for e in plan.given_up)
    # Lambda resumes at the lowest failure: a refusal after it is met (and reported) again then.
    out.rejected = [r for i, r in sorted(rejected, key=lambda x: x[0]) if i < first_failure]
    out.failures = plan.failure_identifiers()
    return out
