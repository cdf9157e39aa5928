"""The event-sourced domain, pure: commands in, events out, state folded from events.

Three microservices share one commands table (article 003: the key is the microservice, so
each has one ordered command log): ``accounts`` (open, deposit, withdraw, close),
``inventory`` (restock, reserve, release) and ``loyalty`` (enroll, earn, redeem). A command
becomes exactly one event, decided from the entity's current state (a withdrawal beyond the
balance is a ``WithdrawalRejected`` fact, not an error); state is only ever changed by
applying events. The same :func:`decide` and :func:`apply` serve the live stream processor,
the rebuild from the events table and the rebuild from the lake, which is why the three
states can be compared for equality.

No AWS here: DynamoDB JSON is converted by :func:`to_attr` / :func:`from_attr` for the flat
values this domain uses (strings, integers, booleans and maps of them).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

MICROSERVICES = ("accounts", "inventory", "loyalty")
COMMANDS: dict[str, tuple[str, ...]] = {
    "accounts": ("open", "deposit", "withdraw", "close"),
    "inventory": ("restock", "reserve", "release"),
    "loyalty": ("enroll", "earn", "redeem"),
}
TIERS = ((0, "bronze"), (5_000, "silver"), (20_000, "gold"))  # lifetime points → tier

Value = str | int | bool
State = dict[str, Value]


class InvalidCommand(ValueError):
    """A request that is not a command of this domain (the API answers 400)."""


@dataclass(frozen=True)
class Command:
    """A modification request, as a client sends it (the article's request body)."""

    microservice: str  # the article's "type"
    command: str
    entity: str
    request_id: str  # unique per request: a client's retry sends the same one again
    user: str
    timestamp: int  # the client's time, epoch milliseconds
    args: Mapping[str, Value] = field(default_factory=dict)

    def body(self) -> str:
        """The JSON body of the request (what the commands table keeps as ``payload``)."""
        return json.dumps({"type": self.microservice, "command": self.command, "entity": self.entity,
                           "id": self.request_id, "user": self.user, "timestamp": self.timestamp,
                           "args": dict(self.args)}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, body: str) -> Command:
        """A request body → Command (raises :class:`InvalidCommand`)."""
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as e:
            raise InvalidCommand(f"not JSON: {e}") from None
        if not isinstance(doc, dict):
            raise InvalidCommand("not a JSON object")
        ms, name = doc.get("type"), doc.get("command")
        if not isinstance(ms, str) or ms not in COMMANDS:
            raise InvalidCommand(f"unknown microservice {ms!r}")
        if name not in COMMANDS[ms]:
            raise InvalidCommand(f"{ms} has no command {name!r}")
        for f in ("entity", "id", "user"):
            if not isinstance(doc.get(f), str) or not doc[f]:
                raise InvalidCommand(f"{f} must be a non-empty string")
        args = doc.get("args") or {}
        if not isinstance(args, dict) or not all(isinstance(v, str | int) for v in args.values()):
            raise InvalidCommand("args must be an object of strings and integers")
        timestamp = doc.get("timestamp", 0)
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise InvalidCommand("timestamp must be an integer (epoch milliseconds)")
        return cls(ms, name, doc["entity"], doc["id"], doc["user"], timestamp, args)


@dataclass(frozen=True)
class Event:
    """What happened: the log entry at ``sequence`` of ``microservice``'s event log."""

    microservice: str
    sequence: int
    entity: str
    type: str
    request_id: str
    user: str
    timestamp: int
    data: Mapping[str, Value] = field(default_factory=dict)


# -- decide: command + state → event -----------------------------------------------------------------

def _amount(cmd: Command, name: str = "amount") -> int:
    v = cmd.args.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise InvalidCommand(f"{cmd.command}: {name} must be a positive integer")
    return v


def tier_of(lifetime: int) -> str:
    return [name for threshold, name in TIERS if lifetime >= threshold][-1]


def _decide_accounts(state: State, cmd: Command) -> tuple[str, dict[str, Value]]:
    status = state.get("status")
    if cmd.command == "open":
        if status is not None:
            return "Rejected", {"reason": f"account is {status}"}
        return "AccountOpened", {"owner": str(cmd.args.get("owner", cmd.user))}
    if status != "open":
        return "Rejected", {"reason": f"account is {status or 'not open'}"}
    balance = int(state.get("balance", 0))
    if cmd.command == "deposit":
        return "Deposited", {"amount": _amount(cmd)}
    if cmd.command == "withdraw":
        amount = _amount(cmd)
        if amount > balance:
            return "WithdrawalRejected", {"amount": amount, "balance": balance}
        return "Withdrawn", {"amount": amount}
    return "AccountClosed", {"paid_out": balance}  # close


def _decide_inventory(state: State, cmd: Command) -> tuple[str, dict[str, Value]]:
    on_hand, reserved = int(state.get("on_hand", 0)), int(state.get("reserved", 0))
    qty = _amount(cmd, "qty")
    if cmd.command == "restock":
        return "Restocked", {"qty": qty}
    if cmd.command == "reserve":
        if qty > on_hand - reserved:
            return "ReservationRejected", {"qty": qty, "available": on_hand - reserved}
        return "Reserved", {"qty": qty, "order": str(cmd.args.get("order", ""))}
    return "Released", {"qty": min(qty, reserved)}  # release


def _decide_loyalty(state: State, cmd: Command) -> tuple[str, dict[str, Value]]:
    if cmd.command == "enroll":
        if "tier" in state:
            return "Rejected", {"reason": "already enrolled"}
        return "MemberEnrolled", {"tier": "bronze"}
    if "tier" not in state:
        return "Rejected", {"reason": "not enrolled"}
    points = _amount(cmd, "points")
    if cmd.command == "earn":
        lifetime = int(state.get("lifetime", 0)) + points
        return "PointsEarned", {"points": points, "tier": tier_of(lifetime)}
    if points > int(state.get("points", 0)):
        return "RedemptionRejected", {"points": points, "balance": int(state.get("points", 0))}
    return "PointsRedeemed", {"points": points}  # redeem


_DECIDERS = {"accounts": _decide_accounts, "inventory": _decide_inventory, "loyalty": _decide_loyalty}


def decide(state: State, cmd: Command, sequence: int) -> Event:
    """The event a command produces at ``sequence`` given the entity's state (never raises for a
    command that parsed: a command the domain refuses is a ``Rejected`` event, so the log has no gap)."""
    try:
        kind, data = _DECIDERS[cmd.microservice](state, cmd)
    except InvalidCommand as e:
        kind, data = "Rejected", {"reason": str(e)}
    return Event(cmd.microservice, sequence, cmd.entity, kind, cmd.request_id, cmd.user, cmd.timestamp, data)


# -- apply: state + event → state --------------------------------------------------------------------

def apply(state: State, event: Event) -> State:
    """The entity's state after ``event`` (a new dict; ``last_sequence`` records the event applied)."""
    s = dict(state)
    d = event.data
    t = event.type
    if t == "AccountOpened":
        s.update(status="open", owner=d["owner"], balance=0)
    elif t == "Deposited":
        s["balance"] = int(s["balance"]) + int(d["amount"])
    elif t == "Withdrawn":
        s["balance"] = int(s["balance"]) - int(d["amount"])
    elif t == "AccountClosed":
        s.update(status="closed", balance=0)
    elif t == "Restocked":
        s["on_hand"] = int(s.get("on_hand", 0)) + int(d["qty"])
        s.setdefault("reserved", 0)
    elif t == "Reserved":
        s["reserved"] = int(s.get("reserved", 0)) + int(d["qty"])
    elif t == "Released":
        s["reserved"] = int(s.get("reserved", 0)) - int(d["qty"])
    elif t == "MemberEnrolled":
        s.update(tier=d["tier"], points=0, lifetime=0)
    elif t == "PointsEarned":
        s.update(points=int(s["points"]) + int(d["points"]), lifetime=int(s["lifetime"]) + int(d["points"]),
                 tier=d["tier"])
    elif t == "PointsRedeemed":
        s["points"] = int(s["points"]) - int(d["points"])
    # Rejections change nothing but are still the entity's latest event.
    s["events"] = int(s.get("events", 0)) + 1
    s["last_sequence"] = event.sequence
    return s


Key = tuple[str, str]  # (microservice, entity)


def fold(events: Iterable[Event], states: dict[Key, State] | None = None) -> dict[Key, State]:
    """Apply events (each microservice's in its sequence order) to ``states`` (in place) and return it."""
    states = {} if states is None else states
    for e in events:
        k = (e.microservice, e.entity)
        states[k] = apply(states.get(k, {}), e)
    return states


class CommandLog:
    """The microservice logic over an ordered command log, in memory: dedupe by request id, decide,
    apply. The lake's replay feeds it the archived commands table (the rebuild from the lake);
    the live processor does the same with its state in DynamoDB."""

    def __init__(self) -> None:
        self.states: dict[Key, State] = {}
        self.seen: dict[tuple[str, str], int] = {}  # (microservice, request id) → sequence of its event
        self.events: list[Event] = []
        self.duplicates = 0
        self.invalid = 0
        self.last_sequence: dict[str, int] = {}

    def submit(self, sequence: int, body: str) -> Event | None:
        """Handle the command at ``sequence``; None for a duplicate request, a stale or an invalid one."""
        try:
            cmd = Command.parse(body)
        except InvalidCommand:
            self.invalid += 1
            return None
        if sequence <= self.last_sequence.get(cmd.microservice, 0):
            return None  # a redelivered stream record: already handled
        self.last_sequence[cmd.microservice] = sequence
        if (cmd.microservice, cmd.request_id) in self.seen:
            self.duplicates += 1
            return None
        k = (cmd.microservice, cmd.entity)
        event = decide(self.states.get(k, {}), cmd, sequence)
        self.states[k] = apply(self.states.get(k, {}), event)
        self.seen[(cmd.microservice, cmd.request_id)] = sequence
        self.events.append(event)
        return event


# -- DynamoDB JSON for this domain's values ----------------------------------------------------------

def to_attr(value: Value | Mapping[str, Value]) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {k: to_attr(v) for k, v in value.items()}}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")


