"""template.yaml: generated from the wiring, cfn-lint clean, least privilege, what the issue asks for."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lake.deploy.template import EXAMPLE, Layout, render, to_yaml
from lake.deploy.validate import expand_sam, lint, privilege_problems, role_statements, too_broad
from lake.errors import ConfigError
from lake.settings import TableSpec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return render(EXAMPLE)


@pytest.fixture(scope="module")
def expanded(template: dict[str, Any]) -> dict[str, Any]:
    return expand_sam(template)


def test_the_checked_in_template_is_the_rendered_one(template: dict[str, Any]) -> None:
    assert (REPO / "template.yaml").read_text() == to_yaml(template, EXAMPLE), \
        "template.yaml is stale: lake template --tables orders,customers:customer_id:- --existing-tables customers " \
        "-o template.yaml"


def test_cfn_lint_has_no_errors_or_warnings(template: dict[str, Any], expanded: dict[str, Any]) -> None:
    assert [str(f) for f in lint(template)] == []
    assert [str(f) for f in lint(expanded)] == []


def test_cfn_lint_sees_a_broken_template(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["ChangeStream"]["Properties"]["RetentionPeriodHours"] = "a week"
    broken["Resources"]["DeadLetterQueue"]["Properties"]["Bogus"] = 1
    rules = {f.rule for f in lint(broken)}
    assert {"E3012", "E3002"} <= rules


def test_sam_validate_lint_when_sam_cli_is_installed(tmp_path: Path) -> None:
    sam = shutil.which("sam")
    if sam is None:
        pytest.skip("aws-sam-cli is not installed (it pins boto3 below the project's): `sam validate --lint` "
                    "not run; cfn-lint above lints the same SAM template")
    done = subprocess.run([sam, "validate", "--lint", "--template-file", str(REPO / "template.yaml"),
                           "--region", "us-east-1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_wildcard_action_and_no_star_resource_outside_logs(expanded: dict[str, Any]) -> None:
    assert privilege_problems(expanded) == []
    # and every statement names its actions and resources
    for role, st in role_statements(expanded):
        assert st["Effect"] == "Allow" and st["Action"] and st["Resource"], role


def test_the_policy_check_fails_on_wildcards(expanded: dict[str, Any]) -> None:
    bad = copy.deepcopy(expanded)
    policy = bad["Resources"]["FanoutRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    policy.append({"Effect": "Allow", "Action": ["kinesis:*"], "Resource": ["*"]})
    policy.append({"Effect": "Allow", "Action": ["s3:GetObject"],
                   "Resource": [{"Fn::Sub": "arn:${AWS::Partition}:s3:::${LakeBucket}/*"}]})
    bad["Resources"]["FanoutRole"]["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    problems = privilege_problems(bad)
    assert any("action kinesis:*" in p for p in problems)
    assert any("resource *" in p for p in problems)
    assert any("${LakeBucket}/*" in p for p in problems)
    assert any("<managed policies>" in p for p in problems)
    assert too_broad("arn:aws:kinesis:*:123456789012:stream/x") and not too_broad(
        "arn:${AWS::Partition}:s3:::${LakeBucket}/${LakePrefix}raw/*")


def _statements(template: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    return {st["Sid"]: st for r, st in role_statements(template) if r == role}


def test_one_role_per_function_and_job_scoped_to_its_zones(template: dict[str, Any]) -> None:
    roles = {k for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert roles == {"StreamArchiverRole", "FanoutRole", "ParquetConsumerRole", "CompactJobRole",
                     "CurrentStateJobRole", "BackfillJobRole", "BootstrapJobRole"}
    archiver = _statements(template, "StreamArchiverRole")
    assert archiver["ObjectsRaw"]["Action"] == ["s3:PutObject"]
    assert archiver["ObjectsRaw"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${LakeBucket}/${LakePrefix}raw/*"}]
    assert set(archiver) == {"ObjectsRaw", "ObjectsQuarantine", "ReadSourceStreams", "ListSourceStreams",
                             "SendDeadLetters", "WriteLogs"}
    assert archiver["ReadSourceStreams"]["Resource"] == [{"Fn::GetAtt": ["OrdersTable", "StreamArn"]},
                                                         {"Ref": "CustomersStreamArn"}]
    fanout = _statements(template, "FanoutRole")
    assert fanout["PutChanges"]["Action"] == ["kinesis:PutRecord", "kinesis:PutRecords"]
    assert "ObjectsRaw" not in fanout
    consumer = _statements(template, "ParquetConsumerRole")
    assert consumer["SubscribeChanges"]["Resource"] == [{"Fn::GetAtt": ["ChangeStreamConsumer", "ConsumerARN"]}]
    glue_tables = [r["Fn::Sub"].rsplit("/", 1)[-1] for r in consumer["WriteCatalog"]["Resource"]]
    assert glue_tables[2:] == ["changes", "orders_history", "customers_history"]
    assert consumer["WriteLogs"]["Resource"] == [{"Fn::GetAtt": ["ParquetConsumerLogGroup", "Arn"]}]


def test_every_glue_job_runs_its_athena_statements_in_the_lakes_workgroup(template: dict[str, Any]) -> None:
    jobs = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Glue::Job"}
    assert len(jobs) == 4
    for name, job in jobs.items():
        assert job["Properties"]["DefaultArguments"]["--workgroup"] == {"Ref": "AthenaWorkGroup"}, name


def test_what_the_issue_asks_of_the_data_resources(template: dict[str, Any]) -> None:
    res = template["Resources"]
    bucket = res["LakeBucket"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["raw-zone-to-glacier-ir"]["Prefix"] == {"Fn::Sub": "${LakePrefix}raw/"}
    assert "NoncurrentVersionExpiration" in rules["noncurrent-versions"]
    deny = res["LakeBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    stream = res["ChangeStream"]["Properties"]
    assert stream["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}
    assert res["ParquetConsumerMapping"]["Properties"]["EventSourceArn"] == {"Fn::If": [
        "EnhancedFanOut", {"Fn::GetAtt": ["ChangeStreamConsumer", "ConsumerARN"]},
        {"Fn::GetAtt": ["ChangeStream", "Arn"]}]}
    assert res["ChangeStreamConsumer"]["Condition"] == "EnhancedFanOut"
    wg = res["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert wg["EnforceWorkGroupConfiguration"] is True and wg["BytesScannedCutoffPerQuery"] == {
        "Ref": "AthenaBytesScannedCutoff"}
    assert wg["ResultConfiguration"]["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    for retained in ("OrdersTable", "GlueDatabase", "DeadLetterQueue"):
        assert res[retained]["DeletionPolicy"] == "Retain", retained
    alarms = {v["Properties"]["MetricName"] for v in res.values() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms == {"IteratorAge", "ApproximateNumberOfMessagesVisible", "PutRequests"}
    assert "CustomersTable" not in res and "CustomersStreamArn" in template["Parameters"]


def test_layouts_are_checked() -> None:
    with pytest.raises(ConfigError, match="not among the source tables"):
        Layout((TableSpec.parse("orders"),), frozenset({"users"}))
    only_new = render(Layout((TableSpec.parse("a"), TableSpec.parse("b:id/N:-"))))
    assert only_new["Resources"]["BTable"]["Properties"]["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert lint(only_new) == []


def test_lake_template_renders_and_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lake.cli import main

    out = tmp_path / "t.yaml"
    argv = ["template", "--tables", "orders,customers:customer_id:-", "--existing-tables", "customers"]
    assert main([*argv, "-o", str(out)]) == 0
    assert out.read_text() == (REPO / "template.yaml").read_text()
    assert "cfn-lint clean, least privilege holds" in capsys.readouterr().err
    assert main([*argv, "--expanded", "--no-validate", "-o", str(out)]) == 0
    assert "AWS::Serverless::Function" not in out.read_text() and "AWS::Lambda::Function" in out.read_text()
    assert main(["template", "--tables", "orders", "--existing-tables", "users", "-o", str(out)]) == 2
    assert "users: not among the source tables" in capsys.readouterr().err
