"""An app's SAM template rendered from its declaration (lake/deploy/apps.py): every kind of resource
and trigger, cfn-lint clean before and after the SAM transform, least privilege, and the checks that
refuse what AWS would refuse at deploy time."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from lake.apps import (
    App,
    Bucket,
    BucketEvents,
    Function,
    KinesisEvents,
    Notification,
    Permission,
    Queue,
    QueueEvents,
    RuleEvents,
    StateMachine,
    StreamEvents,
    Subscription,
    Table,
    Topic,
    TopicEvents,
)
from lake.deploy.apps import render, to_yaml
from lake.deploy.template import Layout
from lake.deploy.validate import expand_sam, lint, privilege_problems, role_statements
from lake.errors import ConfigError

ASL = {
    "Comment": "index a file: ${Table} and ${Alerts}; $$.Execution.Name stays",
    "StartAt": "Find",
    "States": {
        "Find": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:query",
                 "Parameters": {"TableName": "${Table}", "KeyConditionExpression": "pk = :pk",
                                "ExpressionAttributeValues": {":pk": {"S.$": "$.detail.object.key"}}},
                 "Next": "Notify"},
        "Notify": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                   "Parameters": {"TopicArn": "${Alerts}", "Message.$": "States.Format('{}', $.Count)"},
                   "End": True},
    },
}


def full_app(root: Path) -> App:
    """One app with every kind of resource and trigger the declaration knows."""
    (root / "index.asl.json").write_text(json.dumps(ASL, indent=2))
    created = json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"],
                          "detail": {"bucket": {"name": ["${bucket:uploads}"]}}})
    return App(
        "demo", description="every resource and trigger", root=str(root),
        tables=(Table("files", "pk", range_key="sk", range_type="N", ttl_attribute="expires_at"),
                Table("commands", "id", stream="NEW_IMAGE", archived=False),
                Table("cache", "k", stream=None, archived=False)),
        buckets=(Bucket("uploads", eventbridge=True, notifications=(
            Notification("rows", "topic", prefix="rows/", suffix=".csv"),
            Notification("jobs", "queue", events=("s3:ObjectRemoved:*",)),
            Notification("ingest", "function", prefix="raw/"))),),
        topics=(Topic("rows"), Topic("alerts"), Topic("orders.fifo", fifo=True, content_based_deduplication=True)),
        queues=(Queue("jobs", visibility_timeout_s=60, dead_letter="jobs-dlq"), Queue("jobs-dlq"),
                Queue("work.fifo", fifo=True, content_based_deduplication=True, visibility_timeout_s=120,
                      dead_letter="work-dlq.fifo", max_receive_count=5,
                      triggers=(RuleEvents("order-placed", pattern='{"source": ["shop"]}'),)),
                Queue("ticks", triggers=(RuleEvents("every-minute", schedule="rate(1 minute)"),)),
                Queue("work-dlq.fifo", fifo=True), Queue("failures")),
        subscriptions=(Subscription("orders.fifo", "work.fifo", raw_message_delivery=True,
                                    filter_policy='{"kind": ["order"]}'),
                       Subscription("alerts", "jobs")),
        functions=(
            Function("ingest", "examples.demo.handlers:ingest",
                     triggers=(TopicEvents("rows", filter_policy='{"size": [{"numeric": [">", 0]}]}'),),
                     environment=(("TABLE", "${table:files}"), ("BUCKET", "${bucket:uploads}"),
                                  ("WHERE", "s3://${bucket:uploads}/raw/ in ${table:files}")),
                     permissions=(Permission("table", "files", ("dynamodb:PutItem", "dynamodb:BatchWriteItem")),
                                  Permission("bucket-objects", "uploads/raw/", ("s3:GetObject",)),
                                  Permission("bucket", "uploads", ("s3:ListBucket",)))),
            Function("counter", "examples.demo.handlers:count", description="files' stream → the work queue ✓",
                     triggers=(StreamEvents("files", batch_size=10, filter_patterns=(
                         '{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"n": {"N": ["10"]}}}}',),
                         maximum_retry_attempts=3, bisect_batch_on_function_error=True,
                         report_batch_item_failures=True, on_failure="failures"),),
                     environment=(("QUEUE", "${queue:work.fifo}"), ("STREAM", "${table-stream:files}")),
                     permissions=(Permission("queue", "work.fifo", ("sqs:SendMessage",)),
                                  Permission("topic", "rows", ("sns:Publish",)))),
            Function("worker", "examples.demo.handlers:work", timeout_s=60,
                     triggers=(QueueEvents("work.fifo", batch_size=5), QueueEvents("jobs", batch_size=50,
                                                                                   batching_window_s=2))),
            Function("fetcher", "examples.demo.handlers:fetch",
                     triggers=(RuleEvents("every-hour", schedule="rate(1 hour)", input='{"feed": "sample"}'),
                               RuleEvents("on-upload", pattern=created)),
                     environment=(("MACHINE", "${state-machine:index}"), ("ALERTS", "${topic:alerts}")),
                     permissions=(Permission("state-machine", "index", ("states:StartExecution",)),)),
            Function("fanout", "examples.demo.handlers:post",
                     triggers=(KinesisEvents(batch_size=50, on_failure="failures",
                                             report_batch_item_failures=True),),
                     environment=(("LAKE_STREAM", "${lake-stream}"),)),
            Function("rows-reader", "examples.demo.handlers:rows",
                     triggers=(BucketEvents("uploads", prefix="in/", suffix=".json"),),
                     permissions=(Permission("bucket-objects", "uploads/in/", ("s3:GetObject",)),)),
        ),
        state_machines=(StateMachine(
            "index", "index.asl.json", substitutions=(("Table", "${table:files}"), ("Alerts", "${topic:alerts}")),
            triggers=(RuleEvents("object-created", pattern=created),),
            permissions=(Permission("table", "files", ("dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem")),
                         Permission("topic", "alerts", ("sns:Publish",)))),),
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    return full_app(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def template(app: App) -> dict[str, Any]:
    return render(app)


@pytest.fixture(scope="module")
def expanded(template: dict[str, Any]) -> dict[str, Any]:
    return expand_sam(template)


def _res(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return dict(template["Resources"][logical_id]["Properties"])


def _statements(template: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    return {st["Sid"]: st for r, st in role_statements(template) if r == role}


def test_cfn_lint_clean_before_and_after_the_sam_transform(template: dict[str, Any],
                                                          expanded: dict[str, Any]) -> None:
    assert [str(f) for f in lint(template)] == []
    assert [str(f) for f in lint(expanded)] == []
    assert not any(r["Type"].startswith("AWS::Serverless::") for r in expanded["Resources"].values())


def test_least_privilege_holds(expanded: dict[str, Any]) -> None:
    assert privilege_problems(expanded) == []
    for role, st in role_statements(expanded):
        assert st["Effect"] == "Allow" and st["Action"] and st["Resource"], role


def test_tables(template: dict[str, Any]) -> None:
    files = template["Resources"]["FilesTable"]
    assert files["DeletionPolicy"] == files["UpdateReplacePolicy"] == "Retain"
    props = files["Properties"]
    assert props["TableName"] == "files" and props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert props["AttributeDefinitions"][1] == {"AttributeName": "sk", "AttributeType": "N"}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert "StreamSpecification" not in _res(template, "CacheTable")
    assert _res(template, "CommandsTable")["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


def test_archived_tables_are_outputs_named_as_the_lakes_parameters(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    # only the archived table, under the name the lake's template gives an existing table's stream
    assert Layout.stream_parameter("files") == "FilesStreamArn"
    assert outputs["FilesStreamArn"]["Value"] == {"Fn::GetAtt": ["FilesTable", "StreamArn"]}
    assert "CommandsStreamArn" not in outputs
    assert outputs["LakeTables"]["Value"] == "files:pk:sk/N"
    assert "lake deploy --tables" in to_yaml(template, "examples.demo.app")


def test_bucket_notifications_and_what_lets_s3_deliver(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["UploadsBucket"]
    props = bucket["Properties"]
    assert props["BucketName"] == {"Fn::Sub": "${AWS::StackName}-uploads-${AWS::AccountId}-${AWS::Region}"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    n = props["NotificationConfiguration"]
    assert n["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}
    assert n["TopicConfigurations"] == [{"Event": "s3:ObjectCreated:*", "Topic": {"Ref": "RowsTopic"}, "Filter": {
        "S3Key": {"Rules": [{"Name": "prefix", "Value": "rows/"}, {"Name": "suffix", "Value": ".csv"}]}}}]
    assert n["QueueConfigurations"] == [{"Event": "s3:ObjectRemoved:*", "Queue": {"Fn::GetAtt": ["JobsQueue", "Arn"]}}]
    assert [c["Function"] for c in n["LambdaConfigurations"]] == [{"Fn::GetAtt": ["IngestFunction", "Arn"]},
                                                                  {"Fn::GetAtt": ["RowsReaderFunction", "Arn"]}]
    # S3 checks each destination when the bucket is configured: the grants exist first
    assert bucket["DependsOn"] == ["IngestFunctionUploadsBucketPermission", "JobsQueuePolicy",
                                   "RowsReaderFunctionUploadsBucketPermission", "RowsTopicPolicy"]
    arn = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::StackName}-uploads-${AWS::AccountId}-${AWS::Region}"}
    perm = _res(template, "IngestFunctionUploadsBucketPermission")
    assert perm["Principal"] == "s3.amazonaws.com" and perm["SourceArn"] == arn
    topic_policy = {s["Sid"]: s for s in _res(template, "RowsTopicPolicy")["PolicyDocument"]["Statement"]}
    assert topic_policy["UploadsBucketNotifies"]["Condition"]["ArnEquals"] == {"aws:SourceArn": arn}
    queue_policy = {s["Sid"]: s for s in _res(template, "JobsQueuePolicy")["PolicyDocument"]["Statement"]}
    assert queue_policy["UploadsBucketNotifies"]["Principal"] == {"Service": "s3.amazonaws.com"}
    deny = _res(template, "UploadsBucketPolicy")["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_topics_queues_and_subscriptions(template: dict[str, Any]) -> None:
    fifo = _res(template, "OrdersFifoTopic")
    assert fifo == {"TopicName": {"Fn::Sub": "${AWS::StackName}-orders.fifo"}, "FifoTopic": True,
                    "ContentBasedDeduplication": True, "KmsMasterKeyId": "alias/aws/sns"}
    # S3 cannot use the AWS-managed key: the topic it publishes to has the app's own key
    assert _res(template, "RowsTopic")["KmsMasterKeyId"] == {"Ref": "TopicKey"}
    work = _res(template, "WorkFifoQueue")
    assert work["FifoQueue"] is True and work["ContentBasedDeduplication"] is True and work["VisibilityTimeout"] == 120
    assert work["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["WorkDlqFifoQueue", "Arn"]},
                                     "maxReceiveCount": 5}
    assert work["SqsManagedSseEnabled"] is True
    assert _res(template, "WorkDlqFifoQueue")["MessageRetentionPeriod"] == 1_209_600
    sub = _res(template, "OrdersFifoToWorkFifoSubscription")
    assert sub["Protocol"] == "sqs" and sub["RawMessageDelivery"] is True and sub["FilterPolicy"] == {"kind": ["order"]}
    statements = {s["Sid"]: s for s in _res(template, "WorkFifoQueuePolicy")["PolicyDocument"]["Statement"]}
    assert statements["OrdersFifoTopicSends"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Ref": "OrdersFifoTopic"}}}
    assert set(statements) == {"DenyInsecureTransport", "OrdersFifoTopicSends", "OrderPlacedRuleSends"}
    assert statements["OrderPlacedRuleSends"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["OrderPlacedRule", "Arn"]}}}


def test_rules_targeting_queues(template: dict[str, Any]) -> None:
    placed = _res(template, "OrderPlacedRule")
    assert placed["EventPattern"] == {"source": ["shop"]}
    # a FIFO target needs a message group: one per rule
    assert placed["Targets"] == [{"Id": "queue", "Arn": {"Fn::GetAtt": ["WorkFifoQueue", "Arn"]},
                                  "SqsParameters": {"MessageGroupId": "order-placed"}}]
    minute = _res(template, "EveryMinuteRule")
    assert minute["ScheduleExpression"] == "rate(1 minute)"
    assert minute["Targets"] == [{"Id": "queue", "Arn": {"Fn::GetAtt": ["TicksQueue", "Arn"]}}]
    statements = {s["Sid"]: s for s in _res(template, "TicksQueuePolicy")["PolicyDocument"]["Statement"]}
    assert statements["EveryMinuteRuleSends"]["Principal"] == {"Service": "events.amazonaws.com"}


def test_functions_environment_and_code(template: dict[str, Any]) -> None:
    ingest = _res(template, "IngestFunction")
    assert ingest["Handler"] == "examples.demo.handlers.ingest" and ingest["Runtime"] == "python3.11"
    assert ingest["CodeUri"] == {"Bucket": {"Ref": "ArtifactBucket"}, "Key": {"Fn::Sub": "${ArtifactPrefix}lambda.zip"}}
    env = ingest["Environment"]["Variables"]
    # the bucket's name, not a Ref to it: the bucket notifies this function (a Ref would be a cycle)
    name = {"Fn::Sub": "${AWS::StackName}-uploads-${AWS::AccountId}-${AWS::Region}"}
    assert env["TABLE"] == {"Ref": "FilesTable"} and env["BUCKET"] == name
    assert env["WHERE"] == {"Fn::Sub": ["s3://${Ref0}/raw/ in ${Ref1}", {"Ref0": name, "Ref1": {"Ref": "FilesTable"}}]}
    assert _res(template, "CounterFunction")["Environment"]["Variables"]["STREAM"] == {
        "Fn::GetAtt": ["FilesTable", "StreamArn"]}
    assert _res(template, "FanoutFunction")["Environment"]["Variables"]["LAKE_STREAM"] == {"Fn::If": [
        "HasLakeStream", {"Fn::Select": [1, {"Fn::Split": ["/", {"Ref": "LakeStreamArn"}]}]}, ""]}
    assert _res(template, "FetcherFunction")["Environment"]["Variables"]["MACHINE"] == {"Ref": "IndexStateMachine"}


def test_one_role_per_function_from_its_permissions_and_triggers(template: dict[str, Any]) -> None:
    ingest = _statements(template, "IngestFunctionRole")
    assert ingest["TableFiles0"] == {"Sid": "TableFiles0", "Effect": "Allow",
                                     "Action": ["dynamodb:BatchWriteItem", "dynamodb:PutItem"],
                                     "Resource": [{"Fn::GetAtt": ["FilesTable", "Arn"]}]}
    assert ingest["BucketObjectsUploadsRaw1"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::StackName}-uploads-${AWS::AccountId}-${AWS::Region}/raw/*"}]
    assert ingest["WriteLogs"]["Resource"] == [{"Fn::GetAtt": ["IngestFunctionLogGroup", "Arn"]}]
    # IAM takes Latin-1 only in a role's description (Lambda takes any text in the function's)
    assert template["Resources"]["CounterFunctionRole"]["Properties"]["Description"] == \
        "demo counter: files' stream -> the work queue ?"
    assert _res(template, "CounterFunction")["Description"] == "files' stream → the work queue ✓"
    counter = _statements(template, "CounterFunctionRole")
    assert counter["ReadFilesStream0"]["Resource"] == [{"Fn::GetAtt": ["FilesTable", "StreamArn"]}]
    assert counter["SendFailures0"]["Resource"] == [{"Fn::GetAtt": ["FailuresQueue", "Arn"]}]
    # publishing to a topic with the app's key needs that key
    assert counter["EncryptForRows1"]["Resource"] == [{"Fn::GetAtt": ["TopicKey", "Arn"]}]
    worker = _statements(template, "WorkerFunctionRole")
    assert worker["ReceiveWorkFifo0"]["Action"] == ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                                                    "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    assert worker["ReceiveJobs1"]["Resource"] == [{"Fn::GetAtt": ["JobsQueue", "Arn"]}]
    fanout = _statements(template, "FanoutFunctionRole")
    assert fanout["ReadLakeStream0"]["Resource"] == [{"Ref": "LakeStreamArn"}]
    assert set(_statements(template, "FetcherFunctionRole")) == {"StateMachineIndex0", "WriteLogs"}
    roles = {k for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert roles == {"IngestFunctionRole", "CounterFunctionRole", "WorkerFunctionRole", "FetcherFunctionRole",
                     "FanoutFunctionRole", "RowsReaderFunctionRole", "IndexStateMachineRole", "ObjectCreatedRuleRole"}


def test_triggers(template: dict[str, Any]) -> None:
    stream = _res(template, "CounterFunctionFilesStreamMapping")
    assert stream["FilterCriteria"] == {"Filters": [
        {"Pattern": '{"eventName":["MODIFY"],"dynamodb":{"NewImage":{"n":{"N":["10"]}}}}'}]}
    assert stream["BisectBatchOnFunctionError"] is True and stream["MaximumRetryAttempts"] == 3
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["FailuresQueue", "Arn"]}}}
    fifo = _res(template, "WorkerFunctionWorkFifoQueueMapping")
    assert fifo["BatchSize"] == 5 and "MaximumBatchingWindowInSeconds" not in fifo
    jobs = _res(template, "WorkerFunctionJobsQueueMapping")
    assert jobs["BatchSize"] == 50 and jobs["MaximumBatchingWindowInSeconds"] == 2
    assert jobs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert _res(template, "FanoutFunctionLakeStreamMapping")["EventSourceArn"] == {"Ref": "LakeStreamArn"}
    # the lake's stream may not exist yet (the lake archives this app's tables: the app comes first)
    assert template["Resources"]["FanoutFunctionLakeStreamMapping"]["Condition"] == "HasLakeStream"
    assert template["Conditions"]["HasLakeStream"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "LakeStreamArn"}, ""]}]}
    assert template["Parameters"]["LakeStreamArn"]["Default"] == ""
    sns = _res(template, "IngestFunctionRowsSubscription")
    assert sns["Protocol"] == "lambda" and sns["FilterPolicy"] == {"size": [{"numeric": [">", 0]}]}
    assert _res(template, "IngestFunctionRowsTopicPermission")["SourceArn"] == {"Ref": "RowsTopic"}
    hourly = _res(template, "EveryHourRule")
    assert hourly["ScheduleExpression"] == "rate(1 hour)"
    assert hourly["Targets"] == [{"Id": "function", "Arn": {"Fn::GetAtt": ["FetcherFunction", "Arn"]},
                                  "Input": '{"feed": "sample"}'}]
    assert _res(template, "EveryHourRulePermission")["SourceArn"] == {"Fn::GetAtt": ["EveryHourRule", "Arn"]}
    on_upload = _res(template, "OnUploadRule")["EventPattern"]
    assert on_upload["detail-type"] == ["Object Created"]
    # references in a pattern resolve as in an environment (CloudFormation resolves intrinsics in JSON)
    assert on_upload["detail"]["bucket"]["name"] == [
        {"Fn::Sub": "${AWS::StackName}-uploads-${AWS::AccountId}-${AWS::Region}"}]


def test_state_machine_definition_role_and_rule(app: App, template: dict[str, Any]) -> None:
    machine = _res(template, "IndexStateMachine")
    text, variables = machine["DefinitionString"]["Fn::Sub"]
    assert variables == {"Table": {"Ref": "FilesTable"}, "Alerts": {"Ref": "AlertsTopic"}}
    assert json.loads(text.replace("${Table}", "t").replace("${Alerts}", "a"))["StartAt"] == "Find"
    assert "$$.Execution.Name" in text  # not a substitution: left as it is
    assert machine["RoleArn"] == {"Fn::GetAtt": ["IndexStateMachineRole", "Arn"]}
    role = _statements(template, "IndexStateMachineRole")
    assert role["TableFiles0"]["Action"] == ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
    rule = _res(template, "ObjectCreatedRule")
    assert rule["Targets"] == [{"Id": "state-machine", "Arn": {"Ref": "IndexStateMachine"},
                                "RoleArn": {"Fn::GetAtt": ["ObjectCreatedRuleRole", "Arn"]}}]
    starts = _statements(template, "ObjectCreatedRuleRole")["StartExecution"]
    assert starts["Resource"] == [{"Ref": "IndexStateMachine"}]


def test_the_yaml_is_the_template(template: dict[str, Any]) -> None:
    import yaml

    text = to_yaml(template, "examples.demo.app")
    assert text.startswith("# Generated by `lake template --app examples.demo.app`")
    assert yaml.safe_load(text) == template


def _with(app: App, **changes: Any) -> App:
    return dataclasses.replace(app, **changes)


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: _with(a, buckets=(Bucket("Uploads"),)), "3-32 of"),
    (lambda a: _with(a, tables=(Table("files", "pk", stream="NEW_IMAGE"),)), "NEW_AND_OLD_IMAGES"),
    (lambda a: _with(a, topics=(Topic("t.fifo", fifo=True),), buckets=(Bucket("b", notifications=(
        Notification("t.fifo", "topic"),)),)), "FIFO"),
    (lambda a: _with(a, topics=(Topic("t"),), queues=(Queue("q"),), buckets=(Bucket("b", notifications=(
        Notification("t", "topic", prefix="a/"), Notification("q", "queue", prefix="a/b/"))),)), "overlap"),
    (lambda a: _with(a, queues=(Queue("q"),), functions=(Function("f", "m:f", timeout_s=60,
                                                                  triggers=(QueueEvents("q"),)),)), "visibility"),
    (lambda a: _with(a, queues=(Queue("q.fifo", fifo=True, visibility_timeout_s=60),), functions=(
        Function("f", "m:f", triggers=(QueueEvents("q.fifo", batching_window_s=1),)),)), "FIFO queue's mapping"),
    (lambda a: _with(a, topics=(Topic("t.fifo", fifo=True),), functions=(
        Function("f", "m:f", triggers=(TopicEvents("t.fifo"),)),)), "cannot subscribe"),
    (lambda a: _with(a, tables=(Table("t", "k", archived=False),), functions=(
        Function("f", "m:f", triggers=(StreamEvents("t", on_failure="nope"),)),)), "not a declared queue"),
    (lambda a: _with(a, tables=(Table("t", "k"),), functions=(
        Function("f", "m:f", permissions=(Permission("table", "t", ("dynamodb:*",)),)),)), "no \\*"),
    (lambda a: _with(a, tables=(Table("t", "k"),), functions=(
        Function("f", "m:f", permissions=(Permission("table", "t", ("s3:GetObject",)),)),)), "s3:GetObject"),
    (lambda a: _with(a, functions=(Function("f", "m:f", permissions=(Permission("queue", "nope",
                                                                               ("sqs:SendMessage",)),)),)),
     "undeclared queue"),
    (lambda a: _with(a, functions=(Function("f", "m:f", triggers=(RuleEvents("r"),)),)), "pattern or a schedule"),
    (lambda a: _with(a, functions=(Function("f", "m:f", triggers=(RuleEvents("r", schedule="rate(1 hour)"),)),
                                   Function("g", "m:g", triggers=(RuleEvents("r", schedule="rate(1 hour)"),)))),
     "declared twice"),
    # App.validate checks functions' environments, not state machines' substitutions
    (lambda a: _with(a, state_machines=(StateMachine("index", "index.asl.json", substitutions=(
        ("Table", "${table:files}"), ("Alerts", "x"))),)), "undeclared resource"),
    (lambda a: _with(a, state_machines=(StateMachine("index", "index.asl.json", substitutions=(
        ("Table", "${nope:files}"), ("Alerts", "x"))),)), "unknown reference"),
    (lambda a: _with(a, functions=(Function("f-g", "m:f"), Function("f.g", "m:f"))), "logical id"),
    (lambda a: _with(a, functions=(Function("f", "m:f", environment=(("AWS_REGION", "x"),)),)), "reserves"),
    (lambda a: _with(a, functions=(Function("f", "m:f", environment=(("1X", "x"),)),)), "syntax"),
    (lambda a: _with(a, functions=(Function("f", "handler_without_function"),)), "module:function"),
])
def test_what_aws_would_refuse_is_refused_when_rendering(app: App, change: Any, message: str) -> None:
    base = _with(app, tables=(), buckets=(), topics=(), queues=(), subscriptions=(), functions=(), state_machines=())
    with pytest.raises(ConfigError, match=message):
        render(change(base))


def test_a_state_machine_substitution_missing_from_its_file(app: App) -> None:
    machine = app.state_machines[0]
    broken = _with(app, state_machines=(dataclasses.replace(
        machine, substitutions=(*machine.substitutions, ("Nowhere", "x"))),))
    with pytest.raises(ConfigError, match="Nowhere not in"):
        render(broken)


def test_whole_bucket_objects_are_rendered_and_the_check_reports_them(app: App) -> None:
    ingest = app.functions[0]
    wide = _with(app, functions=(dataclasses.replace(ingest, permissions=(
        Permission("bucket-objects", "uploads", ("s3:GetObject",)),)), *app.functions[1:]))
    problems = privilege_problems(expand_sam(render(wide)))
    assert problems == ["IngestFunctionRole: resource arn:${AWS::Partition}:s3:::${AWS::StackName}-uploads-"
                        "${AWS::AccountId}-${AWS::Region}/* (BucketObjectsUploads0)"]


@dataclasses.dataclass(frozen=True)
class PrefixedPermission(Permission):
    """A permission with a key prefix of its own (a field the declaration may grow)."""

    prefix: str = ""


def test_a_permissions_prefix_field_scopes_the_objects(app: App) -> None:
    ingest = app.functions[0]
    scoped = _with(app, functions=(dataclasses.replace(ingest, permissions=(
        PrefixedPermission("bucket-objects", "uploads", ("s3:GetObject",), prefix="raw/"),)), *app.functions[1:]))
    statements = _statements(render(scoped), "IngestFunctionRole")
    assert statements["BucketObjectsUploads0"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::StackName}-uploads-${AWS::AccountId}-${AWS::Region}/raw/*"}]


def test_rendering_does_not_change_the_declaration(app: App) -> None:
    before = copy.deepcopy(app)
    assert render(app) == render(app)
    assert app == before


# -- the examples' declarations ---------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
#: Every example declaring an app (examples/<name>/app.py): each must render and validate.
EXAMPLES = sorted(f"examples.{p.parent.name}.app" for p in (REPO / "examples").glob("*/app.py"))


@pytest.mark.parametrize("module", EXAMPLES)
def test_each_examples_template_renders_cfn_lint_clean_with_least_privilege(module: str) -> None:
    from lake.deploy.app_command import load_app

    app = load_app(module)
    template = render(app)
    expanded = expand_sam(template)
    assert [str(f) for f in lint(template)] == []
    assert [str(f) for f in lint(expanded)] == []
    assert privilege_problems(expanded) == []
    archived = [t.name for t in app.tables if t.archived]
    assert {k for k in template.get("Outputs", {}) if k.endswith("StreamArn")} == {
        Layout.stream_parameter(t) for t in archived}


# -- lake template --app, and the app's code bundle ------------------------------------------------------

@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package on sys.path (a new name per test: imported modules stay in sys.modules) whose ``app``
    module declares APP (the full app), ``bare`` an app without a root, ``nothing`` no APP."""
    name = "demo_app_" + re.sub(r"\W", "_", tmp_path.name)
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text("from pathlib import Path\n\nfrom tests.unit.test_deploy_apps import full_app\n\n"
                                    "APP = full_app(Path(__file__).parent)\n")
    (package / "bare.py").write_text("from lake.apps import App, StateMachine\n\n"
                                     "APP = App('bare', state_machines=(StateMachine('m', 'index.asl.json'),))\n")
    (package / "nothing.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_lake_template_app_renders_and_validates(app_module: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from lake.cli import main

    out = tmp_path / "app.yaml"
    assert main(["template", "--app", f"{app_module}.app", "-o", str(out)]) == 0
    assert "cfn-lint clean, least privilege holds" in capsys.readouterr().err
    text = out.read_text()
    assert text.startswith(f"# Generated by `lake template --app {app_module}.app`")
    assert "AWS::Serverless::Function" in text and "FilesStreamArn" in text
    assert main(["template", "--app", f"{app_module}.app", "--expanded", "--no-validate", "-o", str(out)]) == 0
    assert "AWS::Serverless::Function" not in out.read_text() and "AWS::Lambda::Function" in out.read_text()
    assert main(["template", "--app", f"{app_module}.nothing", "-o", str(out)]) == 2
    assert "declares no APP" in capsys.readouterr().err
    assert main(["template", "--app", "no_such_module_here.app", "-o", str(out)]) == 2
    assert "cannot import it" in capsys.readouterr().err


def test_an_apps_root_defaults_to_its_modules_directory(app_module: str, tmp_path: Path) -> None:
    from lake.deploy.app_command import load_app

    app = load_app(f"{app_module}.bare")
    assert Path(app.root) == (tmp_path / app_module).resolve()
    (Path(app.root) / "index.asl.json").write_text(json.dumps({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "End": True}}}))
    assert render(app)["Resources"]["MStateMachine"]["Properties"]["DefinitionString"] == {
        "Fn::Sub": (Path(app.root) / "index.asl.json").read_text()}