def from_attr(attr: Mapping[str, Any]) -> Any:
    (tag, v), = attr.items()
    if tag == "S" or tag == "BOOL":
        return v
    if tag == "N":
        return int(v)
    if tag == "M":
        return {k: from_attr(x) for k, x in v.items()}
    raise ValueError(f"unexpected DynamoDB type {tag} in this domain")


def item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in values.items()}


def plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attr(v) for k, v in values.items()}


def event_item(e: Event) -> dict[str, Any]:
    """The events table's item of an event (partition microservice, sort sequence)."""
    return item({"microservice": e.microservice, "sequence": e.sequence, "entity": e.entity, "type": e.type,
                 "request_id": e.request_id, "user": e.user, "timestamp": e.timestamp, "data": dict(e.data)})


def event_of(attrs: Mapping[str, Any]) -> Event:
    v = plain(attrs)
    return Event(v["microservice"], v["sequence"], v["entity"], v["type"], v["request_id"], v["user"],
                 v["timestamp"], v.get("data", {}))


# -- a realistic workload ----------------------------------------------------------------------------

def workload(seed: int, n: int, entities: int = 12, users: int = 7, start_ms: int = 1_733_000_000_000
             ) -> Iterator[Command]:
    """``n`` varied commands over ``entities`` entities per microservice, seeded: accounts are opened
    before they are used (mostly), amounts vary, some withdrawals and redemptions overdraw, some
    accounts close; about one command in ten goes to an entity that does not exist yet."""
    rng = random.Random(seed)
    ids = {ms: [f"{ms[:3]}-{i:03d}" for i in range(entities)] for ms in MICROSERVICES}
    opened: set[tuple[str, str]] = set()
    t = start_ms
    for i in range(n):
        ms = rng.choice(MICROSERVICES)
        entity = rng.choice(ids[ms])
        t += rng.randint(5, 2_000)
        user = f"user-{rng.randrange(users):02d}"
        args: dict[str, Value]
        first = {"accounts": "open", "inventory": "restock", "loyalty": "enroll"}[ms]
        if (ms, entity) not in opened and rng.random() < 0.9:
            name, args = first, {}
            opened.add((ms, entity))
        else:
            name = rng.choices(COMMANDS[ms], weights={
                "accounts": (1, 6, 4, 0.3), "inventory": (3, 5, 2), "loyalty": (1, 6, 3)}[ms])[0]
            args = {}
        if name in ("deposit", "withdraw"):
            args = {"amount": rng.choice((500, 1_000, 2_500, 4_999, 12_000, 75_000)) + rng.randrange(100)}
        elif name == "open":
            args = {"owner": f"customer-{rng.randrange(500):03d}"}
        elif name in ("restock", "reserve", "release"):
            args = {"qty": rng.randint(1, 40)}
            if name == "reserve":
                args["order"] = f"ord-{rng.randrange(10**6):06d}"
        elif name in ("earn", "redeem"):
            args = {"points": rng.randint(10, 4_000)}
        yield Command(ms, name, entity, f"req-{seed}-{i:05d}-{rng.randrange(16**6):06x}", user, t, args)
