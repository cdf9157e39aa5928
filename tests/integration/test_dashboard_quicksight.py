"""The QuickSight calls the embedded AWS implements, sent with the requests `lake dashboard deploy` builds:
the Athena data source (describe, create, update), every dataset (create_data_set) and the dashboard
(create, describe). Analyses, dataset and dashboard updates, permissions and publishing are not in
moto: those requests are checked against botocore's model only (tests/unit/test_dashboard_quicksight.py)."""

from __future__ import annotations

import pytest

from lake.aws.clients import Clients
from lake.aws.quicksight import QuickSight, account_id
from lake.dashboard.quicksight import Asset, plan
from lake.errors import LakeError
from lake.settings import Settings


@pytest.fixture
def assets(settings: Settings, clients: Clients) -> list[Asset]:
    account = account_id(clients.sts)
    return plan(settings, account, f"arn:aws:quicksight:{settings.region}:{account}:user/default/alice")


def test_data_source_is_created_then_updated(settings: Settings, clients: Clients, assets: list[Asset]) -> None:
    qs = QuickSight(clients.quicksight)
    source = assets[0]
    assert source.kind == "data_source"
    assert not qs.exists(source.describe.operation, source.describe.params)
    created = qs.call(source.create.operation, source.create.params)
    assert created["CreationStatus"] == "CREATION_SUCCESSFUL"
    assert qs.exists(source.describe.operation, source.describe.params)
    described = clients.quicksight.describe_data_source(**source.describe.params)["DataSource"]
    assert described["Type"] == "ATHENA"
    assert described["DataSourceParameters"] == {"AthenaParameters": {"WorkGroup": settings.athena_workgroup}}

    # a second deploy with another workgroup updates the same data source
    moved = plan(settings.replace(athena_workgroup="lake-wg"), source.create.params["AwsAccountId"],
                 source.create.params["Permissions"][0]["Principal"])[0]
    qs.call(moved.update.operation, moved.update.params)
    again = clients.quicksight.describe_data_source(**source.describe.params)["DataSource"]
    assert again["DataSourceParameters"] == {"AthenaParameters": {"WorkGroup": "lake-wg"}}
    assert again["Arn"] == described["Arn"]


def test_datasets_and_dashboard_are_created(clients: Clients, assets: list[Asset]) -> None:
    qs = QuickSight(clients.quicksight)
    source = assets[0]
    qs.call(source.create.operation, source.create.params)
    data_sets = [a for a in assets if a.kind == "data_set"]
    for a in data_sets:
        answer = qs.call(a.create.operation, a.create.params)
        assert answer["DataSetId"] == a.id
        assert answer["Arn"].endswith(f":data-set/{a.id}") or answer["Arn"].endswith(f":dataset/{a.id}")
    dashboard = assets[-1]
    assert dashboard.kind == "dashboard"
    assert not qs.exists(dashboard.describe.operation, dashboard.describe.params)
    created = qs.call(dashboard.create.operation, dashboard.create.params)
    assert created["DashboardId"] == dashboard.id and created["VersionArn"].endswith("/version/1")
    described = clients.quicksight.describe_dashboard(**dashboard.describe.params)["Dashboard"]
    assert described["Name"] == dashboard.create.params["Name"]
    assert described["Version"]["Status"] == "CREATION_SUCCESSFUL"


def test_what_the_embedded_aws_lacks_is_refused_not_faked(clients: Clients, assets: list[Asset]) -> None:
    # DescribeDataSet is not implemented by moto: a deploy against it stops with a translated error
    # instead of creating datasets blindly (the full describe → create or update runs on the Stubber).
    data_set = next(a for a in assets if a.kind == "data_set")
    with pytest.raises(LakeError):
        QuickSight(clients.quicksight).exists(data_set.describe.operation, data_set.describe.params)
