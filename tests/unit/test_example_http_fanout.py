"""Example 5's delivery rules, without AWS: retries, refusals, per-key order across Lambda's
Kinesis redelivery (resume at the lowest failure), idempotency keys; and its loopback receiver."""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from examples.http_fanout.delivery import DeliveryOptions, Response, deliver, http_post
from examples.http_fanout.handlers import options_from_env
from examples.http_fanout.receiver import Faults, Receiver
from lake.fanout.wire import envelope
from lake.records import partition_key

TABLE = "shipments"
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2024-01-01T00:00:00.000"


def change(item: str, n: int, seq: int, table: str = TABLE, weight: int = 3) -> dict[str, Any]:
    keys = {"shipment_id": {"S": item}}
    return {"eventID": f"ev-{item}-{n}", "eventName": "INSERT" if n == 1 else "MODIFY", "eventSource": "aws:dynamodb",
            "eventSourceARN": ARN.replace(TABLE, table),
            "dynamodb": {"Keys": keys, "NewImage": {**keys, "version": {"N": str(n)}, "weight_kg": {"N": str(weight)}},
                         "SequenceNumber": f"{seq:021d}", "StreamViewType": "NEW_AND_OLD_IMAGES"}}


def kinesis(record: Mapping[str, Any], kseq: int, table: str = TABLE) -> dict[str, Any]:
    data = base64.b64encode(envelope(record, table)).decode()
    pk = partition_key(table, record["dynamodb"]["Keys"])
    return {"kinesis": {"partitionKey": pk, "sequenceNumber": f"{kseq:056d}", "data": data,
                        "kinesisSchemaVersion": "1.0"},
            "eventSource": "aws:kinesis", "eventID": f"shardId-000000000000:{kseq:056d}",
            "eventName": "aws:kinesis:record"}


def stream(items: int, changes_per_item: int, seed: int) -> list[dict[str, Any]]:
    """Kinesis records of interleaved changes of ``items`` items (each item's in order)."""
    rng = random.Random(seed)
    pending = {f"s-{i:02d}": 1 for i in range(items)}
    out: list[dict[str, Any]] = []
    while pending:
        item = rng.choice(sorted(pending))
        n = pending[item]
        out.append(kinesis(change(item, n, len(out) + 1), len(out) + 1))
        pending[item] = n + 1
        if n == changes_per_item:
            del pending[item]
    return out


class Endpoint:
    """A fake endpoint: ``decide(key, attempt)`` → Response; records the accepted POSTs."""

    def __init__(self, decide: Any) -> None:
        self.decide = decide
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}
        self.accepted: list[tuple[str, str, int, bytes]] = []  # (item, idempotency key, version, body)

    def __call__(self, body: bytes, headers: Mapping[str, str]) -> Response:
        key = headers["Idempotency-Key"]
        with self.lock:
            n = self.attempts[key] = self.attempts.get(key, 0) + 1
        resp: Response = self.decide(key, n)
        if resp.accepted:
            version = int(json.loads(body)["record"]["dynamodb"]["NewImage"]["version"]["N"])
            with self.lock:
                self.accepted.append((headers["X-Lake-Key"], key, version, body))
        return resp


def no_claims(ref: Any) -> Any:
    raise AssertionError("no claim checks here")


def run_like_lambda(records: list[dict[str, Any]], post: Any, options: DeliveryOptions,
                    max_invocations: int = 50) -> tuple[int, list[Any]]:
    """Invoke until the batch is done, resuming at the lowest reported failure (Kinesis semantics)."""
    rejected: list[Any] = []
    for invocation in range(1, max_invocations + 1):
        out = deliver(records, post, no_claims, options, sleep=lambda s: None, rng=random.Random(invocation))
        rejected += out.rejected
        if not out.failures:
            return invocation, rejected
        seqs = [r["kinesis"]["sequenceNumber"] for r in records]
        records = records[min(seqs.index(s) for s in out.failures):]
    raise AssertionError("never finished")


