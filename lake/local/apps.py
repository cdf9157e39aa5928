"""An :class:`lake.apps.App` wired on the embedded stack: its resources created, its triggers run.

``LocalApp(app, lake).start()`` creates every declared resource on the lake's embedded AWS
(idempotently), exports each function's environment (handlers run in this process, as the
lake's own do), then starts the triggers:

* stream triggers (DynamoDB streams, the lake's Kinesis stream) on a runtime of the app's
  own (:mod:`lake.local.runtime`, handlers in threads of this process);
* SQS event source mappings and the hidden-queue deliveries (SNS, S3, EventBridge → Lambda or
  Step Functions) in :mod:`lake.local.triggers`;
* schedule rules on the app's clock.

What moto does itself is left to it: S3 → SNS/SQS/EventBridge, SNS → SQS (filter policies),
EventBridge → SQS, SQS redrive to a dead-letter queue and FIFO deduplication. What it does not
is supplied: Lambda and Step Functions targets (hidden queues), schedules, FIFO order when two
messages of a group come back together, the content-based deduplication id of a FIFO topic,
a distinct id for each S3 event sent to EventBridge.

``lake example <name>`` (:func:`run_example`) runs an example's scenario on a fresh lake.

Over 500 lines on purpose (ARCHITECTURE rule 7): creating an app's resources, resolving its
references and starting its triggers are one wiring, read together; the triggers themselves
live in ``lake/local/triggers/``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lake.apps import (
    REFERENCE,
    App,
    BucketEvents,
    Function,
    KinesisEvents,
    Notification,
    Queue,
    QueueEvents,
    RuleEvents,
    StreamEvents,
    TopicEvents,
)
from lake.aws.clients import Clients
from lake.aws.errors import AWS_ERRORS, error_code
from lake.clock import SYSTEM_CLOCK, Clock
from lake.errors import ConfigError
from lake.invocation import ACCOUNT_ID, resolve_handler, restore_environ
from lake.local.triggers.base import FunctionTarget, QueuePoller, TriggerStats
from lake.local.triggers.fifo_topics import patch_fifo_topic_deduplication
from lake.local.triggers.hidden import HiddenQueue, RuleDispatch, RuleTarget, hidden_queue_name, sns_event
from lake.local.triggers.schedule import Schedule, parse_schedule
from lake.local.triggers.sqs import SqsMapping
from lake.settings import Settings

if TYPE_CHECKING:
    from lake.local.up import EmbeddedLake

log = logging.getLogger("lake.local.apps")

HIDDEN_VISIBILITY_S = 5  # a hidden queue's message whose delivery failed comes back after this


class LocalApp:
    """An App (lake/apps.py) wired on a started EmbeddedLake (lake/local/up.py)."""

    def __init__(self, app: App, lake: EmbeddedLake, clock: Clock = SYSTEM_CLOCK,
                 poll_interval_s: float = 0.05) -> None:
        app.validate()
        if lake.clients is None:
            raise ConfigError("LocalApp needs a started EmbeddedLake")
        self.app, self.lake, self.clock = app, lake, clock
        self.poll_interval_s = poll_interval_s
        self.clients: Clients = lake.clients
        self.settings: Settings = lake.settings
        self.region = self.settings.region
        # physical identities, filled by start()
        self.queue_urls: dict[str, str] = {}
        self.queue_arns: dict[str, str] = {}
        self.topic_arns: dict[str, str] = {}
        self.stream_arns: dict[str, str] = {}
        self.state_machine_arns: dict[str, str] = {}
        self.rule_arns: dict[str, str] = {}
        self.functions: dict[str, FunctionTarget] = {}
        self.pollers: list[QueuePoller] = []
        self.schedules: list[Schedule] = []
        self.dispatches: dict[str, RuleDispatch] = {}
        self.runtime: Any = None  # the app's stream runtime (lake.local.runtime.LocalRuntime)
        self._saved_env: dict[str, str | None] = {}
        self._schedule_lock = threading.Lock()
        self._schedule_stats: dict[str, TriggerStats] = {}
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self.started = False

    # -- references --------------------------------------------------------------------------
    def resolve(self, text: str) -> str:
        """``text`` with every ``${kind:name}`` reference replaced by the physical value."""
        def one(m: Any) -> str:
            kind, name = m["kind"], m["name"] or ""
            try:
                if kind in ("table", "bucket"):
                    return str(name)
                if kind == "table-stream":
                    return self.stream_arns.get(name) or self._stream_arn(name)
                if kind == "queue":
                    return self.queue_urls[name]
                if kind == "queue-arn":
                    return self.queue_arns[name]
                if kind == "topic":
                    return self.topic_arns[name]
                if kind == "state-machine":
                    return self.state_machine_arns[name]
                if kind == "lake-stream":
                    return self.settings.kinesis_stream
            except KeyError:
                raise ConfigError(f"app {self.app.name}: {m[0]} is not created (start the app first)") from None
            raise ConfigError(f"app {self.app.name}: unknown reference {m[0]}")

        return REFERENCE.sub(one, text)

    # -- start / stop ------------------------------------------------------------------------
    def start(self) -> LocalApp:
        if self.started:
            return self
        # Started again after stop(): everything is made anew (resources exist: created idempotently).
        self.functions, self.pollers, self.schedules, self.dispatches, self.runtime = {}, [], [], {}, None
        self._stop.clear()
        try:
            self._create_resources()
            self._export_environment()
            self._start_triggers()
        except BaseException:
            self.stop()
            raise
        self.started = True
        log.info("app %s wired: %d function(s), %d trigger(s)", self.app.name, len(self.functions),
                 len(self.pollers) + len(self.schedules) + (len(self.runtime.mappings) if self.runtime else 0))
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=10)
            self._scheduler = None
        for p in self.pollers:
            p.stop()
        if self.runtime is not None:
            self.runtime.stop()
        restore_environ(self._saved_env)
        self._saved_env = {}
        self.started = False

    def __enter__(self) -> LocalApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- resources ---------------------------------------------------------------------------
    def _create_resources(self) -> None:
        for q in self._queues_in_order():
            self._ensure_queue(q)
        if any(t.fifo and t.content_based_deduplication for t in self.app.topics):
            patch_fifo_topic_deduplication()  # moto does not compute the id itself
        for t in self.app.topics:
            attrs = {"FifoTopic": "true"} if t.fifo else {}
            if t.fifo and t.content_based_deduplication:
                attrs["ContentBasedDeduplication"] = "true"
            self.topic_arns[t.name] = self.clients.sns.create_topic(Name=t.name, Attributes=attrs)["TopicArn"]
        for table in self.app.tables:
            self._ensure_table(table)
        self._wire_archive()
        for s in self.app.subscriptions:
            attrs = {"RawMessageDelivery": "true" if s.raw_message_delivery else "false"}
            if s.filter_policy:
                attrs["FilterPolicy"] = s.filter_policy
            self.clients.sns.subscribe(TopicArn=self.topic_arns[s.topic], Protocol="sqs",
                                       Endpoint=self.queue_arns[s.queue], Attributes=attrs,
                                       ReturnSubscriptionArn=True)
        self._make_functions()
        self._ensure_buckets()
        self._ensure_state_machines()
        self._ensure_rules()

    def _queues_in_order(self) -> list[Queue]:
        """Dead-letter queues before the queues that name them."""
        by_name = {q.name: q for q in self.app.queues}
        out: list[Queue] = []

        def visit(q: Queue, path: tuple[str, ...]) -> None:
            if q in out:
                return
            if q.name in path:
                raise ConfigError(f"app {self.app.name}: dead-letter queues form a cycle at {q.name}")
            if q.dead_letter:
                visit(by_name[q.dead_letter], (*path, q.name))
            out.append(q)

        for q in self.app.queues:
            visit(q, ())
        return out

    def _ensure_queue(self, q: Queue) -> None:
        attrs = {"VisibilityTimeout": str(q.visibility_timeout_s)}
        if q.fifo:
            attrs["FifoQueue"] = "true"
            if q.content_based_deduplication:
                attrs["ContentBasedDeduplication"] = "true"
        if q.dead_letter:
            attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": self.queue_arns[q.dead_letter],
                                                 "maxReceiveCount": q.max_receive_count})
        sqs = self.clients.sqs
        try:
            url = sqs.create_queue(QueueName=q.name, Attributes=attrs)["QueueUrl"]
        except AWS_ERRORS as e:
            if error_code(e) not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            url = sqs.get_queue_url(QueueName=q.name)["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes={k: v for k, v in attrs.items() if k != "FifoQueue"})
        self.queue_urls[q.name] = url
        self.queue_arns[q.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]

    def _hidden_queue(self, kind: str, name: str) -> tuple[str, str]:
        sqs = self.clients.sqs
        url = sqs.create_queue(QueueName=hidden_queue_name(self.app.name, kind, name),
                               Attributes={"VisibilityTimeout": str(HIDDEN_VISIBILITY_S)})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def _ensure_table(self, table: Any) -> None:
        ddb = self.clients.dynamodb
        try:
            desc = ddb.describe_table(TableName=table.name)["Table"]
        except AWS_ERRORS as e:
            if error_code(e) != "ResourceNotFoundException":
                raise
            attrs = [{"AttributeName": table.hash_key, "AttributeType": table.hash_type}]
            schema = [{"AttributeName": table.hash_key, "KeyType": "HASH"}]
            if table.range_key:
                attrs.append({"AttributeName": table.range_key, "AttributeType": table.range_type})
                schema.append({"AttributeName": table.range_key, "KeyType": "RANGE"})
            kwargs: dict[str, Any] = {}
            if table.stream:
                kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream}
            ddb.create_table(TableName=table.name, AttributeDefinitions=attrs, KeySchema=schema,
                             BillingMode="PAY_PER_REQUEST", **kwargs)
            ddb.get_waiter("table_exists").wait(TableName=table.name, WaiterConfig={"Delay": 1})
            desc = ddb.describe_table(TableName=table.name)["Table"]
            if table.ttl_attribute:
                ddb.update_time_to_live(TableName=table.name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": table.ttl_attribute})
        if table.stream:
            if not desc.get("StreamSpecification", {}).get("StreamEnabled"):
                ddb.update_table(TableName=table.name, StreamSpecification={
                    "StreamEnabled": True, "StreamViewType": table.stream})
                desc = ddb.describe_table(TableName=table.name)["Table"]
            self.stream_arns[table.name] = desc["LatestStreamArn"]

    def _stream_arn(self, table: str) -> str:
        arn = self.clients.dynamodb.describe_table(TableName=table)["Table"].get("LatestStreamArn")
        if not arn:
            raise ConfigError(f"app {self.app.name}: table {table} has no stream")
        return str(arn)

    def _wire_archive(self) -> None:
        """The lake archives each archived table's stream: at once if it watches tables, else
        by adding the lake's mappings for it (as its TableWatcher would)."""
        lake = self.lake
        if lake.watcher is not None:
            lake.watcher.poll()
            return
        if lake.runtime is None or lake.provisioned is None:
            log.info("the lake has no runtime: app %s's tables are not archived", self.app.name)
            return
        from lake.local.up import table_mappings

        for table in self.app.tables:
            if table.archived and table.name in self.stream_arns:
                for m in table_mappings(table.name, self.stream_arns[table.name], lake.provisioned.dlq_arn,
                                        lake.extra_functions):
                    lake.runtime.add_mapping(m)

    def _make_functions(self) -> None:
        for f in self.app.functions:
            self.functions[f.name] = FunctionTarget(
                f.name, resolve_handler(f.handler), region=self.region, clock=self.clock,
                timeout_s=float(f.timeout_s), memory_mb=f.memory_mb)

    # -- buckets, state machines, rules (the hidden-queue deliveries are made here too) -------
    def _ensure_buckets(self) -> None:
        s3 = self.clients.s3
        to_lambda: dict[str, list[tuple[str, BucketEvents]]] = {}  # bucket -> (function, trigger)
        for f in self.app.functions:
            for t in f.triggers:
                if isinstance(t, BucketEvents):
                    to_lambda.setdefault(t.bucket, []).append((f.name, t))
        for b in self.app.buckets:
            for n in b.notifications:
                if n.kind == "function":
                    to_lambda.setdefault(b.name, []).append(
                        (n.target, BucketEvents(b.name, n.events, n.prefix, n.suffix)))
        for b in self.app.buckets:
            try:
                kwargs = {} if self.region == "us-east-1" else {
                    "CreateBucketConfiguration": {"LocationConstraint": self.region}}
                s3.create_bucket(Bucket=b.name, **kwargs)
            except AWS_ERRORS as e:
                if error_code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
            config: dict[str, Any] = {}

            def rules(prefix: str, suffix: str) -> dict[str, Any]:
                fr = [{"Name": "prefix", "Value": prefix}] if prefix else []
                fr += [{"Name": "suffix", "Value": suffix}] if suffix else []
                return {"Filter": {"Key": {"FilterRules": fr}}} if fr else {}

            notes: list[Notification] = [n for n in b.notifications if n.kind != "function"]
            for n in notes:
                if n.kind == "queue":
                    config.setdefault("QueueConfigurations", []).append(
                        {"QueueArn": self.queue_arns[n.target], "Events": list(n.events), **rules(n.prefix, n.suffix)})
                else:
                    config.setdefault("TopicConfigurations", []).append(
                        {"TopicArn": self.topic_arns[n.target], "Events": list(n.events), **rules(n.prefix, n.suffix)})
            for fn, t in to_lambda.get(b.name, []):
                url, arn = self._hidden_queue("s3", f"{b.name}-{fn}")
                config.setdefault("QueueConfigurations", []).append(
                    {"QueueArn": arn, "Events": list(t.events), **rules(t.prefix, t.suffix)})
                target = self.functions[fn]
                trigger = f"{fn}:s3:{b.name}"
                if not any(p.name == trigger for p in self.pollers):
                    self.pollers.append(HiddenQueue(
                        trigger, self.clients, url, _s3_delivery(target, trigger),
                        poll_interval_s=self.poll_interval_s))
            if b.eventbridge:
                config["EventBridgeConfiguration"] = {}
            if config:
                s3.put_bucket_notification_configuration(Bucket=b.name, NotificationConfiguration=config)

    def _ensure_state_machines(self) -> None:
        if not self.app.state_machines:
            return
        from lake.local.stepfunctions import enable_execution

        enable_execution(self.lake)
        sfn = self.clients.stepfunctions
        existing = {m["name"]: m["stateMachineArn"] for page in sfn.get_paginator("list_state_machines").paginate()
                    for m in page["stateMachines"]}
        for sm in self.app.state_machines:
            path = Path(self.app.root) / sm.definition
            try:
                definition = path.read_text()
            except OSError as e:
                raise ConfigError(f"app {self.app.name}: state machine {sm.name}: cannot read {path}: {e}") from e
            for key, value in sm.substitutions:
                definition = definition.replace("${" + key + "}", self.resolve(value))
            try:
                json.loads(definition)
            except ValueError as e:
                raise ConfigError(f"app {self.app.name}: state machine {sm.name}: {path} is not JSON: {e}") from e
            role = f"arn:aws:iam::{ACCOUNT_ID}:role/{self.app.name}-{sm.name}"[:140]
            if sm.name in existing:
                sfn.update_state_machine(stateMachineArn=existing[sm.name], definition=definition, roleArn=role)
                self.state_machine_arns[sm.name] = existing[sm.name]
            else:
                self.state_machine_arns[sm.name] = sfn.create_state_machine(
                    name=sm.name, definition=definition, roleArn=role, type=sm.type)["stateMachineArn"]

    def _rules(self) -> dict[str, list[tuple[str, str, RuleEvents]]]:
        """Rule name -> its targets (kind, declared name, the declaration on that target)."""
        out: dict[str, list[tuple[str, str, RuleEvents]]] = {}
        for f in self.app.functions:
            for t in f.triggers:
                if isinstance(t, RuleEvents):
                    out.setdefault(t.name, []).append(("function", f.name, t))
        for sm in self.app.state_machines:
            for t in sm.triggers:
                out.setdefault(t.name, []).append(("state-machine", sm.name, t))
        for q in self.app.queues:
            for t in getattr(q, "triggers", ()):
                out.setdefault(t.name, []).append(("queue", q.name, t))
        for name, targets in out.items():
            first = targets[0][2]
            for _, _, t in targets:
                if (t.pattern, t.schedule) != (first.pattern, first.schedule):
                    raise ConfigError(f"app {self.app.name}: rule {name} is declared with two patterns or schedules")
            if (first.pattern is None) == (first.schedule is None):
                raise ConfigError(f"app {self.app.name}: rule {name} needs a pattern or a schedule (one of them)")
        return out

    def _ensure_rules(self) -> None:
        events = self.clients.events
        fifo = {q.name: q.fifo for q in self.app.queues}
        for name, targets in self._rules().items():
            first = targets[0][2]
            kwargs: dict[str, Any] = {"Name": name, "State": "ENABLED"}
            if first.pattern is not None:
                kwargs["EventPattern"] = self.resolve(first.pattern)  # ${bucket:…} in the pattern
            else:
                assert first.schedule is not None
                parse_schedule(first.schedule)  # a bad expression is refused before anything runs
                kwargs["ScheduleExpression"] = first.schedule
            self.rule_arns[name] = arn = events.put_rule(**kwargs)["RuleArn"]
            dispatched: list[RuleTarget] = []
            moto_targets: list[dict[str, Any]] = []
            for kind, target, t in targets:
                if kind == "queue" and t.input is None and first.pattern is not None:
                    # EventBridge → SQS is the embedded AWS's own delivery.
                    entry: dict[str, Any] = {"Id": f"queue-{target}"[:64], "Arn": self.queue_arns[target]}
                    if fifo[target]:
                        entry["SqsParameters"] = {"MessageGroupId": name}
                    moto_targets.append(entry)
                elif kind == "function":
                    dispatched.append(RuleTarget("function", target, t.input, function=self.functions[target]))
                elif kind == "state-machine":
                    dispatched.append(RuleTarget("state-machine", target, t.input, arn=self.state_machine_arns[target]))
                else:
                    dispatched.append(RuleTarget("queue", target, t.input, queue_url=self.queue_urls[target],
                                                 fifo=fifo[target]))
            dispatch = RuleDispatch(name, arn, self.clients, dispatched)
            self.dispatches[name] = dispatch
            if first.pattern is not None and dispatched:
                url, qarn = self._hidden_queue("rule", name)
                moto_targets.append({"Id": "lake-runtime", "Arn": qarn})
                trigger = f"rule:{name}"
                if not any(p.name == trigger for p in self.pollers):
                    self.pollers.append(HiddenQueue(trigger, self.clients, url, dispatch,
                                                    poll_interval_s=self.poll_interval_s))
            if moto_targets:
                events.put_targets(Rule=name, Targets=moto_targets)
            if first.schedule is not None:
                stats = self._schedule_stats.setdefault(f"schedule:{name}", TriggerStats())
                self.schedules.append(Schedule(name, arn, first.schedule, self.clock.now(), dispatch, stats,
                                               region=self.region))

    # -- environment -------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """Every function's environment, resolved; one variable with two values is a ConfigError
        (the handlers share this process's environment)."""
        env: dict[str, tuple[str, str]] = {}
        for f in self.app.functions:
            for key, value in f.environment:
                resolved = self.resolve(value)
                if key in env and env[key][1] != resolved:
                    raise ConfigError(f"app {self.app.name}: {key} is {env[key][1]!r} for {env[key][0]} and "
                                      f"{resolved!r} for {f.name}: functions run in one process locally")
                env[key] = (f.name, resolved)
        return {k: v for k, (_, v) in env.items()}

    def _export_environment(self) -> None:
        env = self.environment()
        # An SDK client a handler builds itself reaches the embedded AWS, as on Lambda it reaches AWS.
        for key, value in (("AWS_ENDPOINT_URL", self.settings.endpoint_url or ""),
                           ("AWS_DEFAULT_REGION", self.region), ("AWS_REGION", self.region),
                           ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
            if value and key not in env and (key.startswith("AWS_ENDPOINT") or key not in os.environ):
                env[key] = value
        for k, v in env.items():
            if k not in self._saved_env:
                self._saved_env[k] = os.environ.get(k)
            os.environ[k] = v

    # -- triggers ----------------------------------------------------------------------------
    def _start_triggers(self) -> None:
        mappings = []
        queues = {q.name: q for q in self.app.queues}
        for f in self.app.functions:
            target = self.functions[f.name]
            for t in f.triggers:
                if isinstance(t, StreamEvents | KinesisEvents):
                    mappings.append(self._stream_mapping(f, target, t))
                elif isinstance(t, QueueEvents):
                    q = queues[t.queue]
                    self.pollers.append(SqsMapping(
                        f"{f.name}:sqs:{t.queue}", self.clients, target, self.queue_urls[t.queue],
                        self.queue_arns[t.queue], batch_size=t.batch_size, batching_window_s=t.batching_window_s,
                        report_batch_item_failures=t.report_batch_item_failures, fifo=q.fifo,
                        max_receive_count=q.max_receive_count if q.dead_letter else None,
                        poll_interval_s=self.poll_interval_s))
                elif isinstance(t, TopicEvents):
                    self.pollers.append(self._topic_trigger(f, target, t))
        if mappings:
            from lake.local.runtime import LocalRuntime

            self.runtime = LocalRuntime(self.clients, mappings,
                                        state_dir=Path(self.settings.state_dir) / "apps" / self.app.name,
                                        poll_interval_s=min(self.poll_interval_s, 0.1), clock=self.clock,
                                        handler_processes=False)
            self.runtime.start()
        for p in self.pollers:
            p.start()
        if self.schedules and self.clock is SYSTEM_CLOCK:
            self._stop.clear()
            self._scheduler = threading.Thread(target=self._run_schedules, name=f"schedules-{self.app.name}",
                                               daemon=True)
            self._scheduler.start()

    def _stream_mapping(self, f: Function, target: FunctionTarget, t: StreamEvents | KinesisEvents) -> Any:
        from lake.local.runtime import EventSourceMapping

        if isinstance(t, StreamEvents):
            arn, trigger = self.stream_arns.get(t.table) or self._stream_arn(t.table), f"{f.name}:stream:{t.table}"
            filters: tuple[str, ...] = t.filter_patterns
        else:
            assert self.lake.provisioned is not None
            arn, trigger, filters = self.lake.provisioned.kinesis_arn, f"{f.name}:kinesis", ()
        return EventSourceMapping(
            function=target.as_stream_handler(trigger), event_source_arn=arn, batch_size=t.batch_size,
            starting_position=t.starting_position, maximum_retry_attempts=t.maximum_retry_attempts,
            bisect_batch_on_function_error=t.bisect_batch_on_function_error,
            report_batch_item_failures=t.report_batch_item_failures,
            on_failure_destination=self.queue_arns[t.on_failure] if t.on_failure else None,
            filter_criteria=filters, timeout_s=float(f.timeout_s), memory_mb=f.memory_mb, name=f.name)

    def _topic_trigger(self, f: Function, target: FunctionTarget, t: TopicEvents) -> QueuePoller:
        topic = next(x for x in self.app.topics if x.name == t.topic)
        if topic.fifo:
            raise ConfigError(f"app {self.app.name}: {f.name}: Lambda cannot subscribe to a FIFO topic ({t.topic}); "
                              "subscribe a FIFO queue and read that")
        url, qarn = self._hidden_queue("sns", f"{t.topic}-{f.name}")
        attrs = {"RawMessageDelivery": "false"}
        if t.filter_policy:
            attrs["FilterPolicy"] = t.filter_policy
        sub = self.clients.sns.subscribe(TopicArn=self.topic_arns[t.topic], Protocol="sqs", Endpoint=qarn,
                                         Attributes=attrs, ReturnSubscriptionArn=True)["SubscriptionArn"]
        if t.filter_policy:  # an existing subscription keeps its attributes: set it again
            self.clients.sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                                         AttributeValue=t.filter_policy)
        trigger = f"{f.name}:sns:{t.topic}"

        def deliver(envelope: dict[str, Any], stats: TriggerStats) -> None:
            target.call_async(trigger, sns_event(envelope, sub), stats)

        return HiddenQueue(trigger, self.clients, url, deliver, poll_interval_s=self.poll_interval_s)

    # -- schedules ---------------------------------------------------------------------------
    def fire_schedules(self) -> int:
        """Run every schedule occurrence due at ``self.clock.now()``; return how many fired."""
        with self._schedule_lock:
            now = self.clock.now()
            return sum(s.fire_due(now) for s in self.schedules)

    def _run_schedules(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.fire_schedules()
            except Exception:  # one bad firing must not stop the schedules
                log.exception("app %s: firing schedules failed", self.app.name)

    # -- observing ---------------------------------------------------------------------------
    def _executions_running(self) -> bool:
        sfn = self.clients.stepfunctions
        for arn in self.state_machine_arns.values():
            if sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING").get("executions"):
                return True
        return False

    def _triggers_idle(self) -> bool:
        for p in self.pollers:
            p.wake()
        return all(p.idle() for p in self.pollers) and not self._executions_running()

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """True once every trigger of the app and the lake's runtime are drained: nothing in
        flight, nothing visible in a trigger's queue, no execution running, every stream read
        to its end — twice in a row, so work one part handed to another is seen."""
        deadline = time.monotonic() + timeout_s
        quiet = 0
        while time.monotonic() < deadline:
            left = max(0.0, deadline - time.monotonic())
            busy = not self._triggers_idle()
            if not busy and self.runtime is not None:
                busy = not self.runtime.wait_idle(min(left, 30.0))
            if not busy:
                busy = not self.lake.wait_idle(max(0.1, min(left, 30.0)))
            if not busy:
                busy = not self._triggers_idle()
            quiet = 0 if busy else quiet + 1
            if quiet >= 2:
                return True
            time.sleep(0.02 if busy else 0.0)
        return False

    def invocations(self, function: str) -> list[dict[str, Any]]:
        """Each invocation of ``function``, in order (retries included): ``{"trigger", "event",
        "outcome" ("ok", "error", "timeout"), "result" (the reply, or the error's text)}``;
        :meth:`events` gives the events alone, :meth:`stats` the counters of each trigger."""
        target = self.functions.get(function)
        if target is None:
            raise ConfigError(f"app {self.app.name} has no function {function!r}")
        with target._lock:
            return list(target.received)

    def events(self, function: str) -> list[dict[str, Any]]:
        """Just the events ``function`` received."""
        return [i["event"] for i in self.invocations(function)]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per trigger (queue pollers, hidden deliveries, schedules, stream mappings)."""
        out: dict[str, dict[str, Any]] = {p.name: p.status() for p in self.pollers}
        for name, s in self._schedule_stats.items():
            out[name] = s.as_dict()
        if self.runtime is not None:
            for m in self.runtime.status():
                out[f"{m['function']}:stream:{m['source']}"] = m
        return out


def _s3_delivery(target: FunctionTarget, trigger: str) -> Callable[[dict[str, Any], TriggerStats], None]:
    def deliver(event: dict[str, Any], stats: TriggerStats) -> None:
        target.call_async(trigger, event, stats)  # S3's event, unchanged (keys URL-encoded)

    return deliver


# -- lake example <name> ---------------------------------------------------------------------------
def load_example(name: str) -> tuple[App, Any]:
    """``examples.<name>.app:APP`` and the module ``examples.<name>.scenario``."""
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"no example {name!r}")
    try:
        app_module = importlib.import_module(f"examples.{name}.app")
        scenario = importlib.import_module(f"examples.{name}.scenario")
    except ModuleNotFoundError as e:
        raise ConfigError(f"no example {name!r} ({e})") from e
    app = app_module.APP
    if not app.root:
        app = _with_root(app, str(Path(app_module.__file__ or ".").parent))
    return app, scenario


def _with_root(app: App, root: str) -> App:
    import dataclasses

    return dataclasses.replace(app, root=root)


def example_names() -> list[str]:
    try:
        examples = importlib.import_module("examples")
    except ModuleNotFoundError:
        return []
    base = Path(examples.__file__ or ".").parent
    return sorted(p.parent.name for p in base.glob("*/app.py"))


def lake_counts(settings: Settings, tables: list[str]) -> dict[str, int]:
    """Each table's number of changes in the lake (``changes_unique``), through the local query engine,
    as ``lake query`` reads it."""
    from lake.query.engine import engine_for

    if not tables:
        return {}
    engine = engine_for(settings, "local")
    try:
        engine.refresh()
        result = engine.query("SELECT table_name, count(*) AS n FROM changes_unique GROUP BY table_name")
        counts = dict(zip(result.column(0).to_pylist(), result.column(1).to_pylist(), strict=True))
    finally:
        engine.close()
    return {t: int(counts.get(t, 0)) for t in tables}


def run_example(name: str, settings: Settings, say: Callable[[str], None] = print,
                timeout_s: float = 120.0) -> tuple[dict[str, Any], dict[str, int]]:
    """A fresh embedded lake, the example's app wired on it, its scenario run: (outcome, changes per table)."""
    from lake.local.up import EmbeddedLake

    app, scenario = load_example(name)
    tables = [t.name for t in app.tables if t.archived and t.stream]
    # watch_tables: the lake archives every app table's stream (its TableWatcher wires them).
    lake = EmbeddedLake(settings, port=0, watch_tables=True, status_interval_s=None)
    with lake, LocalApp(app, lake) as local:
        outcome = scenario.run(local, say)
        if not local.wait_idle(timeout_s):
            say(f"the app was not idle after {timeout_s:.0f} s")
        counts = lake_counts(lake.settings, tables)
    return outcome, counts


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    names = example_names()
    p = sub.add_parser("example", parents=parents, help="run one of the examples on a fresh embedded stack",
                       description="Start a fresh embedded lake, wire examples/<name>/app.py on it, run its "
                                   "scenario, and show the outcome and each table's changes in the lake.")
    p.add_argument("name", help="the example (" + (", ".join(names) if names else "none yet") + ")")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the app to drain")
    p.set_defaults(func=run_example_command)


def run_example_command(args: argparse.Namespace, settings: Settings) -> int:
    import tempfile

    # Each run is ephemeral: a new embedded AWS on a free port, checkpoints in a temporary directory.
    with tempfile.TemporaryDirectory(prefix=f"lake-example-{args.name}-") as state:
        outcome, counts = run_example(args.name, settings.replace(endpoint_url=None, state_dir=state),
                                      say=lambda text: print(text, flush=True), timeout_s=args.timeout)
    print(json.dumps({"outcome": outcome}, indent=2, default=str))
    for table, n in counts.items():
        print(f"lake: {n} change(s) of table {table} in `changes_unique`")
    ok = bool(outcome.get("ok"))
    print("ok" if ok else "NOT ok")
    return 0 if ok else 1
