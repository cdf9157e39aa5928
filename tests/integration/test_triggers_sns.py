"""SNS → Lambda (lake/local/triggers/hidden.py): Lambda's SNS event, filter policies, async retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lake.apps import App, Function, Topic, TopicEvents
from lake.local.apps import LocalApp
from lake.local.up import EmbeddedLake
from tests.integration.test_triggers_sqs import start_lake

HERE = "tests.integration.test_triggers_sns"
_calls: dict[str, int] = {}


def handler(event: dict[str, Any], context: Any) -> None:
    message = event["Records"][0]["Sns"]["Message"]
    _calls[message] = _calls.get(message, 0) + 1
    if message == "fail-once" and _calls[message] == 1:
        raise RuntimeError("first attempt fails")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLake]:
    lake = start_lake(tmp_path_factory.mktemp("triggers-sns"))
    yield lake
    lake.stop()


def test_sns_to_lambda_has_lambdas_shape_honours_the_filter_policy_and_retries(lake: EmbeddedLake) -> None:
    policy = json.dumps({"kind": ["keep"]})
    app = App("sns", topics=(Topic("alerts"),), functions=(
        Function("notified", f"{HERE}:handler", triggers=(TopicEvents("alerts", filter_policy=policy),)),))
    with LocalApp(app, lake) as local:
        sns = local.clients.sns
        arn = local.resolve("${topic:alerts}")
        keep = {"kind": {"DataType": "String", "StringValue": "keep"}}
        sns.publish(TopicArn=arn, Message="hello", Subject="greeting", MessageAttributes=keep)
        sns.publish(TopicArn=arn, Message="dropped by the policy",
                    MessageAttributes={"kind": {"DataType": "String", "StringValue": "other"}})
        sns.publish(TopicArn=arn, Message="fail-once", MessageAttributes=keep)
        assert local.wait_idle(30)
        invocations = local.invocations("notified")
        stats = local.stats()["notified:sns:alerts"]
        subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    messages = [i["event"]["Records"][0]["Sns"]["Message"] for i in invocations]
    assert sorted(messages) == ["fail-once", "fail-once", "hello"]  # the failed one retried once
    record = next(i["event"]["Records"][0] for i in invocations
                  if i["event"]["Records"][0]["Sns"]["Message"] == "hello")
    assert record["EventSource"] == "aws:sns" and record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"] in {s["SubscriptionArn"] for s in subs}
    sns_part = record["Sns"]
    assert sns_part["Type"] == "Notification" and sns_part["TopicArn"] == arn and sns_part["Subject"] == "greeting"
    assert sns_part["MessageAttributes"] == {"kind": {"Type": "String", "Value": "keep"}}
    assert {"MessageId", "Timestamp", "SignatureVersion", "Signature", "SigningCertUrl", "UnsubscribeUrl"} <= set(
        sns_part)
    assert stats["retries"] == 1 and stats["function_errors"] == 1 and stats["dropped"] == 0
    assert [i["outcome"] for i in invocations if i["event"]["Records"][0]["Sns"]["Message"] == "fail-once"] == [
        "error", "ok"]


def test_a_fifo_topic_with_content_based_deduplication_deduplicates_for_its_fifo_queue(lake: EmbeddedLake) -> None:
    from lake.apps import Queue, Subscription

    app = App("sns-fifo", topics=(Topic("orders.fifo", fifo=True, content_based_deduplication=True),),
              queues=(Queue("order-events.fifo", fifo=True),),
              subscriptions=(Subscription("orders.fifo", "order-events.fifo", raw_message_delivery=True),))
    with LocalApp(app, lake) as local:
        arn, url = local.topic_arns["orders.fifo"], local.queue_urls["order-events.fifo"]
        for message in ("first", "first", "second"):
            local.clients.sns.publish(TopicArn=arn, Message=message, MessageGroupId="g")
        got = local.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
    messages = got.get("Messages", [])
    assert [m["Body"] for m in messages] == ["first", "second"]  # the second "first" was a duplicate
    assert all(m["Attributes"]["MessageGroupId"] == "g" for m in messages)
