"""The declaration of an application around DynamoDB that feeds the lake (``examples/<name>/app.py``).

One :class:`App` names its tables, buckets, topics, queues, subscriptions, functions (with
their triggers) and state machines. The same object is wired locally by
``lake/local/apps.py`` (resources created on the embedded AWS, triggers run by the local
runtime) and rendered as an AWS SAM template by ``lake/deploy/apps.py``, so what runs locally
and what is deployed cannot drift (as :mod:`lake.wiring` does for the lake itself).

Pure data: no boto3. Resources are referred to by their declared ``name``; locally the
physical name is that name, on AWS it is whatever CloudFormation gives. A function finds
its resources through ``environment``, whose values may hold references resolved by the
wiring (``${table:files}`` the table's name, ``${table-stream:files}`` its stream ARN,
``${queue:jobs}`` the queue's URL, ``${queue-arn:jobs}``, ``${topic:alerts}`` the topic's
ARN, ``${bucket:uploads}`` the bucket's name, ``${state-machine:index}`` its ARN,
``${lake-stream}`` the lake's Kinesis stream name).

What a function or state machine may do is declared as :class:`Permission`: explicit IAM
actions on one declared resource (no ``*``), from which the deployed role is derived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from lake.errors import ConfigError

KeyType = Literal["S", "N", "B"]
StreamView = Literal["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"]
ResourceKind = Literal["table", "table-stream", "bucket", "topic", "queue", "queue-arn", "state-machine",
                       "lake-stream"]
TargetKind = Literal["function", "queue", "topic", "state-machine"]

REFERENCE = re.compile(r"\$\{(?P<kind>[a-z-]+)(?::(?P<name>[A-Za-z0-9_.-]+))?\}")


@dataclass(frozen=True)
class Table:
    """A DynamoDB table; with a stream (default), the lake archives and curates its changes."""

    name: str
    hash_key: str
    hash_type: KeyType = "S"
    range_key: str | None = None
    range_type: KeyType = "S"
    stream: StreamView | None = "NEW_AND_OLD_IMAGES"
    ttl_attribute: str | None = None
    archived: bool = True  # the lake's archiver and fan-out read its stream


@dataclass(frozen=True)
class Notification:
    """An S3 event notification of a bucket to a topic, a queue or a function (S3 → Lambda)."""

    target: str  # the declared name of the topic, queue or function
    kind: Literal["function", "queue", "topic"]
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class Bucket:
    name: str
    notifications: tuple[Notification, ...] = ()
    eventbridge: bool = False  # EventBridgeConfiguration: every event of the bucket to the default bus


@dataclass(frozen=True)
class Topic:
    name: str  # a FIFO topic's name ends in ".fifo"
    fifo: bool = False
    content_based_deduplication: bool = False


@dataclass(frozen=True)
class Queue:
    name: str  # a FIFO queue's name ends in ".fifo"
    fifo: bool = False
    content_based_deduplication: bool = False
    visibility_timeout_s: int = 30
    dead_letter: str | None = None  # the declared name of the queue failed messages move to
    max_receive_count: int = 3  # receives before a message moves to dead_letter
    triggers: tuple[RuleEvents, ...] = ()  # EventBridge rules targeting this queue


@dataclass(frozen=True)
class Subscription:
    """An SNS topic delivering to a queue (SNS → SQS, with an optional filter policy)."""

    topic: str
    queue: str
    raw_message_delivery: bool = False
    filter_policy: str | None = None  # JSON text


# -- triggers of a function ------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamEvents:
    """A DynamoDB stream event source mapping on a declared table."""

    table: str
    batch_size: int = 100
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    filter_patterns: tuple[str, ...] = ()  # Lambda's filter criteria patterns, JSON texts
    maximum_retry_attempts: int = -1
    bisect_batch_on_function_error: bool = False
    report_batch_item_failures: bool = False
    on_failure: str | None = None  # declared queue name (on-failure destination)


@dataclass(frozen=True)
class KinesisEvents:
    """A Kinesis event source mapping on the lake's Kinesis stream (the only Kinesis stream an app reads)."""

    batch_size: int = 100
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    maximum_retry_attempts: int = -1
    bisect_batch_on_function_error: bool = False
    report_batch_item_failures: bool = False
    on_failure: str | None = None


@dataclass(frozen=True)
class QueueEvents:
    """An SQS event source mapping (standard or FIFO)."""

    queue: str
    batch_size: int = 10
    batching_window_s: int = 0
    report_batch_item_failures: bool = True


