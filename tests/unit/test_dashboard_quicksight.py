"""The QuickSight requests of `lake dashboard deploy`, checked against botocore's service model (and its
enums, which botocore does not check), and the deploy's describe → create or update, on a stubbed client."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lake.aws.quicksight import QuickSight, method_name, problems, validate
from lake.cli import main
from lake.dashboard.deploy import DeployReport, deploy, dry_run, resolve_principal
from lake.dashboard.queries import bound_text, query_path
from lake.dashboard.quicksight import OPERATIONS, Asset, Request, all_requests, plan, publish
from lake.dashboard.visuals import VISUALS
from lake.errors import ConfigError, LakeError
from lake.settings import Settings

ACCOUNT = "111122223333"
PRINCIPAL = f"arn:aws:quicksight:us-east-1:{ACCOUNT}:user/default/alice"


@pytest.fixture
def assets() -> list[Asset]:
    return plan(Settings(), ACCOUNT, PRINCIPAL)


def every_request(assets: list[Asset]) -> list[Request]:
    out = []
    for a in assets:
        out += [a.describe, a.create, a.update, a.grant]
    return [*out, publish(ACCOUNT, assets[-1].id, f"arn:aws:quicksight:us-east-1:{ACCOUNT}:dashboard/x/version/2")]


def test_every_request_is_valid_for_the_model_and_its_enums(assets: list[Asset]) -> None:
    requests = every_request(assets)
    assert {r.operation for r in requests} == {op for ops in OPERATIONS.values() for op in ops} | {
        "UpdateDashboardPublishedVersion"}
    for r in requests:
        assert problems(r.operation, r.params) == [], r.operation


def test_the_model_check_sees_bad_requests(assets: list[Asset]) -> None:
    create = dict(assets[-1].create.params)
    definition = json.loads(json.dumps(create["Definition"]))
    bar = next(v["BarChartVisual"] for v in definition["Sheets"][0]["Visuals"] if "BarChartVisual" in v)
    bar["ChartConfiguration"]["Orientation"] = "SIDEWAYS"  # an enum value botocore lets through
    found = problems("CreateDashboard", {**create, "Definition": definition})
    assert len(found) == 1 and "Orientation" in found[0] and "SIDEWAYS" in found[0] and "VERTICAL" in found[0]

    data_set = dict(assets[1].create.params)
    assert any("ImportMode" in p for p in problems("CreateDataSet", {**data_set, "ImportMode": "LIVE"}))
    missing = {k: v for k, v in data_set.items() if k != "Name"}
    assert any("Name" in p for p in problems("CreateDataSet", missing))  # botocore's own report
    with pytest.raises(ConfigError, match="Unknown parameter"):
        validate("CreateDataSet", {**data_set, "Bogus": 1})
    with pytest.raises(ConfigError, match="no operation"):
        validate("CreateDashbord", {})


def test_each_dataset_runs_the_visuals_sql_file(assets: list[Asset]) -> None:
    settings = Settings(dashboard_attribute="state")
    by_name = {a.create.params["PhysicalTableMap"] and next(iter(a.create.params["PhysicalTableMap"])): a
               for a in plan(settings, ACCOUNT, PRINCIPAL) if a.kind == "data_set"}
    assert set(by_name) == {v.id for v in VISUALS}
    for v in VISUALS:
        sql = by_name[v.id].create.params["PhysicalTableMap"][v.id]["CustomSql"]
        assert sql["SqlQuery"] == bound_text(v, settings)
        assert [c["Name"] for c in sql["Columns"]] == list(v.column_names)
        if not v.params:  # without a parameter the text is the file's, byte for byte
            assert sql["SqlQuery"] == query_path(v).read_text()
    counts = by_name["current_state_counts"].create.params["PhysicalTableMap"]["current_state_counts"]
    assert "concat('$.', 'state')" in counts["CustomSql"]["SqlQuery"] and "?" not in counts["CustomSql"]["SqlQuery"]


def test_the_definition_only_names_declared_datasets_columns_and_unique_fields(assets: list[Asset]) -> None:
    definition = assets[-1].create.params["Definition"]
    assert definition == assets[-2].create.params["Definition"]  # the analysis and the dashboard agree
    columns = {v.id: set(v.column_names) for v in VISUALS}
    for calc in definition["CalculatedFields"]:
        columns[calc["DataSetIdentifier"]].add(calc["Name"])
    declared = {d["Identifier"] for d in definition["DataSetIdentifierDeclarations"]}
    field_ids: list[str] = []
    visual_ids: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "DataSetIdentifier" in node and "ColumnName" in node:
                assert node["DataSetIdentifier"] in declared
                assert node["ColumnName"] in columns[node["DataSetIdentifier"]], node
            if "FieldId" in node and "Column" in node:
                field_ids.append(node["FieldId"])
            if "VisualId" in node:
                visual_ids.append(node["VisualId"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(definition["Sheets"])
    assert len(field_ids) == len(set(field_ids))
    assert len(visual_ids) == len(set(visual_ids))
    # every visual of the issue is there: the five activity visuals, and health (lag, changes, files)
    assert set(visual_ids) == {v.id for v in VISUALS if v.kind != "kpi"} | {"pipeline_lag_seconds",
                                                                           "pipeline_changes"}


def test_permissions_go_to_the_principal(assets: list[Asset]) -> None:
    for a in assets:
        (perm,) = a.create.params["Permissions"]
        assert perm["Principal"] == PRINCIPAL and perm["Actions"]
        assert a.grant.params["GrantPermissions"] == [perm]


def test_the_principal_comes_from_the_flag_or_the_setting() -> None:
    assert resolve_principal(Settings(quicksight_principal=PRINCIPAL), None) == PRINCIPAL
    assert resolve_principal(Settings(quicksight_principal="arn:x"), PRINCIPAL) == PRINCIPAL
    with pytest.raises(ConfigError, match="--principal"):
        resolve_principal(Settings(), None)
    with pytest.raises(ConfigError, match="not an ARN"):
        resolve_principal(Settings(), "alice")


def test_dry_run_prints_every_request_and_calls_nothing(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: a call would fail
    rc = main(["dashboard", "deploy", "--dry-run", "--principal", PRINCIPAL, "--attribute", "state"])
    out = capsys.readouterr().out
    assert rc == 0
    decoder, docs, pos = json.JSONDecoder(), [], 0
    while pos < len(out.strip()):
        doc, end = decoder.raw_decode(out, pos)
        docs.append(doc)
        pos = end + 1
    expected = dry_run(Settings(dashboard_attribute="state"), PRINCIPAL)
    assert [d["operation"] for d in docs] == [r.operation for r in expected]
    assert docs == [r.to_json() for r in expected]
    assert all(d["params"]["AwsAccountId"] == ACCOUNT for d in docs)


# -- the deploy's logic, on a real client with botocore's Stubber (which checks params against the model) --

def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("quicksight", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_first_deploy_creates_everything(assets: list[Asset]) -> None:
    client, stub = stubbed()
    for a in assets:
        stub.add_client_error(method_name(a.describe.operation), "ResourceNotFoundException", http_status_code=404,
                              expected_params=dict(a.describe.params))
        answer = {"Arn": f"arn:aws:quicksight:us-east-1:{ACCOUNT}:x/{a.id}"}
        stub.add_response(method_name(a.create.operation), answer, expected_params=dict(a.create.params))
    with stub:
        report = deploy(Settings(), PRINCIPAL, account=ACCOUNT, quicksight=QuickSight(client))
    stub.assert_no_pending_responses()
    assert report.created == [a.id for a in assets] and report.updated == []
    assert report.dashboard_arn == f"arn:aws:quicksight:us-east-1:{ACCOUNT}:x/{assets[-1].id}"


def test_a_second_deploy_updates_grants_and_publishes(assets: list[Asset]) -> None:
    client, stub = stubbed()
    for a in assets:
        stub.add_response(method_name(a.describe.operation), {}, expected_params=dict(a.describe.params))
        version = f"arn:aws:quicksight:us-east-1:{ACCOUNT}:dashboard/{a.id}/version/7"
        stub.add_response(method_name(a.update.operation), {"VersionArn": version} if a.kind == "dashboard" else {},
                          expected_params=dict(a.update.params))
        stub.add_response(method_name(a.grant.operation), {}, expected_params=dict(a.grant.params))
        if a.kind == "dashboard":
            stub.add_response("update_dashboard_published_version", {},
                              expected_params={"AwsAccountId": ACCOUNT, "DashboardId": a.id, "VersionNumber": 7})
    report = DeployReport()
    with stub:
        report = deploy(Settings(), PRINCIPAL, account=ACCOUNT, quicksight=QuickSight(client))
    stub.assert_no_pending_responses()
    assert report.created == [] and report.updated == [a.id for a in assets]


def test_a_refused_call_is_translated() -> None:
    client, stub = stubbed()
    request = all_requests(plan(Settings(), ACCOUNT, PRINCIPAL))[0]
    stub.add_client_error(method_name(request.operation), "AccessDeniedException", http_status_code=403)
    with stub, pytest.raises(LakeError, match="AccessDenied"):  # translated: not a ClientError
        QuickSight(client).exists(request.operation, request.params)
