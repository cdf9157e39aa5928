"""``lake up``: the embedded AWS plus the local runtime wired to our handlers.

moto in server mode on loopback, the lake's resources provisioned idempotently,
the event source mappings of ``template.yaml`` reproduced by the local runtime,
and a TTL sweeper. Runs until Ctrl-C or SIGTERM, then stops cleanly.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lake.aws.clients import Clients
from lake.aws.provision import Provisioned, provision
from lake.errors import LakeError
from lake.invocation import restore_environ
from lake.local import dashboard_server
from lake.local.embedded import EmbeddedAWS, TTLSweeper
from lake.local.faults import FAULT_NAMES, FaultInjector, FaultSpec, faults_path, install, middleware, parse_spec_arg
from lake.local.persist import StateStore
from lake.local.status import StatusReporter, queue_depth, status_path
from lake.settings import Settings
from lake.wiring import WIRING

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wiring:
    """One event source mapping of the lake: which handler reads which stream."""

    source: str  # "dynamodb" (every source table's stream) or "kinesis" (the lake's stream)
    function: str
    batch_size: int = 100
    name: str = ""


# The mappings template.yaml declares on AWS, from the one declaration of both (lake/wiring.py).
LAKE_WIRING = tuple(Wiring(f.trigger.source, f.handler, f.trigger.batch_size, f.name) for f in WIRING.functions)


def handler_exists(function: str) -> bool:
    module = function.partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _mapping(w: Wiring, arn: str, dlq_arn: str, name: str) -> Any:
    from lake.local.runtime import EventSourceMapping

    # As template.yaml, except MaximumBatchingWindowInSeconds: none locally, for latency.
    # Retries are AWS's defaults for stream sources: until the record expires, and locally
    # records do not expire, so an outage holds the shard and loses nothing; only records
    # the handler or the runtime cannot process at all go to the dead-letter queue.
    return EventSourceMapping(
        function=w.function, event_source_arn=arn, batch_size=w.batch_size, timeout_s=120.0,
        starting_position="TRIM_HORIZON", maximum_retry_attempts=-1, maximum_record_age_s=-1,
        bisect_batch_on_function_error=True, report_batch_item_failures=True,
        on_failure_destination=dlq_arn, name=name,
    )


@functools.cache
def _wiring(extra_functions: tuple[str, ...]) -> tuple[Wiring, ...]:
    # Looked up once per process: every table (and every table wired later) shares it.
    wiring = list(LAKE_WIRING) + [Wiring("dynamodb", f, 100, f.replace(":", ".")) for f in extra_functions]
    present = tuple(w for w in wiring if handler_exists(w.function))
    for w in wiring:
        if w not in present:
            log.info("handler %s not present: not wired", w.function)
    return present


def table_mappings(table: str, stream_arn: str, dlq_arn: str, extra_functions: tuple[str, ...] = (),
                   qualify: bool = True) -> list[Any]:
    """The mappings of one source table's stream (archiver, fan-out, and any extra handler)."""
    return [_mapping(w, stream_arn, dlq_arn, f"{w.name or w.function}@{table}" if qualify else w.name or w.function)
            for w in _wiring(extra_functions) if w.source == "dynamodb"]


def build_mappings(settings: Settings, prov: Provisioned, extra_functions: tuple[str, ...] = ()) -> list[Any]:
    """Event source mappings for every wired handler that exists (a stage not built yet is skipped).

    With one source table the mappings are named after the handler alone; with several,
    ``handler@table``: the name keys the runtime's stats and checkpoints.
    """
    qualify = len(prov.stream_arns) > 1
    mappings = []
    for table, arn in prov.stream_arns.items():
        mappings += table_mappings(table, arn, prov.dlq_arn, extra_functions, qualify)
    mappings += [_mapping(w, prov.kinesis_arn, prov.dlq_arn, w.name or w.function)
                 for w in _wiring(extra_functions) if w.source == "kinesis"]
    return mappings


