"""``lake example event_sourcing``: clients send commands, the stream processor keeps an ordered,
idempotent event log, and the state is rebuilt three ways that must agree.

Four clients send a seeded workload of varied commands (three microservices, a dozen entities
each, random amounts) through the API handler, concurrently; some requests are sent twice (a
client's retry: the counter numbers the retry anew, the processor must write no second event),
and one invalid request is refused by the API. Then:

- the events table holds, per microservice, exactly one event per request, at the sequence its
  first submission got, in sequence order;
- ``lake replay`` feeds the archived commands table back into the live processor: no event is
  written twice;
- ``lake replay`` (the command, to a file) gives the archived commands to an in-memory rebuild;
  the state folded from the events table, that rebuild and the live ``entities`` table are equal;
- the lake's ``changes`` table holds every change of the app's archived tables.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from examples.event_sourcing.domain import MICROSERVICES, Command, workload
from examples.event_sourcing.handlers import (
    StateRebuilder,
    add_command,
    events_of,
    live_state,
    process_commands,
    state_from_events,
)
from lake.query.engine import engine_for
from lake.replay import ReplayOptions, Selection, Target, replay

if TYPE_CHECKING:
    from lake.local.apps import LocalApp

SEED = 3
COMMANDS = 120
CLIENTS = 4
RETRY_RATE = 0.06  # requests a client sends twice


def send(cmd_body: str) -> dict[str, Any]:
    """One request through the API handler (API Gateway's proxy event shape)."""
    reply = add_command({"body": cmd_body, "httpMethod": "POST", "path": "/command"})
    return {"status": reply["statusCode"], **(json.loads(reply["body"]) if reply["statusCode"] == 200 else {})}


# The embedded AWS (moto) applies an UpdateItem as a read and a write without a lock, so two
# concurrent increments of one counter can both return the same value (DynamoDB's are atomic).
# Until the embedded AWS serialises writes to an item, the clients take turns for the one call.
_EMBEDDED_UPDATE_NOT_ATOMIC = threading.Lock()


def submit_all(commands: list[Command], seed: int) -> tuple[dict[str, int], int]:
    """Send the commands from CLIENTS threads (an entity's commands from one client, in order),
    some twice; returns each request id's first sequence and the number of retries sent."""
    rng = random.Random(seed)
    retried = {c.request_id for c in commands if rng.random() < RETRY_RATE}
    per_client: list[list[Command]] = [[] for _ in range(CLIENTS)]
    for c in commands:
        per_client[sum(map(ord, c.entity)) % CLIENTS].append(c)
    first: dict[str, int] = {}
    lock = threading.Lock()
    errors: list[str] = []

    def client(cmds: list[Command]) -> None:
        for c in cmds:
            with _EMBEDDED_UPDATE_NOT_ATOMIC:
                got = send(c.body())
            if got["status"] != 200:
                errors.append(f"{c.request_id}: {got}")
                continue
            with lock:
                first.setdefault(c.request_id, got["sequence"])
            if c.request_id in retried:
                with _EMBEDDED_UPDATE_NOT_ATOMIC:
                    send(c.body())  # the retry of a request whose answer the client "lost"

    threads = [threading.Thread(target=client, args=(cmds,)) for cmds in per_client]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"the API refused valid commands: {errors[:3]}")
    return first, len(retried)


def check_log(app: LocalApp, commands: list[Command], first: dict[str, int]) -> dict[str, Any]:
    """The events table against what the clients were answered."""
    ddb = app.clients.dynamodb
    events_table = app.resolve("${table:events}")
    by_request = {c.request_id: c for c in commands}
    problems: list[str] = []
    events = 0
    for ms in MICROSERVICES:
        log = events_of(ddb, events_table, ms)
        events += len(log)
        seqs = [e.sequence for e in log]
        if seqs != sorted(set(seqs)):
            problems.append(f"{ms}: sequences not strictly increasing")
        got = {e.request_id: e.sequence for e in log}
        if len(got) != len(log):
            problems.append(f"{ms}: a request id has two events")
        want = {r: s for r, s in first.items() if by_request[r].microservice == ms}
        if got != want:
            problems.append(f"{ms}: {len(set(got.items()) ^ set(want.items()))} events not at their request's "
                            "first sequence")
        counter = ddb.get_item(TableName=app.resolve("${table:commands}"), ConsistentRead=True,
                               Key={"microservice": {"S": ms}})["Item"]["id"]["N"]
        if seqs and int(counter) < seqs[-1]:
            problems.append(f"{ms}: counter {counter} behind the log")
    return {"events": events, "log_problems": problems}


