"""``lake example http_fanout``: shipments change, the lake carries every change to its Kinesis
stream, and the consumer posts each one to a flaky loopback endpoint.

The endpoint (:mod:`examples.http_fanout.receiver`) fails first attempts at random, drops
connections, has an outage on two shipments longer than one invocation's retries (so the
consumer reports a batch item failure and Lambda redelivers from it), and refuses a change
with a zero weight for good. Checked at the end: every change the lake holds for the table
was delivered or refused (reported on the queue); per shipment, first deliveries come in
write order and nothing older ever arrives after something newer; a repeated POST always
carries the same idempotency key and body.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from examples.http_fanout.receiver import Faults, Receiver, Request
from lake.query.engine import engine_for

if TYPE_CHECKING:
    from lake.local.apps import LocalApp

SEED = 15
SHIPMENTS = 30
WRITERS = 4
OUTAGE = {"shipment_id=shp-0003": 9, "shipment_id=shp-0017": 9}  # > the consumer's 6 attempts
CARRIERS = ("dhl", "ups", "fedex", "postnl", "royalmail")
CITIES = ("Amsterdam", "Berlin", "Lyon", "Milan", "Porto", "Kraków", "Ghent", "Aarhus", "Graz")


def lifecycle(rng: random.Random, shipment: str) -> list[dict[str, Any]]:
    """One shipment's writes, in order: each a new version of the item, or its deletion."""
    weight = round(rng.uniform(0.2, 30.0), 2)
    base = {"shipment_id": shipment, "carrier": rng.choice(CARRIERS), "destination": rng.choice(CITIES),
            "weight_kg": weight, "status": "created"}
    steps: list[dict[str, Any]] = [dict(base)]
    if rng.random() < 0.15:
        steps.append({"status": "cancelled"})
        steps.append({"delete": True})
        return steps
    steps.append({"status": "picked"})
    if shipment.endswith("7"):  # a scale error the endpoint refuses, corrected by the next weighing
        steps.append({"status": "packed", "weight_kg": 0})
        steps.append({"status": "packed", "weight_kg": weight})
    else:
        steps.append({"status": "packed"})
    for _ in range(rng.randint(1, 4)):
        steps.append({"status": "in_transit", "location": rng.choice(CITIES)})
    steps.append({"status": rng.choice(("delivered", "delivered", "delivered", "returned"))})
    return steps


def write(ddb: Any, table: str, seed: int, shipments: list[str]) -> dict[str, int]:
    """One writer: its shipments' lifecycles, interleaved at random; returns writes per shipment."""
    rng = random.Random(seed)
    plans = {s: lifecycle(rng, s) for s in shipments}
    done = {s: 0 for s in shipments}
    while any(done[s] < len(plans[s]) for s in shipments):
        s = rng.choice([s for s in shipments if done[s] < len(plans[s])])
        step = plans[s][done[s]]
        version = done[s] + 1
        key = {"shipment_id": {"S": s}}
        if step.get("delete"):
            ddb.delete_item(TableName=table, Key=key)
        elif version == 1:
            ddb.put_item(TableName=table, Item={**key, **_attrs({**step, "version": 1})},
                         ConditionExpression="attribute_not_exists(shipment_id)")
        else:
            fields = {**step, "version": version}
            names = {f"#{i}": k for i, k in enumerate(fields)}
            ddb.update_item(TableName=table, Key=key,
                            UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(fields))),
                            ExpressionAttributeNames=names,
                            ExpressionAttributeValues={f":{i}": _attr(v) for i, v in enumerate(fields.values())})
        done[s] = version
    return done


def _attr(v: Any) -> dict[str, str]:
    return {"N": str(v)} if isinstance(v, int | float) else {"S": str(v)}