class TableWatcher:
    """Wires the streams of tables created later (by any client), as `lake up` does at start,
    and drops the mappings of streams that are gone.

    On AWS one adds an event source mapping per stream; on the embedded AWS a user who
    creates a table with a stream expects its changes in the lake without a restart. It
    follows stream ARNs, not table names: a table deleted and created again has a new
    stream, wired again, and the old stream's mappings are removed, not retried forever.
    """

    def __init__(self, lake: EmbeddedLake, interval_s: float = 1.0) -> None:
        self.lake, self.interval_s = lake, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="table-watcher", daemon=True)
        assert lake.provisioned is not None
        # stream ARN -> (table, the ids of its mappings)
        self.wired: dict[str, tuple[str, list[str]]] = {
            arn: (table, [m.mapping_id for m in lake.mappings if m.event_source_arn == arn])
            for table, arn in lake.provisioned.stream_arns.items()
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def poll(self) -> list[str]:
        """Wire every new stream, drop the mappings of streams that are gone; return the tables wired."""
        lake = self.lake
        assert lake.clients is not None and lake.provisioned is not None and lake.runtime is not None
        ddb = lake.clients.dynamodb
        current: dict[str, str] = {}  # stream ARN -> table
        for page in ddb.get_paginator("list_tables").paginate():
            for table in page["TableNames"]:
                try:
                    desc = ddb.describe_table(TableName=table)["Table"]
                except ddb.exceptions.ResourceNotFoundException:
                    continue  # deleted since the listing
                arn = desc.get("LatestStreamArn")
                if arn and desc.get("StreamSpecification", {}).get("StreamEnabled", True):
                    current[arn] = table
        for arn in [a for a in self.wired if a not in current]:
            table, ids = self.wired.pop(arn)
            for mapping_id in ids:
                lake.runtime.remove_mapping(mapping_id)
            log.info("the stream of table %s is gone (%s): its mappings were removed", table, arn)
        added = []
        for arn, table in current.items():
            if arn in self.wired:
                continue
            ids = []
            for m in table_mappings(table, arn, lake.provisioned.dlq_arn, lake.extra_functions):
                lake.runtime.add_mapping(m)
                ids.append(m.mapping_id)
            self.wired[arn] = (table, ids)
            added.append(table)
            log.info("table %s has a new stream: wired to the lake (%s)", table, arn)
        return added

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception:  # a hiccup of the watcher must not stop `lake up`
                log.exception("watching for new tables failed")
class EmbeddedLake:
    """Embedded AWS + provisioned resources + local runtime, as one start/stop unit."""

    handler_processes = True  # handlers in worker processes (lake.local.runtime.process); False: in threads

    def __init__(self, settings: Settings, port: int | None = None, extra_functions: tuple[str, ...] = (),
                 ttl_interval_s: float | None = 1.0, poll_interval_s: float = 0.1,
                 watch_tables: bool = False, status_interval_s: float | None = 2.0,
                 persist: bool = False, snapshot_interval_s: float = 2.0,
                 faults: FaultSpec | str | None = None) -> None:
        self.base_settings = settings
        self.port = settings.port if port is None else port
        self.extra_functions = extra_functions
        self.ttl_interval_s = ttl_interval_s
        self.poll_interval_s = poll_interval_s
        # persist: the lake is kept in <state-dir>/aws with the runtime's checkpoints (lake/local/persist.py)
        self.state = StateStore(Path(settings.state_dir) / "aws", co_saved=[self.runtime_dir(settings)],
                                interval_s=snapshot_interval_s) if persist else None
        # --faults: injected by a middleware around moto and a wrapper around each invocation
        self.faults = FaultInjector(faults, faults_path(settings.state_dir)) if faults else None
        self.aws = EmbeddedAWS(port=self.port, state=self.state, wrap=middleware(self.faults) if self.faults else None)
        self.settings = settings
        self.clients: Clients | None = None
        self.provisioned: Provisioned | None = None
        self.runtime: Any = None
        self.sweeper: TTLSweeper | None = None
        self.mappings: list[Any] = []
        self.watch_tables = watch_tables
        self.watcher: TableWatcher | None = None
        self.status_interval_s = status_interval_s
        self.reporter: StatusReporter | None = None
        self._dlq_url: str | None = None
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> Settings:
        try:
            return self._start()
        except BaseException:
            self.stop()  # nothing left listening or polling when start fails halfway
            raise

    def _start(self) -> Settings:
        endpoint = self.aws.start()
        self.settings = self.base_settings.replace(endpoint_url=endpoint)
        # Handlers run in this process and resolve settings from the environment, as on Lambda;
        # what we change is put back by stop().
        env = self.settings.env()
        self._saved_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        self.clients = Clients(self.settings)
        self.provisioned = provision(self.settings, self.clients)
        if self.faults is not None:  # armed once the lake's resources exist
            install(self.faults)
            self.faults.arm()
        if self.ttl_interval_s:
            self.sweeper = TTLSweeper(self.settings.region, self.ttl_interval_s, state=self.state)
            self.sweeper.start()
        # Handlers given as module:function may live in the working directory, like a Lambda task root.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        self.mappings = build_mappings(self.settings, self.provisioned, self.extra_functions)
        if self.mappings:
            from lake.local.runtime import LocalRuntime

            # Checkpoints carry the identity of their stream: those of an earlier embedded
            # session's streams (same ARNs, sequence numbers from the start again) never apply.
            # Handlers run in worker processes, as Lambda runs them apart from the services:
            # this process (the embedded AWS) keeps a core to itself.
            self.runtime = LocalRuntime(self.clients, self.mappings, state_dir=self.runtime_dir(self.settings),
                                        poll_interval_s=self.poll_interval_s,
                                        handler_processes=self.handler_processes)
            self.runtime.start()
            if self.watch_tables:
                self.watcher = TableWatcher(self)
                self.watcher.start()
        if self.status_interval_s:
            self.reporter = StatusReporter(status_path(self.settings.state_dir), self.status,
                                           self.status_interval_s)
            self.reporter.start()
        return self.settings

    @staticmethod
    def runtime_dir(settings: Settings) -> Path:
        return Path(settings.state_dir) / "runtime"

    def status(self) -> dict[str, Any]:
        """What ``lake status`` shows: each mapping's state, lag, last error and counters, and the DLQ's depth."""
        depth: int | None = None
        if self.clients is not None and self.provisioned is not None:
            try:
                if self._dlq_url is None:
                    from lake.local.runtime.destination import queue_url

                    self._dlq_url = queue_url(self.clients, self.provisioned.dlq_arn)
                depth = queue_depth(self.clients, self._dlq_url)
            except LakeError as e:
                log.debug("dead-letter queue depth unknown: %s", e)
        return {"endpoint": self.settings.endpoint_url, "dlq_url": self._dlq_url, "dlq_depth": depth,
                "mappings": self.runtime.status() if self.runtime is not None else [],
                "saved": self.state.describe() if self.state is not None else None,
                "faults": self.faults.snapshot() if self.faults is not None else None}

    def wait_idle(self, timeout: float) -> bool:
        return True if self.runtime is None else bool(self.runtime.wait_idle(timeout))

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.runtime is not None:
            self.runtime.stop()
        if self.reporter is not None:
            self.reporter.stop()  # after the runtime: the last status shows it stopped
            self.reporter = None
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.faults is not None:
            install(None)
            self.faults.disarm()
        self.aws.stop()
        restore_environ(self._saved_env)
        self._saved_env = {}

    def __enter__(self) -> EmbeddedLake:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def describe_source(arn: str) -> str:
    """``arn:aws:dynamodb:…:table/orders/stream/…`` → ``orders (DynamoDB stream)``."""
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind == "table":
        return f"{rest.split('/')[0]} (DynamoDB stream)"
    return f"{rest} (Kinesis stream)" if kind == "stream" else resource


def connection_help(settings: Settings) -> str:
    url = settings.endpoint_url
    tables = ", ".join(settings.table_names)
    return "\n".join([
        f"Embedded AWS ready at {url}  (region {settings.region}; source tables: {tables})",
        "Point your tools at it:",
        f"  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID=testing "
        f"AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={settings.region}",
        f"  boto3.client('dynamodb', endpoint_url='{url}', region_name='{settings.region}',"
        " aws_access_key_id='testing', aws_secret_access_key='testing')",
        f"  aws --endpoint-url {url} dynamodb put-item --table-name {settings.table_names[0]} "
        "--item '{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"1\"}}'",
        f"  lake query --endpoint-url {url} 'SELECT * FROM changes LIMIT 10'",
        "Tables you create with a stream (NEW_AND_OLD_IMAGES) are wired to the lake too.",
        "Ctrl-C to stop.",
    ])


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("up", parents=parents, help="run the embedded AWS with the pipeline wired",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default 4566; 0 = any free)")
    p.add_argument("--function", action="append", default=[], metavar="MODULE:FUNCTION",
                   help="also wire this handler to every source table's stream (repeatable)")
    p.add_argument("--ephemeral", action="store_true",
                   help="keep nothing: the lake lives in memory and is gone on stop (default: kept in --state-dir)")
    p.add_argument("--no-watch", dest="watch", action="store_false",
                   help="don't wire tables created later with a stream (default: wire them)")
    p.add_argument("--faults", type=parse_spec_arg, metavar="SPEC",
                   help="inject faults at these rates, e.g. s3.5xx=0.02,kinesis.partial=0.05,poison=0.001,seed=7 "
                        "(faults: " + ", ".join(FAULT_NAMES) + "; counts in <state-dir>/faults.json)")
    p.set_defaults(func=run, default_verbosity=1)


def run(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    lake = EmbeddedLake(settings, port=args.port, extra_functions=tuple(args.function), watch_tables=args.watch,
                        persist=not args.ephemeral, faults=args.faults)
    lake.start()
    dashboard = dashboard_server.serve(lake.settings)
    if lake.aws.restored.get("from_snapshot") or lake.aws.restored.get("journaled_writes"):
        r = lake.aws.restored
        print(f"restored the lake from {settings.state_dir} in {r['seconds']:.2f} s "
              f"({len(r['services'])} services, {r['journaled_writes']} journaled writes)")
    try:
        print(connection_help(lake.settings))
        wired = sorted({f"{m.name} <- {describe_source(m.event_source_arn)}" for m in lake.mappings})
        for line in wired:
            print(f"  wired: {line}")
        # One machine-readable line for scripts and tests that start us on port 0.
        print(f"LAKE_ENDPOINT={lake.settings.endpoint_url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        print("stopping…", flush=True)
        dashboard.stop()
        lake.stop()
    return 0
