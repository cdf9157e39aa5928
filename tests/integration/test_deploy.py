"""The template created on the embedded AWS's CloudFormation (moto) after expanding the SAM
transform offline, and `lake deploy` through a change set.

moto skips resource types it has no model for (it logs a warning and still reports success),
so every expected resource is looked up in its service, and what moto cannot create is listed:
MOTO_CANNOT_CREATE. The enhanced fan-out consumer is turned off there (EnhancedFanOut=false):
moto has no AWS::Kinesis::StreamConsumer, and a GetAtt of a resource it skipped fails the stack.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.parsing import get_model_map

from lake.cli import main
from lake.deploy import bundle
from lake.deploy.template import EXAMPLE, render
from lake.deploy.validate import expand_sam
from lake.settings import LOCAL_CREDENTIALS, Settings
from lake.wiring import WIRING

REGION = "us-east-1"
LAYER = "arn:aws:lambda:us-east-1:336392948345:layer:AWSSDKPandas-Python311-Arm64:1"
MOTO_CANNOT_CREATE = {
    "AWS::Athena::WorkGroup", "AWS::CloudWatch::Alarm", "AWS::Glue::Database", "AWS::Glue::Job",
    "AWS::Glue::Trigger", "AWS::Kinesis::StreamConsumer", "AWS::S3::BucketPolicy", "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
}
# properties of created resources that moto's models accept but do not apply
MOTO_DROPS = {"AWS::S3::Bucket": ("VersioningConfiguration", "LifecycleConfiguration", "PublicAccessBlockConfiguration",
                                  "OwnershipControls", "MetricsConfigurations")}


def _customers(ddb: Any) -> str:
    return str(ddb.create_table(
        TableName="customers", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "customer_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "customer_id", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"])


def test_the_expanded_template_is_created_on_the_embedded_cloudformation() -> None:
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        stream_arn = _customers(session.client("dynamodb"))
        s3 = session.client("s3")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key="code/lambda.zip", Body=bundle.lambda_bundle(requirements=()).data)
        params = {"CustomersStreamArn": stream_arn, "ArtifactBucket": "artifacts", "ArtifactPrefix": "code/",
                  "PandasLayerArn": LAYER, "EnhancedFanOut": "false"}
        template = expand_sam(render(EXAMPLE), params)
        types = {k: v["Type"] for k, v in template["Resources"].items()}
        assert not any(t.startswith("AWS::Serverless::") for t in types.values())
        unsupported = {t for t in types.values() if t not in get_model_map()}
        assert unsupported == MOTO_CANNOT_CREATE  # what the embedded CloudFormation cannot create

        cfn = session.client("cloudformation")
        cfn.create_stack(StackName="lake", TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        assert cfn.describe_stacks(StackName="lake")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                    for r in cfn.list_stack_resources(StackName="lake")["StackResourceSummaries"]}
        expected = {k for k, t in types.items() if t not in MOTO_CANNOT_CREATE}
        assert expected <= set(physical)

        # each one exists in its service, as declared
        assert session.client("dynamodb").describe_table(TableName="orders")["Table"]["StreamSpecification"][
            "StreamViewType"] == "NEW_AND_OLD_IMAGES"
        s3.head_bucket(Bucket=physical["LakeBucket"])
        # moto's bucket model applies BucketEncryption and Tags only: versioning, lifecycle, public access
        # block, ownership and metrics configurations are accepted and dropped (MOTO_DROPS)
        rules = s3.get_bucket_encryption(Bucket=physical["LakeBucket"])["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert "Status" not in s3.get_bucket_versioning(Bucket=physical["LakeBucket"]), "moto applies versioning now"
        kinesis = session.client("kinesis").describe_stream_summary(StreamName=physical["ChangeStream"])
        assert kinesis["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
        session.client("sqs").get_queue_url(QueueName=physical["DeadLetterQueue"].rsplit("/", 1)[-1])
        iam = session.client("iam")
        for role in ("StreamArchiverRole", "FanoutRole", "ParquetConsumerRole", "CompactJobRole",
                     "CurrentStateJobRole", "BackfillJobRole", "BootstrapJobRole"):
            policy = template["Resources"][role]["Properties"]["Policies"][0]["PolicyName"]
            doc = iam.get_role_policy(RoleName=physical[role], PolicyName=policy)["PolicyDocument"]
            # moto keeps a role's inline policies from CloudFormation as the Python repr of the dict
            doc = ast.literal_eval(doc) if isinstance(doc, str) else doc
            sids = [st["Sid"] for st in doc["Statement"] if st is not None]  # moto keeps AWS::NoValue as None
            declared = [st["Sid"] for st in template["Resources"][role]["Properties"]["Policies"][0][
                "PolicyDocument"]["Statement"] if "Sid" in st]
            assert sids == declared, role  # the EFO statement is dropped: EnhancedFanOut=false
        lam = session.client("lambda")
        for fn in ("StreamArchiver", "Fanout", "ParquetConsumer"):
            conf = lam.get_function(FunctionName=physical[fn])["Configuration"]
            assert conf["Runtime"] == "python3.11" and conf["Handler"] == template["Resources"][fn][
                "Properties"]["Handler"]
        mappings = lam.list_event_source_mappings()["EventSourceMappings"]
        # two tables x (archiver, fan-out) + the consumer on Kinesis, each with the SQS on-failure destination
        assert len(mappings) == 5
        dlq_arn = session.client("sqs").get_queue_attributes(
            QueueUrl=physical["DeadLetterQueue"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert {m["DestinationConfig"]["OnFailure"]["Destination"] for m in mappings} == {dlq_arn}
        assert {m["EventSourceArn"] for m in mappings} >= {stream_arn}
        stack = cfn.describe_stacks(StackName="lake")["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert outputs["Bucket"] == physical["LakeBucket"]
        assert outputs["StreamArchiverFunction"] == "lake-stream-archiver"
        logs = session.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/lake-")["logGroups"]
        assert len(logs) == 3


def test_lake_deploy_dry_run_then_create_then_nothing_to_change(settings: Settings,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = settings.endpoint_url
    assert endpoint is not None
    local = {"endpoint_url": endpoint, "region_name": REGION, **LOCAL_CREDENTIALS}
    stream_arn = _customers(boto3.client("dynamodb", **local))
    argv = ["deploy", "--endpoint-url", endpoint, "--tables", "orders,customers:customer_id:-",
            "--existing-tables", "customers", "--pandas-layer-arn", LAYER, "--code-only",
            "--parameter", "EnhancedFanOut=false", "--stack-name", "lake"]
    cfn = boto3.client("cloudformation", **local)

    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(CREATE lake)" in out and "dry run" in out
    assert "Add     StreamArchiverCustomersMapping" in out and "Add     ParquetConsumer " in out
    # nothing is left of the dry run: no stack, no change set
    assert [s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == "lake"] in (
        [], ["DELETE_COMPLETE"])

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "create complete" in out
    stack = cfn.describe_stacks(StackName="lake")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    # moto 5.2.5 parses no outputs when it executes a change set (create_stack does, see above):
    # what lake deploy prints is what the stack reports
    assert outputs == {} and "(the stack reports no outputs)" in out
    lam = boto3.client("lambda", **local)
    assert stream_arn in {m["EventSourceArn"] for m in lam.list_event_source_mappings()["EventSourceMappings"]}
    code = boto3.client("s3", **local).list_objects_v2(Bucket="lake-artifacts-123456789012-us-east-1")
    keys = {o["Key"].split("/", 2)[-1] for o in code.get("Contents", [])}
    assert {"lambda.zip", "lake.zip"} <= keys
    assert {f"glue_jobs/{j.name}.py" for j in WIRING.glue_jobs} <= keys

    assert main(argv) == 0  # the same code and template again: an empty change set, discarded
    assert "nothing to change" in capsys.readouterr().out
    assert cfn.describe_stacks(StackName="lake")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
