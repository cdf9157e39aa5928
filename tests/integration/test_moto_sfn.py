"""moto's Step Functions interpreter on the embedded AWS (lake/local/moto_sfn.py), running the file
index example's ASL (examples/file_index/statemachine.asl.json) against the embedded DynamoDB."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lake.aws.clients import Clients
from lake.local import moto_sfn
from lake.local.embedded import ADMIN_TOKEN_HEADER, EmbeddedAWS
from lake.settings import Settings

ASL = Path(__file__).resolve().parents[2] / "examples" / "file_index" / "statemachine.asl.json"
ROLE = "arn:aws:iam::123456789012:role/file-index"
TABLE = "files"


def set_execution(aws: EmbeddedAWS, on: bool) -> None:
    """moto's config API: with ``execute_state_machine`` on, StartExecution runs the ASL."""
    body = json.dumps({"stepfunctions": {"execute_state_machine": on}}).encode()
    req = urllib.request.Request(aws.endpoint_url + "/moto-api/config", data=body, method="POST",
                                 headers={ADMIN_TOKEN_HEADER: aws.admin_token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


@pytest.fixture
def sfn_clients(embedded_aws: EmbeddedAWS, clients: Clients) -> Iterator[Clients]:
    """Clients on a reset embedded AWS that executes state machines, with the file index table."""
    moto_sfn.patch()
    set_execution(embedded_aws, True)
    clients.dynamodb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "fileName", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "fileName", "KeyType": "HASH"}])
    yield clients
    set_execution(embedded_aws, False)  # the process-wide default: other tests see moto's plain backend


def create_machine(clients: Clients, definition: str, name: str = "file-index") -> str:
    return str(clients.stepfunctions.create_state_machine(
        name=name, definition=definition.replace("${FilesTable}", TABLE), roleArn=ROLE)["stateMachineArn"])


def object_created(key: str, time_: str, size: int = 5, bucket: str = "uploads",
                   etag: str = "b1946ac92492d2347c6235b4d2611184") -> dict[str, Any]:
    """An S3 Object Created event as EventBridge delivers it (keys are not URL-encoded here)."""
    return {
        "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": time_, "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": size, "etag": etag,
                              "sequencer": "617f08299329d189"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                   "source-ip-address": "1.2.3.4", "reason": "PutObject"},
    }


def run(clients: Clients, machine: str, name: str, event: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
    arn = clients.stepfunctions.start_execution(stateMachineArn=machine, name=name,
                                                input=json.dumps(event))["executionArn"]
    deadline = time.monotonic() + timeout
    while True:
        desc = clients.stepfunctions.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING" or time.monotonic() > deadline:
            return dict(desc)
        time.sleep(0.05)


def states_entered(clients: Clients, execution_arn: str) -> list[str]:
    events = clients.stepfunctions.get_execution_history(executionArn=execution_arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def row(clients: Clients, key: str) -> dict[str, Any]:
    item = clients.dynamodb.get_item(TableName=TABLE, Key={"fileName": {"S": key}}, ConsistentRead=True)
    return {k: next(iter(v.values())) for k, v in item.get("Item", {}).items()}


def test_the_file_index_asl_puts_new_files_and_updates_known_ones(sfn_clients: Clients) -> None:
    machine = create_machine(sfn_clients, ASL.read_text())
    key = "reports/2026/Q1 summary – café.pdf"  # nested, a space, non-ASCII: verbatim in the index
    first = run(sfn_clients, machine, "upload-1", object_created(key, "2026-03-01T10:00:00Z", size=1234, etag="e1"))
    assert first["status"] == "SUCCEEDED", first
    assert states_entered(sfn_clients, first["executionArn"]) == ["Query", "ObjectExists", "PutObject", "ObjectAdded"]
    assert row(sfn_clients, key) == {"fileName": key, "bucket": "uploads", "size": "1234", "etag": "e1", "version": "1",
                                     "firstSeen": "2026-03-01T10:00:00Z", "lastModified": "2026-03-01T10:00:00Z"}

    again = run(sfn_clients, machine, "upload-2", object_created(key, "2026-03-02T08:30:00Z", size=2048, etag="e2"))
    assert again["status"] == "SUCCEEDED", again
    assert states_entered(sfn_clients, again["executionArn"]) == ["Query", "ObjectExists", "UpdateObject",
                                                                  "ObjectUpdated"]
    assert row(sfn_clients, key) == {"fileName": key, "bucket": "uploads", "size": "2048", "etag": "e2", "version": "2",
                                     "firstSeen": "2026-03-01T10:00:00Z", "lastModified": "2026-03-02T08:30:00Z"}
    assert sfn_clients.dynamodb.scan(TableName=TABLE)["Count"] == 1


def test_concurrent_uploads_of_one_key_are_all_counted(sfn_clients: Clients) -> None:
    """Executions racing between Query and PutObject: the conditional put's failure is caught and
    becomes an update, so no upload is lost (the article's PutItem would overwrite)."""
    machine = create_machine(sfn_clients, ASL.read_text())
    n = 6
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        run(sfn_clients, machine, f"race-{i}", object_created("inbox/same.csv", f"2026-03-01T10:00:0{i}Z"))))
        for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["status"] for r in results) == ["SUCCEEDED"] * n
    ends = [states_entered(sfn_clients, r["executionArn"])[-1] for r in results]
    assert sorted(ends) == ["ObjectAdded"] + ["ObjectUpdated"] * (n - 1)  # one creator, however they raced
    assert row(sfn_clients, "inbox/same.csv")["version"] == str(n)