def assert_in_order(accepted: list[tuple[str, str, int, bytes]], expected: dict[str, int]) -> None:
    """Per item: versions never go back, every version 1..n arrives, repeats are the same key and body."""
    per_item: dict[str, list[int]] = {}
    bodies: dict[str, bytes] = {}
    for item, key, version, body in accepted:
        assert bodies.setdefault(key, body) == body, "a repeated idempotency key carried another body"
        versions = per_item.setdefault(item, [])
        assert not versions or version >= versions[-1], f"{item}: {version} after {versions[-1]}"
        versions.append(version)
    assert {i: sorted(set(v)) for i, v in per_item.items()} == {
        f"shipment_id={i}": list(range(1, n + 1)) for i, n in expected.items()}


def test_every_change_is_posted_once_with_its_event_id_as_idempotency_key() -> None:
    records = stream(items=5, changes_per_item=4, seed=1)
    ep = Endpoint(lambda key, n: Response(201))
    out = deliver(records, ep, no_claims, sleep=lambda s: None)
    assert (out.posted, out.failures, out.rejected, out.retried) == (20, [], [], 0)
    assert sorted(k for _, k, _, _ in ep.accepted) == sorted(f"ev-s-{i:02d}-{n}" for i in range(5) for n in range(1, 5))
    assert_in_order(ep.accepted, {f"s-{i:02d}": 4 for i in range(5)})


def test_transient_failures_are_retried_with_growing_backoff_within_the_invocation() -> None:
    records = stream(items=3, changes_per_item=3, seed=2)
    ep = Endpoint(lambda key, n: Response(None, "reset") if key == "ev-s-01-2" and n <= 3
                  else Response(503) if key == "ev-s-02-1" and n == 1 else Response(200))
    sleeps: list[float] = []
    out = deliver(records, ep, no_claims, DeliveryOptions(base_delay_s=0.1, max_delay_s=10), sleep=sleeps.append,
                  rng=random.Random(0))
    assert (out.posted, out.failures, out.retried) == (9, [], 4)
    assert ep.attempts["ev-s-01-2"] == 4
    assert len(sleeps) >= 3 and sleeps[2] <= 0.4  # full jitter under a cap of base * 2**round
    assert_in_order(ep.accepted, {"s-00": 3, "s-01": 3, "s-02": 3})


def test_a_change_still_failing_is_reported_and_nothing_of_its_item_overtakes_it() -> None:
    records = stream(items=4, changes_per_item=5, seed=3)
    ep = Endpoint(lambda key, n: Response(503) if key == "ev-s-02-2" and n <= 4 else Response(200))
    out = deliver(records, ep, no_claims, DeliveryOptions(max_attempts=3), sleep=lambda s: None)
    failed_at = next(i for i, r in enumerate(records) if "ev-s-02-2" in base64.b64decode(r["kinesis"]["data"]).decode())
    assert out.failures[0] == records[failed_at]["kinesis"]["sequenceNumber"]
    assert not [v for item, _, v, _ in ep.accepted if item == "shipment_id=s-02" and v > 1]
    # nothing was posted past the failure beyond one change per item (the prefix-safe rule)
    later = {json.loads(base64.b64decode(r["kinesis"]["data"]))["record"]["eventID"] for r in records[failed_at:]}
    past = [k for _, k, _, _ in ep.accepted if k in later]
    assert len(past) <= 4
    # Lambda redelivers from the failure: everything arrives, in order, repeats carry their key
    invocations, _ = run_like_lambda(records[failed_at:], ep, DeliveryOptions(max_attempts=3))
    assert invocations == 1
    assert_in_order(ep.accepted, {f"s-{i:02d}": 5 for i in range(4)})


def test_a_refused_change_is_reported_and_its_item_goes_on() -> None:
    records = [kinesis(change("a", 1, 1), 1), kinesis(change("a", 2, 2, weight=0), 2), kinesis(change("a", 3, 3), 3)]
    ep = Endpoint(lambda key, n: Response(422, "weight") if key == "ev-a-2" else Response(201))
    out = deliver(records, ep, no_claims, sleep=lambda s: None)
    assert [(r.status, r.idempotency_key, r.table) for r in out.rejected] == [(422, "ev-a-2", TABLE)]
    assert out.rejected[0].record["eventID"] == "ev-a-2" and out.failures == []
    assert [k for _, k, _, _ in ep.accepted] == ["ev-a-1", "ev-a-3"]
    assert ep.attempts["ev-a-2"] == 1  # a 4xx is not retried


