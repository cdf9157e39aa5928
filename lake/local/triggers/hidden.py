"""Deliveries the embedded AWS cannot make itself, through a hidden queue it can deliver to.

moto delivers SNS → SQS (filter policies included), S3 → SQS and EventBridge → SQS, but it
cannot run our Lambda functions or, from a rule, start a state machine (a rule with such a
target raises inside it and the rules after it are skipped). So each such delivery gets a
queue of its own on the embedded AWS, subscribed where the function or state machine would
be, and a poller turns each message into what Lambda or EventBridge would have done:

* SNS → Lambda: the SNS envelope becomes Lambda's ``{"Records": [{"EventSource": "aws:sns", …}]}``.
* S3 → Lambda: the S3 event is delivered unchanged (keys URL-encoded, as S3 sends them).
* EventBridge rule → Lambda / Step Functions / SQS with ``input``: each target of the rule.
  moto gives every S3 event it sends to EventBridge the same ``id``; each gets its own here.

Asynchronous semantics: a failed invocation is retried twice, then dropped and counted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from lake.aws.clients import Clients
from lake.aws.errors import AWS_ERRORS, error_code
from lake.local.triggers.base import FunctionTarget, QueuePoller, TriggerStats

log = logging.getLogger("lake.local.triggers")

def hidden_queue_name(app: str, kind: str, name: str) -> str:
    """A queue name of at most 80 characters, unique per (app, kind, name)."""
    digest = hashlib.sha256(f"{app}\n{kind}\n{name}".encode()).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", f"lake-{app}-{kind}-{name}")[:70]
    return f"{stem}-{digest}"


def sns_event(envelope: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """SNS's JSON envelope (as delivered to SQS) as Lambda's SNS event."""
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": envelope.get("Type", "Notification"),
            "MessageId": envelope.get("MessageId"),
            "TopicArn": envelope.get("TopicArn"),
            "Subject": envelope.get("Subject"),
            "Message": envelope.get("Message"),
            "Timestamp": envelope.get("Timestamp"),
            "SignatureVersion": envelope.get("SignatureVersion", "1"),
            "Signature": envelope.get("Signature", ""),
            "SigningCertUrl": envelope.get("SigningCertURL", envelope.get("SigningCertUrl", "")),
            "UnsubscribeUrl": envelope.get("UnsubscribeURL", envelope.get("UnsubscribeUrl", "")),
            "MessageAttributes": envelope.get("MessageAttributes", {}),
        },
    }]}


class HiddenQueue(QueuePoller):
    """Polls a hidden queue; ``deliver(body)`` does what the subscription stands for.

    A message is deleted once delivered (or given up after the asynchronous retries); when
    ``deliver`` raises (the embedded AWS refused a StartExecution, say) it stays, to come
    back after the hidden queue's visibility timeout.
    """

    def __init__(self, name: str, clients: Clients, queue_url: str,
                 deliver: Callable[[dict[str, Any], TriggerStats], None], *, poll_interval_s: float = 0.05) -> None:
        super().__init__(name, clients, queue_url, batch_size=10, poll_interval_s=poll_interval_s)
        self.deliver = deliver

    def handle(self, messages: list[dict[str, Any]]) -> None:
        for m in messages:
            try:
                body = json.loads(m["Body"])
            except ValueError:
                log.error("%s: a message that is not JSON was dropped: %.200s", self.name, m["Body"])
                self.stats.add(dropped=1)
                self.delete([m])
                continue
            if isinstance(body, dict) and body.get("Event") == "s3:TestEvent":
                self.stats.add(filtered=1)  # S3 sends one when a queue is configured; Lambda never sees it
            else:
                try:
                    self.deliver(body, self.stats)
                except AWS_ERRORS as e:
                    log.warning("%s: delivery failed, retried after the visibility timeout: %s", self.name, e)
                    continue
            self.delete([m])
            self.stats.add(succeeded=1)


# -- EventBridge rules ----------------------------------------------------------------------------
TargetKind = Literal["function", "state-machine", "queue"]


@dataclass
class RuleTarget:
    """One target of a rule: a function, a state machine (ARN) or a queue (URL), with its constant input."""

    kind: TargetKind
    name: str
    input: str | None = None
    function: FunctionTarget | None = None
    arn: str = ""  # state machine ARN
    queue_url: str = ""
    fifo: bool = False


def execution_name(rule: str, event_id: str) -> str:
    """StartExecution's name for the event ``event_id`` of ``rule``: the same event (delivered
    again) names the same execution, which Step Functions then does not start twice."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{rule}-{event_id}")
    if len(name) > 80:
        name = f"{name[:71]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name


class RuleDispatch:
    """Delivers the events a rule matched (or its schedule produced) to each of its targets."""

    def __init__(self, rule: str, arn: str, clients: Clients, targets: list[RuleTarget]) -> None:
        self.rule, self.arn, self.clients, self.targets = rule, arn, clients, targets

    def __call__(self, event: dict[str, Any], stats: TriggerStats) -> None:
        trigger = f"rule:{self.rule}"
        event_id = str(event.get("id", ""))
        for t in self.targets:
            payload = json.loads(t.input) if t.input is not None else event
            if t.kind == "function":
                assert t.function is not None
                t.function.call_async(trigger, payload, stats)
            elif t.kind == "state-machine":
                name = execution_name(self.rule, event_id)
                try:
                    self.clients.stepfunctions.start_execution(stateMachineArn=t.arn, name=name,
                                                               input=json.dumps(payload))
                    stats.add(executions=1)
                except AWS_ERRORS as e:
                    if error_code(e) != "ExecutionAlreadyExists":
                        raise
                    log.info("%s: execution %s exists already (event delivered again)", trigger, name)
            else:
                kwargs: dict[str, Any] = {}
                if t.fifo:
                    kwargs = {"MessageGroupId": self.rule, "MessageDeduplicationId": event_id or
                              hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()}
                self.clients.sqs.send_message(QueueUrl=t.queue_url, MessageBody=json.dumps(payload), **kwargs)
                stats.add(sent=1)
