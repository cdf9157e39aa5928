"""QuickSight as code: the requests that create or update the lake's dashboard. Pure (no boto3).

One Athena data source in the lake's workgroup; one DIRECT_QUERY dataset per visual whose custom
SQL is the visual's file of ``athena_queries/dashboard/`` (its ``?`` bound as a literal); an
analysis and a dashboard with the same definition (two sheets: activity and pipeline health).
Every request is a :class:`Request` (operation name + parameters, as botocore names them), so the
dry run prints them, the tests validate them against the service model, and the deploy sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lake.dashboard.queries import bound_text
from lake.dashboard.visuals import VISUALS, Visual
from lake.settings import Settings

AssetKind = Literal["data_source", "data_set", "analysis", "dashboard"]

# What the principal may do with each asset: QuickSight's owner action sets.
ACTIONS: dict[AssetKind, tuple[str, ...]] = {
    "data_source": ("quicksight:DescribeDataSource", "quicksight:DescribeDataSourcePermissions",
                    "quicksight:PassDataSource", "quicksight:UpdateDataSource", "quicksight:DeleteDataSource",
                    "quicksight:UpdateDataSourcePermissions"),
    "data_set": ("quicksight:DescribeDataSet", "quicksight:DescribeDataSetPermissions", "quicksight:PassDataSet",
                 "quicksight:DescribeIngestion", "quicksight:ListIngestions", "quicksight:UpdateDataSet",
                 "quicksight:DeleteDataSet", "quicksight:CreateIngestion", "quicksight:CancelIngestion",
                 "quicksight:UpdateDataSetPermissions"),
    "analysis": ("quicksight:RestoreAnalysis", "quicksight:UpdateAnalysisPermissions", "quicksight:DeleteAnalysis",
                 "quicksight:DescribeAnalysisPermissions", "quicksight:QueryAnalysis", "quicksight:DescribeAnalysis",
                 "quicksight:UpdateAnalysis"),
    "dashboard": ("quicksight:DescribeDashboard", "quicksight:ListDashboardVersions",
                  "quicksight:UpdateDashboardPermissions", "quicksight:QueryDashboard", "quicksight:UpdateDashboard",
                  "quicksight:DeleteDashboard", "quicksight:DescribeDashboardPermissions",
                  "quicksight:UpdateDashboardPublishedVersion"),
}

# The operations per asset kind: describe, create, update, update permissions.
OPERATIONS: dict[AssetKind, tuple[str, str, str, str]] = {
    "data_source": ("DescribeDataSource", "CreateDataSource", "UpdateDataSource", "UpdateDataSourcePermissions"),
    "data_set": ("DescribeDataSet", "CreateDataSet", "UpdateDataSet", "UpdateDataSetPermissions"),
    "analysis": ("DescribeAnalysis", "CreateAnalysis", "UpdateAnalysis", "UpdateAnalysisPermissions"),
    "dashboard": ("DescribeDashboard", "CreateDashboard", "UpdateDashboard", "UpdateDashboardPermissions"),
}
_ID_PARAM: dict[AssetKind, str] = {"data_source": "DataSourceId", "data_set": "DataSetId",
                                   "analysis": "AnalysisId", "dashboard": "DashboardId"}
# parameters a create takes that its update does not (they have their own calls)
_CREATE_ONLY = {"Permissions", "Tags", "Type", "FolderArns"}
PUBLISH = "UpdateDashboardPublishedVersion"


@dataclass(frozen=True)
class Request:
    """One QuickSight call: botocore's operation name and its parameters."""

    operation: str
    params: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"operation": self.operation, "params": dict(self.params)}


@dataclass(frozen=True)
class Asset:
    """One QuickSight asset: how to find it, create it, update it and grant it."""

    kind: AssetKind
    id: str
    create: Request
    tags: tuple[dict[str, str], ...] = field(default=())

    @property
    def describe(self) -> Request:
        return Request(OPERATIONS[self.kind][0], self._ids())

    @property
    def update(self) -> Request:
        params = {k: v for k, v in self.create.params.items() if k not in _CREATE_ONLY}
        return Request(OPERATIONS[self.kind][2], params)

    @property
    def grant(self) -> Request:
        perms = self.create.params.get("Permissions", [])
        return Request(OPERATIONS[self.kind][3], {**self._ids(), "GrantPermissions": list(perms)})

    def _ids(self) -> dict[str, Any]:
        return {"AwsAccountId": self.create.params["AwsAccountId"], _ID_PARAM[self.kind]: self.id}


