"""The App declaration (lake/apps.py): what validate() refuses, and the hidden names the runtime derives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lake.apps import App, Bucket, BucketEvents, Function, Notification, Queue, QueueEvents, RuleEvents, Topic
from lake.errors import ConfigError
from lake.local.triggers.hidden import execution_name, hidden_queue_name, sns_event


def fn(*triggers: object, env: tuple[tuple[str, str], ...] = ()) -> Function:
    return Function("f", "m:h", triggers=triggers, environment=env)  # type: ignore[arg-type]


@pytest.mark.parametrize(("app", "message"), [
    (App("a", queues=(Queue("q.fifo"),)), "FIFO"),
    (App("a", queues=(Queue("q", fifo=True),)), "FIFO"),
    (App("a", topics=(Topic("t.fifo"),)), "FIFO"),
    (App("a", queues=(Queue("q", dead_letter="nope"),)), "undeclared queue 'nope'"),
    (App("a", queues=(Queue("q.fifo", fifo=True, dead_letter="d"), Queue("d"))), "same kind"),
    (App("a", functions=(fn(QueueEvents("missing")),)), "undeclared queue"),
    (App("a", functions=(fn(BucketEvents("missing")),)), "undeclared bucket"),
    (App("a", buckets=(Bucket("b", notifications=(Notification("t", "topic"),)),)), "undeclared topic"),
    (App("a", functions=(fn(env=(("X", "${table:nope}"),)),)), "undeclared table"),
    (App("a", functions=(fn(env=(("X", "${nope:x}"),)),)), "reference of unknown kind 'nope'"),
])
def test_validate_refuses(app: App, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        app.validate()


def test_a_valid_app_passes_and_queues_may_be_rule_targets() -> None:
    App("ok", queues=(Queue("dlq"), Queue("q", dead_letter="dlq", triggers=(RuleEvents("r", schedule="rate(1 day)"),))),
        functions=(fn(QueueEvents("q"), env=(("S", "${lake-stream}"), ("Q", "${queue-arn:q}"))),)).validate()


def test_hidden_names_fit_aws_limits_and_differ() -> None:
    a = hidden_queue_name("app", "sns", "x" * 200)
    b = hidden_queue_name("app", "sns", "x" * 199)
    assert len(a) <= 80 and a != b and all(c.isalnum() or c in "-_" for c in a)
    name = execution_name("rule with spaces", "e" * 100)
    assert len(name) <= 80 and " " not in name
    assert execution_name("r", "id-1") == execution_name("r", "id-1") != execution_name("r", "id-2")


def test_sns_envelope_becomes_lambdas_record() -> None:
    env = {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:t", "Message": "hi", "Timestamp": "t",
           "SignatureVersion": "2", "Signature": "s", "SigningCertURL": "c", "UnsubscribeURL": "u"}
    rec = sns_event(env, "arn:t:sub")["Records"][0]
    assert rec["EventSubscriptionArn"] == "arn:t:sub" and rec["Sns"]["SigningCertUrl"] == "c"
    assert rec["Sns"]["UnsubscribeUrl"] == "u" and rec["Sns"]["Subject"] is None
    assert rec["Sns"]["MessageAttributes"] == {}


def test_the_examples_are_found_from_any_directory(tmp_path: Path) -> None:
    # `lake example` is an installed command: run from elsewhere, it must still find the examples
    out = subprocess.run([sys.executable, "-c", "from lake.local.apps import example_names; print(example_names())"],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(["event_sourcing", "file_index", "http_fanout", "price_watch", "upload_rows"])
