"""Example 3's domain and stream processor, without AWS: commands decide events, events fold
into state, the processor is idempotent by request id and under redelivery, and the rebuild
from replayed commands agrees with the fold of the events."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, ClassVar

import pytest

from examples.event_sourcing.domain import (
    Command,
    CommandLog,
    Event,
    InvalidCommand,
    Key,
    State,
    apply,
    decide,
    event_item,
    event_of,
    fold,
    plain,
    workload,
)
from examples.event_sourcing.handlers import EventStore, StateRebuilder, Tables, process
from lake.errors import TransientError


def cmd(ms: str, name: str, entity: str, rid: str, **args: Any) -> Command:
    return Command(ms, name, entity, rid, "user-01", 1_733_000_000_000, args)


def run(commands: list[Command]) -> list[Event]:
    """Decide and apply in order, as one microservice would."""
    states: dict[Key, State] = {}
    out = []
    for seq, c in enumerate(commands, 1):
        e = decide(states.get((c.microservice, c.entity), {}), c, seq)
        states[(c.microservice, c.entity)] = apply(states.get((c.microservice, c.entity), {}), e)
        out.append(e)
    return out


def test_an_account_opens_takes_deposits_refuses_an_overdraft_and_closes() -> None:
    events = run([cmd("accounts", "deposit", "a", "r0", amount=5), cmd("accounts", "open", "a", "r1", owner="ann"),
                  cmd("accounts", "deposit", "a", "r2", amount=700), cmd("accounts", "withdraw", "a", "r3", amount=800),
                  cmd("accounts", "withdraw", "a", "r4", amount=200), cmd("accounts", "close", "a", "r5"),
                  cmd("accounts", "deposit", "a", "r6", amount=1)])
    assert [e.type for e in events] == ["Rejected", "AccountOpened", "Deposited", "WithdrawalRejected", "Withdrawn",
                                        "AccountClosed", "Rejected"]
    assert events[3].data == {"amount": 800, "balance": 700} and events[5].data == {"paid_out": 500}
    assert fold(events)[("accounts", "a")] == {"status": "closed", "owner": "ann", "balance": 0, "events": 7,
                                               "last_sequence": 7}


def test_inventory_and_loyalty_rules() -> None:
    events = run([cmd("inventory", "restock", "sku", "r1", qty=10), cmd("inventory", "reserve", "sku", "r2", qty=8),
                  cmd("inventory", "reserve", "sku", "r3", qty=3), cmd("inventory", "release", "sku", "r4", qty=50),
                  cmd("loyalty", "earn", "m", "r5", points=10), cmd("loyalty", "enroll", "m", "r6"),
                  cmd("loyalty", "earn", "m", "r7", points=6_000), cmd("loyalty", "redeem", "m", "r8", points=7_000),
                  cmd("loyalty", "redeem", "m", "r9", points=1_000), cmd("inventory", "reserve", "sku", "r10", qty=0)])
    assert [e.type for e in events] == ["Restocked", "Reserved", "ReservationRejected", "Released", "Rejected",
                                        "MemberEnrolled", "PointsEarned", "RedemptionRejected", "PointsRedeemed",
                                        "Rejected"]
    assert events[3].data == {"qty": 8} and events[6].data["tier"] == "silver"
    assert events[9].data == {"reason": "reserve: qty must be a positive integer"}
    states = fold(events)
    assert states[("inventory", "sku")] | {"events": 0} == {"on_hand": 10, "reserved": 0, "events": 0,
                                                           "last_sequence": 10}
    assert states[("loyalty", "m")]["points"] == 5_000 and states[("loyalty", "m")]["lifetime"] == 6_000


@pytest.mark.parametrize("body, why", [
    ("{", "not JSON"), ("[]", "not a JSON object"), ('{"type":"billing"}', "unknown microservice"),
    ('{"type":"accounts","command":"fly"}', "has no command"),
    ('{"type":"accounts","command":"open","entity":"a","id":"","user":"u"}', "id must be"),
])
def test_the_api_refuses_what_is_not_a_command(body: str, why: str) -> None:
    with pytest.raises(InvalidCommand, match=why):
        Command.parse(body)


def test_a_command_and_an_event_round_trip() -> None:
    c = cmd("inventory", "reserve", "sku-1", "r1", qty=3, order="ord-1")
    assert Command.parse(c.body()) == c
    e = decide({"on_hand": 5}, c, 42)
    assert event_of(event_item(e)) == e
    assert event_item(e)["sequence"] == {"N": "42"} and event_item(e)["data"] == {
        "M": {"qty": {"N": "3"}, "order": {"S": "ord-1"}}}


def test_the_workload_is_seeded_and_varied() -> None:
    a, b = list(workload(3, 300)), list(workload(3, 300))
    assert a == b and a != list(workload(4, 300))
    kinds = Counter((c.microservice, c.command) for c in a)
    assert {ms for ms, _ in kinds} == {"accounts", "inventory", "loyalty"} and len(kinds) >= 9
    assert len({(c.microservice, c.entity) for c in a}) == 36
    assert len({c.request_id for c in a}) == 300
    amounts = [c.args["amount"] for c in a if "amount" in c.args]
    assert len(set(amounts)) > len(amounts) // 2
    assert Counter(e.type for e in run(a))["Rejected"] < 60  # mostly meaningful work


# -- the processor, over an in-memory store with the same conditions as the DynamoDB one ------------

class MemoryStore(EventStore):
    """EventStore's three conditional puts on dicts (the same conditions); after ``fail_after``
    puts, a transient error (a throttled or lost call) on every put."""

    KEYS: ClassVar[dict[str, tuple[str, str]]] = {
        "events": ("microservice", "sequence"), "entities": ("microservice", "entity"),
        "requests": ("microservice", "request_id")}

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__(None, Tables("commands", "events", "entities", "requests"))
        self.items: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {t: {} for t in self.KEYS}
        self.fail_after = fail_after
        self.puts = 0

    def state(self, microservice: str, entity: str) -> State:
        got = plain(self.items["entities"].get((microservice, entity), {}))
        return {k: v for k, v in got.items() if k not in ("microservice", "entity")}

    def _put(self, table: str, attrs: dict[str, Any], condition: str, values: dict[str, Any] | None) -> bool:
        if self.fail_after is not None and self.puts >= self.fail_after:
            raise TransientError("throttled")
        self.puts += 1
        new = plain(attrs)
        k = tuple(new[f] for f in self.KEYS[table])
        old = plain(self.items[table][k]) if k in self.items[table] else None
        seq = int(values[":seq"]["N"]) if values else 0
        if old is None:
            ok = True
        elif table == "requests":  # attribute_not_exists(request_id) OR sequence = :seq
            ok = old["sequence"] == seq
        elif table == "entities":  # attribute_not_exists(last_sequence) OR last_sequence < :seq
            ok = old["last_sequence"] < seq
        else:  # attribute_not_exists(sequence)
            ok = False
        if ok:
            self.items[table][k] = attrs
        return ok

    def events(self) -> list[Event]:
        return [event_of(i) for _, i in sorted(self.items["events"].items())]


def records(commands: list[Command], start: int = 1) -> list[dict[str, Any]]:
    """The commands table's stream records of these commands, numbered per microservice."""
    out: list[dict[str, Any]] = []
    counters = Counter[str]()
    for c in commands:
        counters[c.microservice] += 1
        seq = counters[c.microservice]
        out.append({"eventID": f"e{len(out)}", "eventName": "INSERT" if seq == 1 else "MODIFY",
                    "dynamodb": {"Keys": {"microservice": {"S": c.microservice}},
                                 "NewImage": {"microservice": {"S": c.microservice}, "id": {"N": str(seq)},
                                              "payload": {"S": c.body()}},
                                 "SequenceNumber": f"{start + len(out):021d}"}})
    return out