@dataclass(frozen=True)
class TopicEvents:
    """An SNS → Lambda subscription."""

    topic: str
    filter_policy: str | None = None  # JSON text


@dataclass(frozen=True)
class BucketEvents:
    """An S3 → Lambda event notification (declared on the function; same as a Notification of kind function)."""

    bucket: str
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class RuleEvents:
    """An EventBridge rule on the default bus: an event pattern, or a schedule (``rate(...)``, ``cron(...)``)."""

    name: str
    pattern: str | None = None  # JSON text
    schedule: str | None = None
    input: str | None = None  # constant JSON input given to the target instead of the event


Trigger = StreamEvents | KinesisEvents | QueueEvents | TopicEvents | BucketEvents | RuleEvents


@dataclass(frozen=True)
class Permission:
    """Explicit IAM actions on one declared resource (``kind``, ``name``): the role is derived from these."""

    kind: Literal["table", "table-stream", "bucket-objects", "bucket", "topic", "queue", "state-machine",
                  "lake-stream"]
    name: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Function:
    name: str
    handler: str  # "module:function", importable from the repository's root
    triggers: tuple[Trigger, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()  # values may hold ${kind:name} references
    permissions: tuple[Permission, ...] = ()
    timeout_s: int = 30
    memory_mb: int = 256
    description: str = ""


@dataclass(frozen=True)
class StateMachine:
    """A Step Functions state machine whose ASL definition is a JSON file beside the app."""

    name: str
    definition: str  # path relative to the app's directory
    substitutions: tuple[tuple[str, str], ...] = ()  # ${Name} in the ASL -> value (references allowed)
    triggers: tuple[RuleEvents, ...] = ()
    permissions: tuple[Permission, ...] = ()
    type: Literal["STANDARD", "EXPRESS"] = "STANDARD"


@dataclass(frozen=True)
class App:
    name: str
    tables: tuple[Table, ...] = ()
    buckets: tuple[Bucket, ...] = ()
    topics: tuple[Topic, ...] = ()
    queues: tuple[Queue, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    functions: tuple[Function, ...] = ()
    state_machines: tuple[StateMachine, ...] = ()
    description: str = ""
    root: str = field(default="", compare=False)  # the app's directory (set by the example's module)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a reference to an undeclared resource or a bad FIFO name."""
        names: dict[str, set[str]] = {
            "table": {t.name for t in self.tables},
            "bucket": {b.name for b in self.buckets},
            "topic": {t.name for t in self.topics},
            "queue": {q.name for q in self.queues},
            "function": {f.name for f in self.functions},
            "state-machine": {s.name for s in self.state_machines},
        }

        def need(kind: str, name: str, where: str) -> None:
            if kind not in names:
                raise ConfigError(f"app {self.name}: {where} holds a reference of unknown kind {kind!r}")
            if name not in names[kind]:
                raise ConfigError(f"app {self.name}: {where} refers to an undeclared {kind} {name!r}")

        for group in (self.topics, self.queues):
            for r in group:
                if r.fifo != r.name.endswith(".fifo"):
                    raise ConfigError(f"app {self.name}: {r.name}: a FIFO name ends in .fifo, and only a FIFO's")
        for q in self.queues:
            if q.dead_letter:
                need("queue", q.dead_letter, f"queue {q.name}")
                if q.dead_letter == q.name or any(d.fifo != q.fifo for d in self.queues if d.name == q.dead_letter):
                    raise ConfigError(f"app {self.name}: queue {q.name}: its dead-letter queue is another queue "
                                      "of the same kind (FIFO or standard)")
        for s in self.subscriptions:
            need("topic", s.topic, "a subscription")
            need("queue", s.queue, "a subscription")
        for b in self.buckets:
            for n in b.notifications:
                need(n.kind, n.target, f"bucket {b.name}")
        for f in self.functions:
            for t in f.triggers:
                if isinstance(t, StreamEvents):
                    need("table", t.table, f"function {f.name}")
                elif isinstance(t, QueueEvents):
                    need("queue", t.queue, f"function {f.name}")
                elif isinstance(t, TopicEvents):
                    need("topic", t.topic, f"function {f.name}")
                elif isinstance(t, BucketEvents):
                    need("bucket", t.bucket, f"function {f.name}")
            for _, value in f.environment:
                for m in REFERENCE.finditer(value):
                    kind = {"table-stream": "table", "queue-arn": "queue"}.get(m["kind"], m["kind"])
                    if kind != "lake-stream":
                        need(kind, m["name"] or "", f"function {f.name}'s environment")
