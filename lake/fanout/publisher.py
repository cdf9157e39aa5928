"""Put stream records on Kinesis with per-key order kept through partial failures.

The AWS door of the fan-out: PutRecords, claim checks to S3, and a fault-injecting
Kinesis client (a feature, as dlt's ``dummy`` destination with ``fail_prob``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lake.aws.clients import AWS_ERRORS, Clients, translate
from lake.deadletter import Quarantined, quarantine
from lake.errors import MalformedRecordError, TransientError
from lake.fanout.plan import MAX_RECORD_BYTES, Entry, SendPlan, chunks, make_entry
from lake.fanout.wire import claim_key, claim_pointer
from lake.settings import Settings

log = logging.getLogger(__name__)

RETRYABLE_ENTRY_CODES = frozenset({"ProvisionedThroughputExceededException", "InternalFailure"})


@dataclass(frozen=True)
class FanoutOptions:
    """Retry and size knobs (defaults fit a 60 s Lambda timeout)."""

    max_attempts: int = 8  # per record, counting the first try
    base_delay: float = 0.05  # seconds; doubled per failing round, with full jitter
    max_delay: float = 2.0
    claim_threshold: int = MAX_RECORD_BYTES  # data + partition key above this → claim check


@dataclass
class FanoutResult:
    """What happened to a batch."""

    delivered: int = 0
    claims: int = 0
    rounds: int = 0
    retried: int = 0
    quarantined: int = 0
    failures: list[str] = field(default_factory=list)  # SequenceNumbers for batchItemFailures

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failures]}


def _claim(settings: Settings, clients: Clients, entry: Entry, record: Mapping[str, Any]) -> Entry:
    key = claim_key(settings.zone_prefix("claims"), entry.table, entry.data)
    clients.store(settings.bucket).put(key, entry.data, content_type="application/json")
    pointer = claim_pointer(entry, settings.bucket, key, record)
    return Entry(entry.index, entry.sequence_number, entry.partition_key, pointer, entry.table,
                 entry.event_id)


def publish(
    settings: Settings,
    records: Sequence[Mapping[str, Any]],
    clients: Clients | None = None,
    kinesis: Any = None,
    options: FanoutOptions | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> FanoutResult:
    """Put a DynamoDB stream batch on ``settings.kinesis_stream``, order-safe per item key.

    Malformed records are quarantined (stage ``fanout``) and skipped. Entries that fail
    inside a PutRecords response are retried with exponential backoff; a key's later
    records wait for its failed one. A record still failing after ``max_attempts``
    is reported (with everything after it that was not put) in ``result.failures``.
    """
    clients = clients or Clients(settings)
    kinesis = kinesis if kinesis is not None else clients.kinesis
    options = options or FanoutOptions()
    rng = rng or random.Random()
    result = FanoutResult()

    entries: list[Entry] = []
    bad: list[Quarantined] = []
    for i, record in enumerate(records):
        try:
            entry = make_entry(i, record)
        except MalformedRecordError as e:
            seq = (record.get("dynamodb") or {}).get("SequenceNumber") if isinstance(record, Mapping) else None
            bad.append(Quarantined("fanout", str(e), {"index": i, "sequence_number": seq}, record))
            continue
        if entry.size > options.claim_threshold:
            entry = _claim(settings, clients, entry, record)
            result.claims += 1
        entries.append(entry)
    if bad:
        quarantine(settings, clients, bad)
        result.quarantined = len(bad)

    plan = SendPlan.of(entries)
    failing_rounds = 0
    while plan.pending:
        wave = plan.wave()
        if not wave:
            break
        result.rounds += 1
        any_failed = False
        for chunk in chunks(wave):
            for entry, code in _put(kinesis, settings.kinesis_stream, chunk):
                if code is None:
                    plan.succeeded(entry)
                    continue
                any_failed = True
                result.retried += 1
                if plan.failed(entry, options.max_attempts):
                    log.warning("giving up on %s (%s) after %d attempts", entry.sequence_number, code,
                                options.max_attempts)
        if any_failed:
            failing_rounds += 1
            cap = min(options.max_delay, options.base_delay * 2 ** (failing_rounds - 1))
            sleep(rng.uniform(0, cap))  # full jitter: shards recover faster than a fixed beat
    if plan.given_up:
        plan.abandon_rest()
    result.delivered = len(plan.delivered)
    result.failures = plan.failure_identifiers()
    return result


def _put(kinesis: Any, stream: str, chunk: list[Entry]) -> list[tuple[Entry, str | None]]:
    """One PutRecords call; pairs each entry with its error code (None = put)."""
    try:
        resp = kinesis.put_records(
            StreamName=stream,
            Records=[{"Data": e.data, "PartitionKey": e.partition_key} for e in chunk],
        )
    except AWS_ERRORS as e:
        err = translate(e, "Kinesis stream", stream)
        if isinstance(err, TransientError):
            # the whole request was refused (throttled, 5xx): every entry failed, retry them
            return [(entry, "RequestFailed") for entry in chunk]
        raise err from e
    out: list[tuple[Entry, str | None]] = []
    for entry, rec in zip(chunk, resp["Records"], strict=True):
        code = rec.get("ErrorCode")
        if code and code not in RETRYABLE_ENTRY_CODES:
            log.warning("unexpected PutRecords entry error %s: retrying anyway", code)
        out.append((entry, code or None))
    return out


class FaultInjectingKinesis:
    """A Kinesis client that fails chosen PutRecords entries, as a real throttled stream does.

    Failing entries are *not* written (a real failed entry is not in the stream); the
    others go to the wrapped client in one request and the response is stitched back in
    request order. ``fail_prob`` picks failures at random (seeded); ``fail`` decides per
    entry given (call number, position, entry) and wins when given. Any other method is
    passed through to the wrapped client.
    """

    def __init__(self, client: Any, fail_prob: float = 0.0, seed: int = 0,
                 fail: Callable[[int, int, Mapping[str, Any]], bool] | None = None,
                 codes: Sequence[str] = ("ProvisionedThroughputExceededException", "InternalFailure")) -> None:
        self.client = client
        self.fail_prob = fail_prob
        self.fail = fail
        self.codes = tuple(codes)
        self.rng = random.Random(seed)
        self.calls = 0
        self.injected = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        self.calls += 1
        doomed = [
            self.fail(self.calls, i, r) if self.fail is not None else self.rng.random() < self.fail_prob
            for i, r in enumerate(Records)
        ]
        keep = [r for r, d in zip(Records, doomed, strict=True) if not d]
        real = self.client.put_records(StreamName=StreamName, Records=keep, **kw)["Records"] if keep else []
        it = iter(real)
        out = []
        for d in doomed:
            if d:
                self.injected += 1
                code = self.codes[self.rng.randrange(len(self.codes))]
                out.append({"ErrorCode": code, "ErrorMessage": f"injected {code}"})
            else:
                out.append(next(it))
        return {"FailedRecordCount": sum(doomed), "Records": out}