def _attrs(values: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {k: _attr(v) for k, v in values.items() if k != "shipment_id"}


def version_of(record: dict[str, Any]) -> int:
    """The item version a change carries (a deletion: one past the deleted item's)."""
    ddb = record["dynamodb"]
    if "NewImage" in ddb:
        return int(ddb["NewImage"]["version"]["N"])
    return int(ddb["OldImage"]["version"]["N"]) + 1


def check(accepted: list[Request], refused: dict[str, dict[str, Any]], lake_event_ids: set[str],
          writes: dict[str, int]) -> dict[str, Any]:
    """The delivery facts: completeness against the lake, per-item order, same-key duplicates.

    ``refused``: the changes the reject queue reported, by idempotency key (their records)."""
    bodies: dict[str, bytes] = {}
    regressions: list[str] = []
    conflicting: list[str] = []
    versions: dict[str, list[int]] = {}  # item → versions of first deliveries, in arrival order
    last_seq: dict[str, int] = {}
    for r in accepted:
        if r.idempotency_key in bodies:
            if bodies[r.idempotency_key] != r.body:
                conflicting.append(r.idempotency_key)
        else:
            bodies[r.idempotency_key] = r.body
            versions.setdefault(r.item, []).append(version_of(json.loads(r.body)["record"]))
        seq = int(r.sequence)
        if seq < last_seq.get(r.item, -1):
            regressions.append(f"{r.item}: {r.sequence} after {last_seq[r.item]}")
        last_seq[r.item] = max(seq, last_seq.get(r.item, -1))
    out_of_order = sorted(i for i, v in versions.items() if v != sorted(v))
    refused_versions: dict[str, list[int]] = {}
    for record in refused.values():
        item = f"shipment_id={record['dynamodb']['Keys']['shipment_id']['S']}"
        refused_versions.setdefault(item, []).append(version_of(record))
    incomplete = sorted(f"shipment_id={s}" for s, n in writes.items()
                        if sorted(versions.get(f"shipment_id={s}", []) + refused_versions.get(f"shipment_id={s}", []))
                        != list(range(1, n + 1)))
    delivered = set(bodies)
    facts: dict[str, Any] = {
        "changes_written": sum(writes.values()),
        "changes_in_lake": len(lake_event_ids),
        "delivered": len(delivered),
        "refused": len(refused),
        "duplicate_posts": len(accepted) - len(delivered),
        "undelivered": sorted(lake_event_ids - delivered - set(refused))[:10],
        "unknown_deliveries": sorted(delivered - lake_event_ids)[:10],
        "order_regressions": regressions[:10],
        "out_of_order_items": out_of_order,
        "incomplete_items": incomplete,
        "conflicting_duplicates": conflicting[:10],
    }
    facts["ok"] = (facts["changes_in_lake"] == facts["changes_written"] == facts["delivered"] + facts["refused"]
                   and not (facts["undelivered"] or facts["unknown_deliveries"] or regressions or out_of_order
                            or incomplete or conflicting))
    return facts


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = got.get("Messages") or []
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def run(app: LocalApp, say: Callable[[str], None]) -> dict[str, Any]:
    table = app.resolve("${table:shipments}")
    queue_url = app.resolve("${queue:rejected-changes}")
    receiver = Receiver(Faults(seed=SEED, fail_prob=0.15, drop_prob=0.05, outage=OUTAGE)).start()
    previous = os.environ.get("DELIVERY_URL")
    # The consumer reads DELIVERY_URL per invocation; its first invocation comes with the first change.
    os.environ["DELIVERY_URL"] = receiver.url
    try:
        say(f"endpoint {receiver.url}: fails first attempts (15% 503, 5% dropped), outage on "
            f"{', '.join(OUTAGE)}, refuses weight_kg <= 0")
        shipments = [f"shp-{i:04d}" for i in range(SHIPMENTS)]
        writes: dict[str, int] = {}
        lock = threading.Lock()

        def writer(n: int) -> None:
            done = write(app.clients.dynamodb, table, SEED * 100 + n, shipments[n::WRITERS])
            with lock:
                writes.update(done)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        say(f"{sum(writes.values())} changes written to {table} by {WRITERS} writers")
        idle = app.wait_idle(timeout_s=120)
        rejected = receive_all(app.clients.sqs, queue_url)
        engine = engine_for(app.settings, "local", app.clients)
        rows = engine.query("SELECT event_id FROM changes WHERE table_name = ?", [table]).to_pylist()
        lake_ids = {r["event_id"] for r in rows}
        refused = {r["idempotencyKey"]: r["record"] for r in rejected}
        facts = check(receiver.accepted, refused, lake_ids, writes)
        requests = receiver.requests
        invocations = app.invocations("deliver-changes")
        facts.update(
            idle=idle,
            requests=len(requests),
            failed_requests=sum(1 for r in requests if r.status == 0 or r.status >= 500),
            refused_statuses=sorted({r["status"] for r in rejected}),
            invocations=len(invocations),
            # invocations that reported batch item failures: Lambda resumed the shard at the first
            redelivered_batches=sum(1 for i in invocations if (i.get("result") or {}).get("batchItemFailures")),
        )
        facts["ok"] = bool(facts["ok"] and idle and facts["refused"] >= 1 and facts["failed_requests"] > 0
                           and facts["redelivered_batches"] >= 1)
        say(f"{facts['delivered']} delivered ({facts['duplicate_posts']} duplicate POSTs), {facts['refused']} refused, "
            f"{facts['failed_requests']} failed requests retried, in {facts['invocations']} invocations")
        return facts
    finally:
        receiver.stop()
        if previous is None:
            os.environ.pop("DELIVERY_URL", None)
        else:
            os.environ["DELIVERY_URL"] = previous
