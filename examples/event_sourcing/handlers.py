"""The event-sourcing example's Lambda handlers and its small DynamoDB adapter.

``add_command``: the article's API handler: one ``UpdateItem`` on the commands table per
request, ``SET id = if_not_exists(id, :initial) + :inc, payload = :payload`` on the item of the
command's microservice. The atomic counter gives the command its place in the microservice's
log, and the table's stream delivers the commands of one microservice in that order.

``process_commands``: the stream processor (a DynamoDB stream trigger on the commands table).
Per command, three conditional puts: the request id's marker (a client's retry of the same
request, which the counter numbered anew, finds the marker of another sequence and writes no
second event), the event (``attribute_not_exists``: a redelivered stream record writes nothing
twice) and the entity's new state (only if older than this event). A record that fails for a
transient reason is reported with every later one (``batchItemFailures``: Lambda resumes at
the first), and what was already written is skipped on redelivery by the same conditions.

``StateRebuilder``: a handler object for ``lake replay`` (``Target.python(StateRebuilder())``, or
the events of ``lake replay file:…``) that folds the archived commands through the same domain
logic, in memory.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    item,
    plain,
)
from lake.aws.clients import AWS_ERRORS, HandlerRuntime, error_code, translate
from lake.errors import TransientError

log = logging.getLogger(__name__)

_runtime = HandlerRuntime()
configure = _runtime.configure


@dataclass(frozen=True)
class Tables:
    """The app's tables, from the function's environment (``${table:...}`` resolved by the wiring)."""

    commands: str
    events: str
    entities: str
    requests: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tables:
        env = os.environ if environ is None else environ
        return cls(env["COMMANDS_TABLE"], env["EVENTS_TABLE"], env["ENTITIES_TABLE"], env["REQUESTS_TABLE"])


# -- the producer's side -----------------------------------------------------------------------------

def submit(ddb: Any, commands_table: str, cmd: Command) -> int:
    """Write a command (the article's UpdateItem) and return the sequence the counter gave it."""
    try:
        resp = ddb.update_item(
            TableName=commands_table,
            Key={"microservice": {"S": cmd.microservice}},
            UpdateExpression="SET id = if_not_exists(id, :initial) + :inc, payload = :payload",
            ExpressionAttributeValues={":inc": {"N": "1"}, ":initial": {"N": "0"}, ":payload": {"S": cmd.body()}},
            ReturnValues="UPDATED_NEW",
        )
    except AWS_ERRORS as e:
        raise translate(e, "table", commands_table) from e
    return int(resp["Attributes"]["id"]["N"])


def add_command(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """API Gateway (proxy) handler: validate the body, write the command, answer its sequence."""
    _, clients = _runtime.get()
    try:
        cmd = Command.parse(str(event.get("body") or ""))
    except InvalidCommand as e:
        return {"statusCode": 400, "headers": {"Content-Type": "text/plain"}, "body": f"invalid command: {e}"}
    sequence = submit(clients.dynamodb, Tables.from_env().commands, cmd)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"microservice": cmd.microservice, "sequence": sequence})}


# -- the stream processor ----------------------------------------------------------------------------

class EventStore:
    """The processor's DynamoDB side: an entity's state in; request marker, event and state out,
    each a conditional put, in that order (see :meth:`record`)."""

    def __init__(self, ddb: Any, tables: Tables) -> None:
        self.ddb, self.tables = ddb, tables

    def state(self, microservice: str, entity: str) -> State:
        try:
            got = self.ddb.get_item(TableName=self.tables.entities, ConsistentRead=True,
                                    Key=item({"microservice": microservice, "entity": entity}))
        except AWS_ERRORS as e:
            raise translate(e, "table", self.tables.entities) from e
        attrs = plain(got.get("Item") or {})
        attrs.pop("microservice", None)
        attrs.pop("entity", None)
        return attrs

    def record(self, event: Event, state: State) -> bool:
        """Write ``event`` and the entity's new ``state``; False if its request id already has an
        event at another sequence (a duplicate request: nothing written).

        Three conditional puts rather than one transaction, and a crash between them is repaired
        by the redelivery: the request marker names its sequence, so the redelivered command finds
        its own marker and goes on; decide() is pure, so it produces the same event, whose put is
        then refused as already there; the state's put is refused once it is as new as the event.
        One processor per shard, and one shard per microservice's commands, so nothing races.
        (The embedded AWS's TransactWriteItems also deep-copies every table it touches, streams
        included: a cost that grows with the log.)
        """
        ms, seq = event.microservice, {":seq": {"N": str(event.sequence)}}
        if not self._put(self.tables.requests,
                         item({"microservice": ms, "request_id": event.request_id, "sequence": event.sequence}),
                         "attribute_not_exists(request_id) OR #s = :seq", seq):
            return False
        self._put(self.tables.events, event_item(event), "attribute_not_exists(#s)", None)
        self._put(self.tables.entities, item({"microservice": ms, "entity": event.entity, **state}),
                  "attribute_not_exists(last_sequence) OR last_sequence < :seq", seq)
        return True

    def _put(self, table: str, attrs: dict[str, Any], condition: str, values: dict[str, Any] | None) -> bool:
        """A conditional put; False when the condition refused it."""
        extra: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        if "#s" in condition:
            extra["ExpressionAttributeNames"] = {"#s": "sequence"}
        try:
            self.ddb.put_item(TableName=table, Item=attrs, ConditionExpression=condition, **extra)
        except AWS_ERRORS as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise translate(e, "table", table) from e
        return True