def asset_prefix(settings: Settings) -> str:
    """IDs of the lake's assets start with this: one dashboard per Glue database."""
    return "lake-" + settings.glue_database.replace("_", "-")


def arn(settings: Settings, account_id: str, resource: str, asset_id: str) -> str:
    return f"arn:aws:quicksight:{settings.region}:{account_id}:{resource}/{asset_id}"


def plan(settings: Settings, account_id: str, principal: str,
         visuals: tuple[Visual, ...] = VISUALS) -> list[Asset]:
    """The assets in dependency order: data source, datasets, analysis, dashboard."""
    prefix = asset_prefix(settings)
    tags = [{"Key": "lake:database", "Value": settings.glue_database}]

    def permissions(kind: AssetKind) -> list[dict[str, Any]]:
        return [{"Principal": principal, "Actions": list(ACTIONS[kind])}]

    source_id = f"{prefix}-athena"
    source_arn = arn(settings, account_id, "datasource", source_id)
    assets = [Asset("data_source", source_id, Request("CreateDataSource", {
        "AwsAccountId": account_id, "DataSourceId": source_id, "Name": f"lake {settings.glue_database} (Athena)",
        "Type": "ATHENA", "DataSourceParameters": {"AthenaParameters": {"WorkGroup": settings.athena_workgroup}},
        "Permissions": permissions("data_source"), "Tags": tags,
    }))]
    declarations = []
    for v in visuals:
        data_set_id = f"{prefix}-{v.id.replace('_', '-')}"
        assets.append(Asset("data_set", data_set_id, Request("CreateDataSet", {
            "AwsAccountId": account_id, "DataSetId": data_set_id, "Name": f"lake {v.title}",
            "PhysicalTableMap": {v.id: {"CustomSql": {
                "DataSourceArn": source_arn, "Name": v.id, "SqlQuery": bound_text(v, settings),
                "Columns": [{"Name": c.name, "Type": c.type} for c in v.columns],
            }}},
            "ImportMode": "DIRECT_QUERY", "Permissions": permissions("data_set"), "Tags": tags,
        })))
        declarations.append({"Identifier": v.id, "DataSetArn": arn(settings, account_id, "dataset", data_set_id)})
    definition = {
        "DataSetIdentifierDeclarations": declarations,
        "CalculatedFields": [{"DataSetIdentifier": "pipeline_lag", "Name": "lag_seconds",
                              "Expression": "dateDiff({newest_change_time}, now(), 'SS')"}],
        "Sheets": [
            {"SheetId": "activity", "Name": "Activity",
             "Visuals": [visual_definition(v) for v in visuals if v.sheet == "activity"]},
            {"SheetId": "health", "Name": "Pipeline health",
             "Visuals": [*lag_visuals(), *(visual_definition(v) for v in visuals if v.sheet == "health"
                                            and v.kind != "kpi")]},
        ],
    }
    analysis_id, dashboard_id = f"{prefix}-analysis", f"{prefix}-dashboard"
    name = f"lake {settings.glue_database}"
    assets.append(Asset("analysis", analysis_id, Request("CreateAnalysis", {
        "AwsAccountId": account_id, "AnalysisId": analysis_id, "Name": name, "Definition": definition,
        "Permissions": permissions("analysis"), "Tags": tags,
    })))
    assets.append(Asset("dashboard", dashboard_id, Request("CreateDashboard", {
        "AwsAccountId": account_id, "DashboardId": dashboard_id, "Name": name, "Definition": definition,
        "Permissions": permissions("dashboard"), "Tags": tags,
        "DashboardPublishOptions": {"AdHocFilteringOption": {"AvailabilityStatus": "ENABLED"},
                                    "ExportToCSVOption": {"AvailabilityStatus": "ENABLED"}},
    })))
    return assets


def publish(account_id: str, dashboard_id: str, version_arn: str) -> Request:
    """Make the version an update created the one readers see (an update alone does not)."""
    return Request(PUBLISH, {"AwsAccountId": account_id, "DashboardId": dashboard_id,
                             "VersionNumber": int(version_arn.rsplit("/", 1)[-1])})