@pytest.mark.parametrize("seed", range(12))
def test_random_faults_under_lambda_redelivery_keep_per_item_order(seed: int) -> None:
    rng = random.Random(seed)
    records = stream(items=6, changes_per_item=6, seed=seed)
    plan = {f"ev-s-{i:02d}-{n}": rng.choice((0, 0, 0, 1, 2, 5, 9)) for i in range(6) for n in range(1, 7)}
    ep = Endpoint(lambda key, n: Response(503 if n % 2 else None) if n <= plan[key] else Response(200))
    invocations, rejected = run_like_lambda(records, ep, DeliveryOptions(max_attempts=4))
    assert rejected == []
    assert_in_order(ep.accepted, {f"s-{i:02d}": 6 for i in range(6)})
    if max(plan.values()) >= 4:
        assert invocations > 1  # some change outlasted an invocation's retries: redelivered


def test_other_tables_and_repeats_in_a_batch_are_skipped_and_garbage_is_reported() -> None:
    a1 = change("a", 1, 1)
    records = [kinesis(a1, 1), kinesis(a1, 2), kinesis(change("b", 1, 3, table="audit"), 3, table="audit"),
               {"kinesis": {"sequenceNumber": "9", "partitionKey": "x", "data": base64.b64encode(b"[1]").decode()},
                "eventID": "shardId-000000000000:9"}]
    ep = Endpoint(lambda key, n: Response(200))
    out = deliver(records, ep, no_claims, DeliveryOptions(tables=frozenset({TABLE})), sleep=lambda s: None)
    assert (out.posted, out.skipped, [r.kinesis_sequence for r in out.rejected]) == (1, 2, ["9"])
    assert options_from_env({"DELIVERY_TABLES": " shipments, orders", "DELIVERY_MAX_ATTEMPTS": "3"}) == \
        DeliveryOptions(max_attempts=3, tables=frozenset({"shipments", "orders"}))


def test_the_receiver_fails_first_attempts_drops_connections_and_refuses_bad_weights() -> None:
    with Receiver(Faults(seed=5, fail_prob=0.0, drop_prob=1.0, outage={"shipment_id=o": 2})) as rx:
        post = http_post(rx.url, timeout_s=5)

        def send(record: dict[str, Any]) -> Response:
            headers = {"Idempotency-Key": record["eventID"], "X-Lake-Key": "shipment_id=" +
                       record["dynamodb"]["Keys"]["shipment_id"]["S"], "Content-Type": "application/json"}
            return post(json.dumps({"table": TABLE, "record": record}).encode(), headers)

        ok = change("a", 1, 1)
        assert send(ok).status is None  # first attempt: dropped without an answer
        assert send(ok).status == 201
        assert send(ok).status == 200  # a repeat with the same key and body
        assert [send(change("o", 1, 2)).status for _ in range(4)] == [503, 503, 201, 200]
        bad = change("b", 1, 3, weight=0)
        assert [send(bad).status for _ in range(2)] == [None, 422]
        assert [r.idempotency_key for r in rx.accepted] == ["ev-a-1", "ev-a-1", "ev-o-1", "ev-o-1"]


def test_a_refusal_past_a_reported_failure_is_reported_once_on_the_redelivery() -> None:
    records = [kinesis(change("a", 1, 1), 1), kinesis(change("b", 1, 2, weight=0), 2)]
    down = {"on": True}
    ep = Endpoint(lambda key, n: Response(503) if key == "ev-a-1" and down["on"]
                  else Response(422, "weight") if key == "ev-b-1" else Response(200))
    first = deliver(records, ep, no_claims, DeliveryOptions(max_attempts=2), sleep=lambda s: None)
    assert first.failures == [records[0]["kinesis"]["sequenceNumber"]]  # Lambda resumes there: b-1 comes again
    assert first.rejected == [] and ep.attempts["ev-b-1"] == 1  # so its refusal is reported then, once
    down["on"] = False
    again = deliver(records, ep, no_claims, DeliveryOptions(max_attempts=2), sleep=lambda s: None)
    assert again.failures == [] and [json.loads(r.to_json())["idempotencyKey"] for r in again.rejected] == ["ev-b-1"]