@dataclass
class Outcome:
    written: int = 0
    duplicates: int = 0  # a request id seen before: no second event
    redelivered: int = 0  # the event was already written (a retried batch, a replay)
    invalid: int = 0
    failures: list[str] = field(default_factory=list)  # SequenceNumbers to redeliver (batchItemFailures)

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failures]}


def process(store: EventStore, records: Sequence[Mapping[str, Any]]) -> Outcome:
    """Handle a batch of commands-table stream records in order; on a transient failure report
    that record and every later one (they are redelivered from the first, in order)."""
    out = Outcome()
    states: dict[Key, State] = {}  # the entities this batch read or wrote, as they are now
    for i, record in enumerate(records):
        image = (record.get("dynamodb") or {}).get("NewImage")
        if record.get("eventName") == "REMOVE" or not image or "payload" not in image:
            continue
        try:
            handle_command(store, states, int(image["id"]["N"]), image["payload"]["S"], out)
        except TransientError as e:  # report and let Lambda redeliver (a bug fails the whole batch)
            log.warning("command at %s failed: %s", record["dynamodb"].get("SequenceNumber"), e)
            out.failures = [r["dynamodb"]["SequenceNumber"] for r in records[i:]]
            break
    return out


def handle_command(store: EventStore, states: dict[Key, State], sequence: int, body: str, out: Outcome) -> None:
    try:
        cmd = Command.parse(body)
    except InvalidCommand as e:  # the API validates, so only a foreign writer gets here
        log.warning("sequence %d: not a command (%s): skipped", sequence, e)
        out.invalid += 1
        return
    key = (cmd.microservice, cmd.entity)
    if key not in states:
        states[key] = store.state(*key)
    state = states[key]
    if int(state.get("last_sequence", 0)) >= sequence:
        out.redelivered += 1
        return
    event = decide(state, cmd, sequence)
    new = apply(state, event)
    if store.record(event, new):
        states[key] = new
        out.written += 1
    else:
        out.duplicates += 1


def process_commands(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda: the commands table's stream → the ordered events table."""
    _, clients = _runtime.get()
    out = process(EventStore(clients.dynamodb, Tables.from_env()), event.get("Records") or [])
    log.info("events written %d, duplicates %d, redelivered %d, invalid %d, failed %d",
             out.written, out.duplicates, out.redelivered, out.invalid, len(out.failures))
    return out.response()


# -- reading state back ------------------------------------------------------------------------------

def _scan(ddb: Any, table: str) -> list[dict[str, Any]]:
    try:
        return [i for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
                for i in page["Items"]]
    except AWS_ERRORS as e:
        raise translate(e, "table", table) from e


def events_of(ddb: Any, events_table: str, microservice: str) -> list[Event]:
    """One microservice's event log, in sequence order (a Query on the partition)."""
    try:
        pages = ddb.get_paginator("query").paginate(
            TableName=events_table, ConsistentRead=True, KeyConditionExpression="microservice = :m",
            ExpressionAttributeValues={":m": {"S": microservice}})
        return [event_of(i) for page in pages for i in page["Items"]]
    except AWS_ERRORS as e:
        raise translate(e, "table", events_table) from e


def live_state(ddb: Any, entities_table: str) -> dict[Key, State]:
    """The entities table: the state snapshots the processor keeps."""
    out: dict[Key, State] = {}
    for i in _scan(ddb, entities_table):
        v = plain(i)
        out[(v.pop("microservice"), v.pop("entity"))] = v
    return out


def state_from_events(ddb: Any, events_table: str, microservices: Sequence[str]) -> dict[Key, State]:
    states: dict[Key, State] = {}
    for ms in microservices:
        fold(events_of(ddb, events_table, ms), states)
    return states


class StateRebuilder:
    """A Lambda-style handler for ``lake replay``: the archived commands table's changes, in stream
    order, through the microservices' logic in memory (:class:`CommandLog`)."""

    def __init__(self) -> None:
        self.log = CommandLog()
        self.records = 0

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        for record in event["Records"]:
            self.records += 1
            image = (record.get("dynamodb") or {}).get("NewImage")
            if record.get("eventName") != "REMOVE" and image and "payload" in image:
                self.log.submit(int(image["id"]["N"]), image["payload"]["S"])
        return {"batchItemFailures": []}