def replay_into_processor(app: LocalApp, commands_table: str) -> dict[str, Any]:
    """The archived commands back through the live processor: an idempotent processor writes nothing."""
    report = replay(app.settings, Selection(tables=(commands_table,)),
                    Target.python(process_commands, "examples.event_sourcing.handlers:process_commands"),
                    ReplayOptions(batch_size=100, checkpoint=False, max_retries=0), clients=app.clients)
    return {"replayed": report.events_sent, "replay_failures": len(report.failures)}


def rebuild_from_lake(app: LocalApp, commands_table: str, workdir: Path) -> tuple[StateRebuilder, dict[str, Any]]:
    """``lake replay file:…jsonl --table commands``, then the file's events folded in memory."""
    out = workdir / "commands.jsonl"
    cmd = [sys.executable, "-m", "lake.cli", "replay", f"file:{out}", "--table", commands_table,
           "--state-dir", str(workdir / "state"), "--json", "--no-progress"]
    env = {**os.environ, **app.settings.env()}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"lake replay failed ({done.returncode}): {done.stderr[-2000:]}")
    rebuilder = StateRebuilder()
    for line in out.read_text().splitlines():
        rebuilder(json.loads(line))
    return rebuilder, {"lake_replay": json.loads(done.stdout).get("events_sent")}


def lake_changes(app: LocalApp, tables: list[str]) -> dict[str, int]:
    engine = engine_for(app.settings, "local", app.clients)
    rows = engine.query("SELECT table_name, count(DISTINCT event_id) AS n FROM changes GROUP BY table_name")
    counts = {r["table_name"]: int(r["n"]) for r in rows.to_pylist()}
    return {t: counts.get(t, 0) for t in tables}


def run(app: LocalApp, say: Callable[[str], None]) -> dict[str, Any]:
    commands = list(workload(SEED, COMMANDS))
    say(f"{len(commands)} commands for {', '.join(MICROSERVICES)} from {CLIENTS} clients, some sent twice")
    t0 = time.monotonic()
    first, retries = submit_all(commands, SEED)
    invalid = send(json.dumps({"type": "billing", "command": "refund", "entity": "x", "id": "r", "user": "u"}))
    t1 = time.monotonic()
    idle = app.wait_idle(timeout_s=120)
    t2 = time.monotonic()
    say(f"sent in {t1 - t0:.1f} s; processed and archived {t2 - t1:.1f} s later")
    facts: dict[str, Any] = {"commands": len(commands), "retries_sent": retries, "idle": idle,
                             "seconds": {"send": round(t1 - t0, 1), "drain": round(t2 - t1, 1)},
                             "invalid_request_status": invalid["status"]}
    facts.update(check_log(app, commands, first))
    say(f"{facts['events']} events, one per request; problems: {facts['log_problems'] or 'none'}")

    ddb = app.clients.dynamodb
    names = {n: app.resolve(f"${{table:{n}}}") for n in ("commands", "events", "entities")}
    archived = [names["commands"], names["events"]]
    facts.update(replay_into_processor(app, names["commands"]))
    after = sum(len(events_of(ddb, names["events"], ms)) for ms in MICROSERVICES)
    facts["events_after_replay"] = after
    say(f"replayed {facts['replayed']} archived commands into the processor: {after - facts['events']} new events")
    t3 = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="event-sourcing-") as tmp:
        rebuilder, replayed = rebuild_from_lake(app, names["commands"], Path(tmp))
    facts.update(replayed)
    t4 = time.monotonic()
    from_events = state_from_events(ddb, names["events"], MICROSERVICES)
    from_lake = rebuilder.log.states
    live = live_state(ddb, names["entities"])
    facts.update(
        entities=len(live),
        duplicates_in_lake_rebuild=rebuilder.log.duplicates,
        state_from_events_equals_live=from_events == live,
        state_from_lake_equals_live=from_lake == live,
        rebuilt_event_count=len(rebuilder.log.events),
    )
    say(f"state of {len(live)} entities: from events == live: {from_events == live}; "
        f"from the lake (lake replay) == live: {from_lake == live}")
    facts["lake_changes"] = lake_changes(app, archived)
    facts["seconds"].update(replay_into_processor=round(t3 - t2, 1), lake_replay=round(t4 - t3, 1),
                            checks=round(time.monotonic() - t4, 1))
    facts["ok"] = bool(
        idle and not facts["log_problems"] and facts["events"] == len(first) == len(commands)
        and facts["events_after_replay"] == facts["events"] and facts["replay_failures"] == 0
        and facts["invalid_request_status"] == 400
        and facts["state_from_events_equals_live"] and facts["state_from_lake_equals_live"]
        and facts["rebuilt_event_count"] == facts["events"] and facts["duplicates_in_lake_rebuild"] == retries
        and facts["lake_changes"][names["commands"]] == len(commands) + retries
        and facts["lake_changes"][names["events"]] == facts["events"]
    )
    return facts
