"""An app's template, SAM-expanded offline, created on the embedded CloudFormation (moto), every
resource moto can create looked up in its own service (as tests/integration/test_deploy.py does
for the lake's template).

moto has no model for SNS subscriptions, queue, topic and bucket policies (APP_MOTO_CANNOT_CREATE):
it skips them, so the S3 -> SNS/SQS/Lambda grants and the SNS -> SQS/Lambda subscriptions are
checked by the unit tests and on AWS only. Of a bucket it applies encryption only, not the
notification configuration; of a table not its TTL; of a state machine it takes DefinitionString only.
"""

from __future__ import annotations

import ast
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.parsing import get_model_map

from lake.apps import QueueEvents, StreamEvents
from lake.deploy import bundle
from lake.deploy.apps import render
from lake.deploy.validate import expand_sam
from lake.settings import LOCAL_CREDENTIALS, Settings
from tests.unit.test_deploy_apps import EXAMPLES, full_app

REGION = "us-east-1"
APP_MOTO_CANNOT_CREATE = {"AWS::SNS::Subscription", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy",
                          "AWS::S3::BucketPolicy"}


@pytest.fixture(scope="module")
def code() -> bytes:
    return bundle.lambda_bundle(requirements=()).data


def test_the_expanded_app_template_is_created_on_the_embedded_cloudformation(tmp_path: Path, code: bytes) -> None:
    app = full_app(tmp_path)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        s3 = session.client("s3")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key="code/lambda.zip", Body=code)
        kinesis = session.client("kinesis")
        kinesis.create_stream(StreamName="lake-changes", ShardCount=1)
        lake_stream = kinesis.describe_stream_summary(StreamName="lake-changes")["StreamDescriptionSummary"][
            "StreamARN"]
        params = {"ArtifactBucket": "artifacts", "ArtifactPrefix": "code/", "LakeStreamArn": lake_stream}
        template = expand_sam(render(app), params)
        types = {k: v["Type"] for k, v in template["Resources"].items()}
        assert {t for t in types.values() if t not in get_model_map()} == APP_MOTO_CANNOT_CREATE

        cfn = session.client("cloudformation")
        cfn.create_stack(StackName="app", TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        assert cfn.describe_stacks(StackName="app")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                    for r in cfn.list_stack_resources(StackName="app")["StackResourceSummaries"]}
        assert {k for k, t in types.items() if t not in APP_MOTO_CANNOT_CREATE} <= set(physical)
        _check_data(session, physical)
        _check_compute(session, template, physical, lake_stream)
        stack = cfn.describe_stacks(StackName="app")["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        ddb = session.client("dynamodb")
        assert outputs["FilesStreamArn"] == ddb.describe_table(TableName="files")["Table"]["LatestStreamArn"]
        assert outputs["LakeTables"] == "files:pk:sk/N"


def _check_data(session: Any, physical: dict[str, str]) -> None:
    ddb = session.client("dynamodb")
    files = ddb.describe_table(TableName="files")["Table"]
    assert files["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert files["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in files["KeySchema"]] == ["pk", "sk"]
    # moto's table model drops TimeToLiveSpecification (the unit tests check it is rendered)
    assert ddb.describe_time_to_live(TableName="files")["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED", \
        "moto applies TTL from CloudFormation now: assert the attribute"
    assert "StreamSpecification" not in ddb.describe_table(TableName="cache")["Table"]

    s3 = session.client("s3")
    assert physical["UploadsBucket"] == "app-uploads-123456789012-us-east-1"
    rules = s3.get_bucket_encryption(Bucket=physical["UploadsBucket"])["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    sqs = session.client("sqs")
    work = sqs.get_queue_attributes(QueueUrl=physical["WorkFifoQueue"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=physical["WorkDlqFifoQueue"], AttributeNames=["QueueArn"])["Attributes"]
    assert physical["WorkFifoQueue"].endswith("/app-work.fifo")
    assert work["FifoQueue"] == "true" and work["ContentBasedDeduplication"] == "true"
    assert work["VisibilityTimeout"] == "120"
    assert json.loads(work["RedrivePolicy"]) == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}

    sns = session.client("sns")
    orders = sns.get_topic_attributes(TopicArn=physical["OrdersFifoTopic"])["Attributes"]
    assert orders["FifoTopic"] == "true" and orders["ContentBasedDeduplication"] == "true"
    assert orders["KmsMasterKeyId"] == "alias/aws/sns"
    # the topic S3 publishes to has the app's key (moto keeps that key's policy as a dict, on which its
    # DescribeKey fails: the key is found by listing)
    assert physical["TopicKey"] in {k["KeyId"] for k in session.client("kms").list_keys()["Keys"]}
    assert sns.get_topic_attributes(TopicArn=physical["RowsTopic"])["Attributes"]["KmsMasterKeyId"] == \
        physical["TopicKey"]


def _check_compute(session: Any, template: dict[str, Any], physical: dict[str, str], lake_stream: str) -> None:
    lam = session.client("lambda")
    functions = {k for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}
    assert functions == {"IngestFunction", "CounterFunction", "WorkerFunction", "FetcherFunction", "FanoutFunction",
                         "RowsReaderFunction"}
    for fn in functions:
        conf = lam.get_function(FunctionName=physical[fn])["Configuration"]
        assert conf["Handler"] == template["Resources"][fn]["Properties"]["Handler"]
        assert conf["Role"].endswith("/" + physical[f"{fn}Role"])
    env = lam.get_function(FunctionName="app-ingest")["Configuration"]["Environment"]["Variables"]
    assert env["TABLE"] == "files" and env["BUCKET"] == "app-uploads-123456789012-us-east-1"
    assert env["WHERE"] == "s3://app-uploads-123456789012-us-east-1/raw/ in files"
    assert lam.get_function(FunctionName="app-fanout")["Configuration"]["Environment"]["Variables"][
        "LAKE_STREAM"] == "lake-changes"

    mappings = {m["EventSourceArn"]: m for m in lam.list_event_source_mappings()["EventSourceMappings"]}
    ddb = session.client("dynamodb")
    sqs = session.client("sqs")
    files_stream = ddb.describe_table(TableName="files")["Table"]["LatestStreamArn"]
    work_arn = sqs.get_queue_attributes(QueueUrl=physical["WorkFifoQueue"], AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    jobs_arn = sqs.get_queue_attributes(QueueUrl=physical["JobsQueue"], AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    assert set(mappings) == {files_stream, work_arn, jobs_arn, lake_stream}
    assert mappings[files_stream]["FunctionArn"].endswith(":app-counter")
    assert mappings[jobs_arn]["BatchSize"] == 50

    iam = session.client("iam")
    for role in [f"{fn}Role" for fn in functions] + ["IndexStateMachineRole", "ObjectCreatedRuleRole"]:
        declared = template["Resources"][role]["Properties"]["Policies"][0]
        doc = iam.get_role_policy(RoleName=physical[role], PolicyName=declared["PolicyName"])["PolicyDocument"]
        doc = ast.literal_eval(doc) if isinstance(doc, str) else doc  # moto keeps the Python repr
        # a statement on the lake's stream is conditional (Fn::If HasLakeStream): given here
        statements = [st.get("Fn::If", [None, st])[1] for st in declared["PolicyDocument"]["Statement"]]
        assert [st["Sid"] for st in doc["Statement"]] == [st["Sid"] for st in statements]

    events = session.client("events")
    rules = {r["Name"]: r for r in events.list_rules()["Rules"]}
    assert rules["app-every-hour"]["ScheduleExpression"] == "rate(1 hour)"
    pattern = json.loads(rules["app-object-created"]["EventPattern"])
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == ["app-uploads-123456789012-us-east-1"]
    machine = physical["IndexStateMachine"]
    target = events.list_targets_by_rule(Rule="app-object-created")["Targets"][0]
    assert target["Arn"] == machine and target["RoleArn"].endswith("/" + physical["ObjectCreatedRuleRole"])
    assert events.list_targets_by_rule(Rule="app-every-hour")["Targets"][0]["Input"] == '{"feed": "sample"}'
    placed = events.list_targets_by_rule(Rule="app-order-placed")["Targets"][0]
    assert placed["Arn"] == work_arn and placed["SqsParameters"] == {"MessageGroupId": "order-placed"}

    sfn = session.client("stepfunctions")
    described = sfn.describe_state_machine(stateMachineArn=machine)
    assert described["name"] == "app-index"
    definition = json.loads(described["definition"])
    # the substitutions are the table's name and the topic's ARN
    assert definition["States"]["Find"]["Parameters"]["TableName"] == "files"
    assert definition["States"]["Notify"]["Parameters"]["TopicArn"] == physical["AlertsTopic"]


@pytest.mark.parametrize("module", EXAMPLES)
def test_each_examples_template_is_created_on_the_embedded_cloudformation(module: str, code: bytes) -> None:
    from lake.deploy.app_command import load_app

    app = load_app(module)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session.client("s3").create_bucket(Bucket="artifacts")
        session.client("s3").put_object(Bucket="artifacts", Key="code/lambda.zip", Body=code)
        template = render(app)
        # the first deployment: the lake (which archives the app's tables) does not exist yet
        params = {k: v for k, v in {"ArtifactBucket": "artifacts", "ArtifactPrefix": "code/"}.items()
                  if k in template.get("Parameters", {})}
        expanded = expand_sam(template, params)
        cfn = session.client("cloudformation")
        cfn.create_stack(StackName="example", TemplateBody=json.dumps(expanded), Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        assert cfn.describe_stacks(StackName="example")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        physical = {r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName="example")[
            "StackResourceSummaries"]}
        # every resource but the lake stream's mapping (HasLakeStream is false on a first deployment)
        assert {k for k, v in expanded["Resources"].items()
                if v["Type"] not in APP_MOTO_CANNOT_CREATE and "Condition" not in v} <= physical
        ddb = session.client("dynamodb")
        for table in app.tables:
            assert ddb.describe_table(TableName=table.name)["Table"]["TableStatus"] == "ACTIVE"
        lam = session.client("lambda")
        for function in app.functions:
            conf = lam.get_function(FunctionName=f"example-{function.name}")["Configuration"]
            assert conf["Handler"] == function.handler.replace(":", ".")
        mappings = lam.list_event_source_mappings()["EventSourceMappings"]
        assert not any(":kinesis:" in m["EventSourceArn"] for m in mappings)  # none until the lake's stream is given
        assert len(mappings) == sum(1 for f in app.functions for t in f.triggers
                                    if isinstance(t, StreamEvents | QueueEvents))


def test_lake_deploy_app_dry_run_then_create_then_nothing_to_change(settings: Settings, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``lake deploy --app`` on the embedded AWS: the app's code (the lake's bundle plus its package)
    uploaded, its stack created through a change set, and a second run finding nothing to change."""
    from lake.cli import main

    package = tmp_path / "deployed_demo_app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handlers.py").write_text("def ingest(event, context):\n    return None\n")
    (package / "app.py").write_text("from pathlib import Path\n\nfrom tests.unit.test_deploy_apps import full_app\n\n"
                                    "APP = full_app(Path(__file__).parent)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    endpoint = settings.endpoint_url
    assert endpoint is not None
    argv = ["deploy", "--app", "deployed_demo_app.app", "--endpoint-url", endpoint, "--code-only"]

    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(CREATE demo)" in out and "Add     IngestFunction " in out and "dry run" in out

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "create complete" in out
    local = {"endpoint_url": endpoint, "region_name": REGION, **LOCAL_CREDENTIALS}
    assert boto3.client("cloudformation", **local).describe_stacks(StackName="demo")["Stacks"][0][
        "StackStatus"] == "CREATE_COMPLETE"
    conf = boto3.client("lambda", **local).get_function(FunctionName="demo-ingest")["Configuration"]
    assert conf["Handler"] == "examples.demo.handlers.ingest"
    code = boto3.client("s3", **local).list_objects_v2(Bucket="demo-artifacts-123456789012-us-east-1")
    [key] = [o["Key"] for o in code["Contents"]]
    zipped = boto3.client("s3", **local).get_object(Bucket="demo-artifacts-123456789012-us-east-1", Key=key)
    names = set(zipfile.ZipFile(io.BytesIO(zipped["Body"].read())).namelist())
    assert {"deployed_demo_app/handlers.py", "deployed_demo_app/app.py", "lake/apps.py"} <= names

    assert main(argv) == 0  # the same code and template again: an empty change set, discarded
    assert "nothing to change" in capsys.readouterr().out