def test_the_apps_code_bundle_adds_its_directory_to_the_lakes(tmp_path: Path) -> None:
    import io
    import zipfile

    from lake.deploy.app_bundle import app_lambda_bundle
    from lake.deploy.bundle import source_root

    root = tmp_path / "repo"
    root.mkdir()
    for package in ("lake", "lambdas"):
        (root / package).symlink_to(source_root() / package)
    demo = root / "examples" / "demo"
    (demo / "tests").mkdir(parents=True)
    (demo / "__pycache__").mkdir()
    (root / "examples" / "__init__.py").write_text("")
    for name, text in (("__init__.py", ""), ("handlers.py", "def ingest(event, context): ...\n"),
                       ("feed.csv", "price\n1\n"), ("index.asl.json", "{}"), ("tests/test_demo.py", ""),
                       ("__pycache__/handlers.cpython-311.pyc", "")):
        (demo / name).write_text(text)
    first = app_lambda_bundle(demo, root=root, requirements=())
    names = set(zipfile.ZipFile(io.BytesIO(first.data)).namelist())
    assert {"examples/__init__.py", "examples/demo/__init__.py", "examples/demo/handlers.py",
            "examples/demo/feed.csv", "examples/demo/index.asl.json", "lake/apps.py", "lambdas/fanout.py"} <= names
    assert not any("tests/" in n or "__pycache__" in n or n.startswith("lake/local/") for n in names)
    assert first.files == len(names)
    assert app_lambda_bundle(demo, root=root, requirements=()).data == first.data  # same code, same zip
    with pytest.raises(ConfigError, match="not a directory under"):
        app_lambda_bundle(tmp_path, root=root, requirements=())