# -- the definition ---------------------------------------------------------------------------

def _column(v: Visual, name: str) -> dict[str, str]:
    v.column(name)  # a KeyError names a visual that draws a column its query does not return
    return {"DataSetIdentifier": v.id, "ColumnName": name}


def _dimension(v: Visual, name: str) -> dict[str, Any]:
    field_id = f"{v.id}.{name}"
    if v.column(name).type == "DATETIME":
        return {"DateDimensionField": {"FieldId": field_id, "Column": _column(v, name), "DateGranularity": "HOUR"}}
    return {"CategoricalDimensionField": {"FieldId": field_id, "Column": _column(v, name)}}


def _measure(v: Visual, name: str, aggregation: str = "SUM") -> dict[str, Any]:
    return {"NumericalMeasureField": {"FieldId": f"{v.id}.{name}", "Column": _column(v, name),
                                      "AggregationFunction": {"SimpleNumericalAggregation": aggregation}}}


def _title(text: str) -> dict[str, Any]:
    return {"Visibility": "VISIBLE", "FormatText": {"PlainText": text}}


def visual_definition(v: Visual) -> dict[str, Any]:
    """The QuickSight visual of ``v``."""
    if v.kind == "table":
        return {"TableVisual": {"VisualId": v.id, "Title": _title(v.title), "ChartConfiguration": {
            "FieldWells": {"TableUnaggregatedFieldWells": {"Values": [
                {"FieldId": f"{v.id}.{c.name}", "Column": _column(v, c.name)} for c in v.columns]}},
            "SortConfiguration": {"RowSort": [{"FieldSort": {"FieldId": f"{v.id}.event_time",
                                                             "Direction": "DESC"}}]},
        }}}
    assert v.x is not None and v.y is not None
    wells: dict[str, Any] = {"Category": [_dimension(v, v.x)], "Values": [_measure(v, v.y)]}
    if v.color:
        wells["Colors"] = [_dimension(v, v.color)]
    if v.kind == "line":
        if v.color != "table_name" and "table_name" in v.column_names:
            wells["SmallMultiples"] = [_dimension(v, "table_name")]
        return {"LineChartVisual": {"VisualId": v.id, "Title": _title(v.title), "ChartConfiguration": {
            "FieldWells": {"LineChartAggregatedFieldWells": wells}, "Type": "LINE"}}}
    config: dict[str, Any] = {
        "FieldWells": {"BarChartAggregatedFieldWells": wells}, "Orientation": "VERTICAL",
        "BarsArrangement": "STACKED" if v.kind == "stacked_bar" else "CLUSTERED",
    }
    if v.top is not None:
        config["SortConfiguration"] = {
            "CategorySort": [{"FieldSort": {"FieldId": f"{v.id}.{v.y}", "Direction": "DESC"}}],
            "CategoryItemsLimit": {"ItemsLimit": v.top, "OtherCategories": "EXCLUDE"},
        }
    return {"BarChartVisual": {"VisualId": v.id, "Title": _title(v.title), "ChartConfiguration": config}}


def lag_visuals() -> list[dict[str, Any]]:
    """Pipeline health from the ``pipeline_lag`` dataset: lag (newest change → now) and the changes."""
    def kpi(visual_id: str, title: str, column: str, aggregation: str) -> dict[str, Any]:
        return {"KPIVisual": {"VisualId": visual_id, "Title": _title(title), "ChartConfiguration": {
            "FieldWells": {"Values": [{"NumericalMeasureField": {
                "FieldId": f"{visual_id}.{column}",
                "Column": {"DataSetIdentifier": "pipeline_lag", "ColumnName": column},
                "AggregationFunction": {"SimpleNumericalAggregation": aggregation}}}]}}}}

    return [kpi("pipeline_lag_seconds", "Lag: newest change → now (s)", "lag_seconds", "MAX"),
            kpi("pipeline_changes", "Changes in the lake", "changes", "SUM")]


def all_requests(assets: list[Asset]) -> list[Request]:
    """What a first deploy sends (the dry run prints these): every describe and create."""
    out: list[Request] = []
    for a in assets:
        out += [a.describe, a.create]
    return out