# The article's ASL as published (seed 002), its <<TABLE_NAME>> placeholder made a substitution.
ARTICLE_ASL = {
    "Comment": "Triggered on EventBridge S3 Object Created notification",
    "StartAt": "Query",
    "States": {
        "Query": {"Type": "Task", "Next": "ObjectExists",
                  "Parameters": {"TableName": "${FilesTable}", "KeyConditionExpression": "fileName = :fileName",
                                 "ExpressionAttributeValues": {":fileName": {"S.$": "$.detail.object.key"}}},
                  "Resource": "arn:aws:states:::aws-sdk:dynamodb:query", "ResultPath": "$.dynamoDbResult"},
        "ObjectExists": {"Type": "Choice", "Choices": [
            {"Variable": "$.dynamoDbResult.Items", "NumericGreaterThan": 0, "Next": "UpdateObject"}],
            "Default": "PutObject"},
        "UpdateObject": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
                         "Parameters": {"TableName": "${FilesTable}", "Key": {"fileName": {"S": "$.detail.object.key"}},
                                        "UpdateExpression": "set lastModified : lastModified",
                                        "ExpressionAttributeValues": {":lastModified": {"S": "$.time"}}},
                         "Next": "ObjectUpdated"},
        "PutObject": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                      "Parameters": {"TableName": "${FilesTable}",
                                     "Item": {"fileName": {"S": "$.detail.object.key"},
                                              "lastModified": {"S": "$.time"}}},
                      "Next": "ObjectAdded"},
        "ObjectUpdated": {"Type": "Succeed"},
        "ObjectAdded": {"Type": "Succeed"},
    },
}


def test_the_articles_asl_as_published_indexes_a_json_path(sfn_clients: Clients) -> None:
    """With its table (fileName + lastModified as the key), the article's ASL stores the JSONPath
    text itself (``"S": "$.detail.object.key"`` lacks ``.$``), and every upload takes the put."""
    sfn_clients.dynamodb.create_table(
        TableName="article-files", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "fileName", "AttributeType": "S"},
                              {"AttributeName": "lastModified", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "fileName", "KeyType": "HASH"},
                   {"AttributeName": "lastModified", "KeyType": "RANGE"}])
    machine = str(sfn_clients.stepfunctions.create_state_machine(
        name="article", roleArn=ROLE,
        definition=json.dumps(ARTICLE_ASL).replace("${FilesTable}", "article-files"))["stateMachineArn"])
    for i, key in enumerate(["a.txt", "b.txt", "a.txt"]):
        result = run(sfn_clients, machine, f"article-{i}", object_created(key, f"2026-03-0{i + 1}T10:00:00Z"))
        assert states_entered(sfn_clients, result["executionArn"])[-2:] == ["PutObject", "ObjectAdded"]
    items = sfn_clients.dynamodb.scan(TableName="article-files")["Items"]
    assert items == [{"fileName": {"S": "$.detail.object.key"}, "lastModified": {"S": "$.time"}}]


