"""S3 → Lambda, EventBridge rules (→ Lambda, SQS, Step Functions) and schedule rules
(lake/local/triggers/hidden.py, schedule.py) on the embedded stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from lake.apps import App, Bucket, BucketEvents, Function, Notification, Queue, RuleEvents, StateMachine, Table, Topic
from lake.local.apps import LocalApp
from lake.local.triggers.hidden import execution_name
from lake.local.up import EmbeddedLake
from tests.clock import ManualClock
from tests.integration.test_triggers_sqs import start_lake

HERE = "tests.integration.test_triggers_rules"

# moto 5.2.5 (moto/events/utils.py _BASE_EVENT_MESSAGE) gives every S3 → EventBridge event this id
MOTO_S3_EVENT_ID = "17793124-05d4-b198-2fde-7ededc63b103"


def handler(event: dict[str, Any], context: Any) -> None:
    """Records nothing itself: LocalApp keeps every event a function received."""


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLake]:
    lake = start_lake(tmp_path_factory.mktemp("triggers-rules"))
    yield lake
    lake.stop()


def drain(local: LocalApp, queue: str) -> list[dict[str, Any]]:
    got = local.clients.sqs.receive_message(QueueUrl=local.queue_urls[queue], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_s3_to_lambda_gets_the_s3_event_with_the_key_url_encoded_and_moto_delivers_to_sns_and_sqs(
        lake: EmbeddedLake) -> None:
    app = App("s3", buckets=(Bucket("s3-uploads", notifications=(
        Notification("s3-files", "queue", prefix="in/"), Notification("s3-topic", "topic", suffix=".csv"))),),
        topics=(Topic("s3-topic"),), queues=(Queue("s3-files"), Queue("s3-from-topic")),
        functions=(Function("s3-fn", f"{HERE}:handler", triggers=(BucketEvents("s3-uploads", prefix="in/"),)),))
    app = App(**{**app.__dict__, "subscriptions": ()})
    key = "in/My report+ été 1.csv"
    with LocalApp(app, lake) as local:
        local.clients.sns.subscribe(TopicArn=local.topic_arns["s3-topic"], Protocol="sqs",
                                    Endpoint=local.queue_arns["s3-from-topic"])
        local.clients.s3.put_object(Bucket="s3-uploads", Key=key, Body=b"a,b\n1,2\n")
        local.clients.s3.put_object(Bucket="s3-uploads", Key="out/ignored.csv", Body=b"x")
        assert local.wait_idle(30)
        events = local.events("s3-fn")
        queued = [b for b in drain(local, "s3-files") if "Records" in b]
        via_topic = [json.loads(b["Message"]) for b in drain(local, "s3-from-topic")]
        stats = local.stats()["s3-fn:s3:s3-uploads"]
    assert len(events) == 1  # the test event S3 sends a new queue never reaches the function
    record = events[0]["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == "s3-uploads"
    assert record["s3"]["object"]["key"] == quote_plus(key) == "in%2FMy+report%2B+%C3%A9t%C3%A9+1.csv"
    assert [b["Records"][0]["s3"]["object"]["key"] for b in queued] == [quote_plus(key)]  # moto's own S3 → SQS
    assert sorted(b["Records"][0]["s3"]["object"]["key"] for b in via_topic if "Records" in b) == [
        quote_plus(key), quote_plus("out/ignored.csv")]  # moto's own S3 → SNS (suffix .csv)
    assert stats["filtered"] == 1 and stats["invocations"] == 1


ASL = {
    "StartAt": "Index",
    "States": {"Index": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem",
        "Parameters": {"TableName": "${Table}", "Item": {"key": {"S.$": "$.detail.object.key"}}},
        "End": True}},
}


def test_eventbridge_rules_reach_lambda_sqs_and_step_functions_and_a_later_rule_still_fires(
        lake: EmbeddedLake, tmp_path: Path) -> None:
    (tmp_path / "index.asl.json").write_text(json.dumps(ASL))
    # (moto also sends "Object Tags Added" for every PutObject: the pattern leaves it out)
    s3_pattern = json.dumps({"source": ["aws.s3", "custom.app"], "detail-type": ["Object Created", "thing"]})
    app = App(
        "rules", root=str(tmp_path), tables=(Table("rules-index", hash_key="key", archived=False),),
        buckets=(Bucket("rules-uploads", eventbridge=True),),
        queues=(Queue("rules-events", triggers=(RuleEvents("rules-first", pattern=s3_pattern),)),),
        functions=(Function("rules-fn", f"{HERE}:handler", triggers=(
            RuleEvents("rules-first", pattern=s3_pattern),
            RuleEvents("rules-second", pattern=json.dumps({"source": ["custom.app"]}), input='{"constant": 1}'))),),
        state_machines=(StateMachine("rules-index", "index.asl.json",
                                     substitutions=(("Table", "${table:rules-index}"),),
                                     triggers=(RuleEvents("rules-s3", pattern=json.dumps({
                                         "source": ["aws.s3"], "detail-type": ["Object Created"]})),)),),
    )
    with LocalApp(app, lake) as local:
        local.clients.s3.put_object(Bucket="rules-uploads", Key="a b.txt", Body=b"1")
        local.clients.events.put_events(Entries=[{"Source": "custom.app", "DetailType": "thing",
                                                  "Detail": json.dumps({"n": 1})}])
        assert local.wait_idle(60)
        events = local.events("rules-fn")
        queued = drain(local, "rules-events")
        sfn = local.clients.stepfunctions
        executions = sfn.list_executions(stateMachineArn=local.state_machine_arns["rules-index"])["executions"]
        item = local.clients.dynamodb.get_item(TableName="rules-index", Key={"key": {"S": "a b.txt"}}).get("Item")
        stats = local.stats()
    # rules-first (S3 and custom events) → the function and moto's own SQS target; rules-second → the
    # function with its constant input, though a rule before it has targets moto cannot call.
    sources = sorted(e.get("source", "input") for e in events)
    assert sources == ["aws.s3", "custom.app", "input"]
    assert {"constant": 1} in events
    assert sorted(e["source"] for e in queued) == ["aws.s3", "custom.app"]
    s3_event = next(e for e in events if e.get("source") == "aws.s3")
    assert s3_event["detail-type"] == "Object Created" and s3_event["detail"]["bucket"]["name"] == "rules-uploads"
    # the state machine ran the ASL: named after the event, its DynamoDB task wrote to the same embedded table
    assert len(executions) == 1 and executions[0]["status"] == "SUCCEEDED"
    assert executions[0]["name"] == execution_name("rules-s3", s3_event["id"])
    assert s3_event["id"] != MOTO_S3_EVENT_ID  # each S3 event has an id of its own (lake/local/moto_sfn.py)
    assert item == {"key": {"S": "a b.txt"}}
    assert stats["rule:rules-s3"]["executions"] == 1 and stats["rule:rules-second"]["invocations"] == 1


def test_schedule_rules_fire_on_the_clock_rate_and_cron_with_input(lake: EmbeddedLake) -> None:
    start = datetime(2026, 3, 2, 11, 58, 30, tzinfo=UTC).timestamp()  # a Monday
    clock = ManualClock(start=start)
    noon = "cron(0 12 ? * MON-FRI *)"
    app = App("sched", queues=(Queue("sched-q", triggers=(RuleEvents("sched-noon", schedule=noon),)),),
              functions=(Function("sched-fn", f"{HERE}:handler", triggers=(
                  RuleEvents("sched-rate", schedule="rate(5 minutes)"),
                  RuleEvents("sched-noon", schedule=noon, input='{"lunch": true}'))),))
    with LocalApp(app, lake, clock=clock) as local:
        assert local.fire_schedules() == 0
        clock.advance(60)  # 11:59:30
        assert local.fire_schedules() == 0
        clock.advance(60)  # 12:00:30: noon's occurrence
        assert local.fire_schedules() == 1
        clock.advance(4 * 60)  # 12:04:30: the first rate occurrence (start + 5 min = 12:03:30)
        assert local.fire_schedules() == 1
        clock.advance(10 * 60)  # 12:14:30: 12:08:30 and 12:13:30
        assert local.fire_schedules() == 2
        assert local.wait_idle(30)
        events = local.events("sched-fn")
        queued = drain(local, "sched-q")
        rule_arn = local.rule_arns["sched-rate"]
    assert events[0] == {"lunch": True}
    scheduled = events[1:]
    assert [e["time"] for e in scheduled] == ["2026-03-02T12:03:30Z", "2026-03-02T12:08:30Z", "2026-03-02T12:13:30Z"]
    e = scheduled[0]
    assert e["detail-type"] == "Scheduled Event" and e["source"] == "aws.events" and e["detail"] == {}
    assert e["resources"] == [rule_arn] and e["version"] == "0" and e["account"] and e["region"] == "us-east-1"
    assert [q["time"] for q in queued] == ["2026-03-02T12:00:00Z"]  # the queue target got the event itself