def test_one_event_per_request_even_when_a_request_is_sent_twice() -> None:
    commands = list(workload(5, 60))
    sent = [*commands[:20], commands[7], *commands[20:], commands[33], commands[7]]
    store = MemoryStore()
    out = process(store, records(sent))
    assert (out.written, out.duplicates, out.failures) == (60, 3, [])
    assert sorted(e.request_id for e in store.events()) == sorted(c.request_id for c in commands)
    again = process(store, records(sent))  # the whole batch redelivered (or replayed from the lake)
    assert (again.written, again.duplicates + again.redelivered) == (0, 63)
    assert len(store.events()) == 60


@pytest.mark.parametrize("fail_after", [0, 1, 2, 4, 5, 7, 31])
def test_a_failure_mid_command_is_reported_and_repaired_by_the_redelivery(fail_after: int) -> None:
    commands = list(workload(6, 20))
    batch = records(commands)
    store = MemoryStore(fail_after=fail_after)
    out = process(store, batch)
    assert out.failures and out.failures == [r["dynamodb"]["SequenceNumber"] for r in batch[-len(out.failures):]]
    store.fail_after = None
    redelivered = batch[len(batch) - len(out.failures):]  # Lambda resumes at the first reported record
    assert process(store, redelivered).failures == []
    reference = MemoryStore()
    process(reference, batch)
    assert store.items == reference.items


def test_redelivered_or_foreign_records_are_skipped() -> None:
    c = cmd("accounts", "open", "a", "r1")
    batch = records([c])
    batch.append({"eventName": "REMOVE", "dynamodb": {"Keys": {"microservice": {"S": "accounts"}},
                                                      "SequenceNumber": "9"}})
    batch.append({"eventName": "MODIFY", "dynamodb": {"NewImage": {"id": {"N": "2"}, "payload": {"S": "{}"}},
                                                      "SequenceNumber": "10"}})
    out = process(MemoryStore(), batch)
    assert (out.written, out.invalid, out.failures) == (1, 1, [])


def test_the_rebuild_from_replayed_commands_equals_the_fold_of_the_events() -> None:
    commands = list(workload(9, 200))
    sent = commands + commands[10:14]  # four retries
    store = MemoryStore()
    process(store, records(sent))
    rebuilder = StateRebuilder()
    batch = records(sent)
    rebuilder({"Records": batch[:77]})
    rebuilder({"Records": batch[70:]})  # an overlap, as a resumed replay may send
    events = store.events()
    assert rebuilder.log.states == fold(events)
    assert {k: store.state(*k) for k in store.items["entities"]} == fold(events)
    assert rebuilder.log.duplicates == 4 and len(rebuilder.log.events) == 200


def test_the_command_log_ignores_stale_sequences_and_invalid_bodies() -> None:
    log = CommandLog()
    assert log.submit(1, cmd("loyalty", "enroll", "m", "r1").body()) is not None
    assert log.submit(1, cmd("loyalty", "enroll", "m", "r1").body()) is None
    assert log.submit(2, json.dumps({"type": "nope"})) is None and log.invalid == 1
    assert log.submit(3, cmd("loyalty", "enroll", "m", "r1").body()) is None and log.duplicates == 1


def test_a_timestamp_must_be_an_integer() -> None:
    body = json.loads(cmd("accounts", "open", "a", "r1").body())
    with pytest.raises(InvalidCommand, match="timestamp"):
        Command.parse(json.dumps({**body, "timestamp": "yesterday"}))