def test_the_articles_choice_on_items_never_finds_a_file(sfn_clients: Clients) -> None:
    """The article's ``"Variable": "$.dynamoDbResult.Items", "NumericGreaterThan": 0``: a list is no
    number, so the rule never matches; with its unconditional PutItem, a known file's row is replaced."""
    asl = json.loads(ASL.read_text())
    asl["States"]["ObjectExists"]["Choices"][0]["Variable"] = "$.dynamoDbResult.Items"
    asl["States"]["Query"]["ResultSelector"] = {"Items.$": "$.Items"}
    put = asl["States"]["PutObject"]
    del put["Catch"], put["Parameters"]["ConditionExpression"]
    machine = create_machine(sfn_clients, json.dumps(asl), name="file-index-article")
    sfn_clients.dynamodb.put_item(TableName=TABLE, Item={"fileName": {"S": "a.txt"}, "version": {"N": "3"},
                                                         "firstSeen": {"S": "2026-01-01T00:00:00Z"}})
    result = run(sfn_clients, machine, "article-1", object_created("a.txt", "2026-03-01T10:00:00Z"))
    assert result["status"] == "SUCCEEDED", result
    assert states_entered(sfn_clients, result["executionArn"]) == ["Query", "ObjectExists", "PutObject", "ObjectAdded"]
    assert row(sfn_clients, "a.txt")["version"] == "1"  # its history (three uploads since January) is lost
    assert row(sfn_clients, "a.txt")["firstSeen"] == "2026-03-01T10:00:00Z"


def test_the_interpreter_calls_the_server_that_took_the_request(sfn_clients: Clients,
                                                                embedded_aws: EmbeddedAWS) -> None:
    create_machine(sfn_clients, ASL.read_text())
    assert moto_sfn.endpoint() == embedded_aws.endpoint_url
    rebound = sys.modules["moto.stepfunctions.parser.asl.utils.boto_client"].boto_client_for
    original = rebound.__wrapped__
    holders = [m.__name__ for m in list(sys.modules.values())
               if getattr(m, "__name__", "").startswith("moto.stepfunctions.parser")
               and getattr(m, "boto_client_for", None) is not None]
    assert len(holders) >= 10  # the service integrations, the Lambda helper, the Map state's S3 readers/writers
    assert [h for h in holders if sys.modules[h].boto_client_for is original] == []
    moto_sfn.patch()  # idempotent: no second wrapper
    assert sys.modules["moto.stepfunctions.parser.asl.utils.boto_client"].boto_client_for is rebound


def test_a_failing_service_call_fails_the_execution_with_dynamodbs_error(sfn_clients: Clients,
                                                                         settings: Settings) -> None:
    """The error reaches the execution with Step Functions' name for it (as a Catch would see it)."""
    machine = create_machine(sfn_clients, ASL.read_text().replace("${FilesTable}", "missing"), name="broken")
    result = run(sfn_clients, machine, "broken-1", object_created("a.txt", "2026-03-01T10:00:00Z"))
    assert result["status"] == "FAILED"
    history = sfn_clients.stepfunctions.get_execution_history(executionArn=result["executionArn"])["events"]
    failed = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
    assert failed and failed[0]["error"] == "DynamoDb.ResourceNotFoundException"
    assert settings.region in result["executionArn"]


def test_s3_events_on_eventbridge_have_ids_of_their_own_and_an_etag(sfn_clients: Clients) -> None:
    """S3 → EventBridge → SQS is moto's own delivery; each event gets its own id (a rule's target
    names executions after it), ``etag`` as AWS names it, and the key as it is (not URL-encoded)."""
    s3, events, sqs = sfn_clients.s3, sfn_clients.events, sfn_clients.sqs
    s3.create_bucket(Bucket="index-uploads")
    s3.put_bucket_notification_configuration(Bucket="index-uploads",
                                             NotificationConfiguration={"EventBridgeConfiguration": {}})
    urls = [sqs.create_queue(QueueName=f"seen-{i}")["QueueUrl"] for i in range(2)]
    for i, url in enumerate(urls):  # two rules: one event, one id for both
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"],
                   "detail": {"bucket": {"name": ["index-uploads"]}}}
        events.put_rule(Name=f"created-{i}", EventPattern=json.dumps(pattern))
        events.put_targets(Rule=f"created-{i}", Targets=[{"Id": "q", "Arn": arn}])
    keys = ["a/b c.txt", "données/été 2026+x.csv"]
    for key in keys:
        s3.put_object(Bucket="index-uploads", Key=key, Body=b"hello")
    got = [[json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
           for url in urls]
    assert [[e["detail"]["object"]["key"] for e in g] for g in got] == [keys, keys]
    assert [e["id"] for e in got[0]] == [e["id"] for e in got[1]]
    assert len({e["id"] for e in got[0]}) == 2
    assert {e["detail"]["object"]["etag"] for e in got[0]} == {"5d41402abc4b2a76b9719d911017c592"}
    assert all("eTag" not in e["detail"]["object"] for e in got[0])
