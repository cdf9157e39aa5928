"""Least-privilege IAM statements from a function's or job's declared :class:`~lake.wiring.Access`.

Every statement names its actions one by one (no ``*`` action) and its resources exactly:
the source streams and tables, the lake's Kinesis stream and consumer, one zone prefix of the
bucket, the Glue catalog, database and the lake's own tables, the workgroup, the queue, the
function's own log group. The only wildcards are trailing ones inside a named resource
(``<bucket>/<prefix>raw/*``, ``table/<db>/orders_current_at_*``, a log group's streams).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lake.curate.names import current_table, history_table
from lake.deploy.cfn import NO_VALUE, Node, att, if_, sub
from lake.wiring import CURRENT, HISTORY, Access, ObjectOp

Statement = dict[str, Any]

# Parameters and resources of the template the statements refer to (lake/deploy/template.py).
BUCKET = "LakeBucket"
PREFIX = "LakePrefix"
DATABASE = "GlueDatabaseName"
KINESIS = "ChangeStream"
CONSUMER = "ChangeStreamConsumer"
DLQ = "DeadLetterQueue"
WORKGROUP = "AthenaWorkGroup"
ARTIFACT_BUCKET = "ArtifactBucket"
ARTIFACT_PREFIX = "ArtifactPrefix"
EFO_CONDITION = "EnhancedFanOut"  # the consumer reads through its enhanced fan-out consumer

_OBJECT_ACTIONS: dict[ObjectOp, str] = {"get": "s3:GetObject", "put": "s3:PutObject", "delete": "s3:DeleteObject"}


@dataclass(frozen=True)
class SourceRef:
    """A source table as the template knows it: its name and expressions of its ARNs."""

    table: str
    stream_arn: Node
    table_arn: Node


def _glue_arn(resource: str) -> dict[str, Any]:
    return sub(f"arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:{resource}")


def catalog_tables(patterns: Sequence[str], sources: Sequence[SourceRef]) -> list[str]:
    """The catalog table names (or name patterns) ``patterns`` stand for, for these sources."""
    out: list[str] = []
    for pattern in patterns:
        if HISTORY in pattern or CURRENT in pattern:
            for s in sources:
                name = pattern.replace(HISTORY, history_table(s.table)).replace(CURRENT, current_table(s.table))
                out.append(name)
        else:
            out.append(pattern)
    return list(dict.fromkeys(out))


def _objects(access: Access) -> list[Statement]:
    statements: list[Statement] = []
    listed: list[str] = []
    for grant in access.objects:
        actions = sorted(_OBJECT_ACTIONS[op] for op in grant.ops if op != "list")
        if "list" in grant.ops:
            listed.append(grant.zone)
        if actions:
            statements.append({
                "Sid": "Objects" + grant.zone.title().replace("-", ""), "Effect": "Allow", "Action": actions,
                "Resource": [sub(f"arn:${{AWS::Partition}}:s3:::${{{BUCKET}}}/${{{PREFIX}}}{grant.zone}/*")],
            })
    if listed:
        statements.append({
            "Sid": "ListZones", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [att(BUCKET, "Arn")],
            "Condition": {"StringLike": {"s3:prefix": [sub(f"${{{PREFIX}}}{z}/*") for z in listed]}},
        })
    return statements


def statements(access: Access, sources: Sequence[SourceRef], log_resources: Sequence[Node],
               log_actions: Sequence[str] = ("logs:CreateLogStream", "logs:PutLogEvents"),
               artifacts: Sequence[str] = ()) -> list[Statement]:
    """The IAM statements granting exactly ``access``, plus writing to ``log_resources`` and reading
    the code's ``artifacts`` (keys under the artifact prefix) when the access asks for it."""
    artifacts = artifacts if access.artifacts else ()
    out = _objects(access)
    if "read_streams" in access.source_tables:
        out.append({"Sid": "ReadSourceStreams", "Effect": "Allow",
                    "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                    "Resource": [s.stream_arn for s in sources]})
        out.append({"Sid": "ListSourceStreams", "Effect": "Allow", "Action": ["dynamodb:ListStreams"],
                    "Resource": [sub("${Table}/stream/*", Table=s.table_arn) for s in sources]})
    if "export" in access.source_tables:
        out.append({"Sid": "ExportSourceTables", "Effect": "Allow",
                    "Action": ["dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTable",
                               "dynamodb:ExportTableToPointInTime"],
                    "Resource": [s.table_arn for s in sources]})
        out.append({"Sid": "DescribeExports", "Effect": "Allow", "Action": ["dynamodb:DescribeExport"],
                    "Resource": [sub("${Table}/export/*", Table=s.table_arn) for s in sources]})
    if "put" in access.kinesis:
        out.append({"Sid": "PutChanges", "Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords"],
                    "Resource": [att(KINESIS, "Arn")]})
    if "read" in access.kinesis:
        out.append({"Sid": "ReadChanges", "Effect": "Allow",
                    "Action": ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                               "kinesis:GetShardIterator", "kinesis:ListShards"],
                    "Resource": [att(KINESIS, "Arn")]})
        out.append(if_(EFO_CONDITION, {"Sid": "SubscribeChanges", "Effect": "Allow",
                                       "Action": ["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"],
                                       "Resource": [att(CONSUMER, "ConsumerARN")]}, NO_VALUE))
    if access.dead_letters:
        out.append({"Sid": "SendDeadLetters", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                    "Resource": [att(DLQ, "Arn")]})
    if access.catalog:
        catalog = _glue_arn("catalog")
        database = _glue_arn(f"database/${{{DATABASE}}}")
        tables = [_glue_arn(f"table/${{{DATABASE}}}/{t}") for t in catalog_tables(access.tables, sources)]
        if "read" in access.catalog:
            out.append({"Sid": "ReadCatalog", "Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetTable"],
                        "Resource": [catalog, database, *tables]})
            # Glue authorizes a listing against every table of the database
            out.append({"Sid": "ListCatalog", "Effect": "Allow", "Action": ["glue:GetTables"],
                        "Resource": [catalog, database, _glue_arn(f"table/${{{DATABASE}}}/*")]})
        if "write" in access.catalog:
            out.append({"Sid": "WriteCatalog", "Effect": "Allow", "Action": ["glue:CreateTable", "glue:UpdateTable"],
                        "Resource": [catalog, database, *tables]})
        if "create_database" in access.catalog:
            # pyiceberg creates the namespace before a table and expects AlreadyExists, not AccessDenied
            out.append({"Sid": "EnsureDatabase", "Effect": "Allow", "Action": ["glue:CreateDatabase"],
                        "Resource": [catalog, database]})
    if access.athena:
        out.append({"Sid": "RunQueries", "Effect": "Allow",
                    "Action": ["athena:GetQueryExecution", "athena:GetQueryResults", "athena:StartQueryExecution",
                               "athena:StopQueryExecution"],
                    "Resource": [sub(f"arn:${{AWS::Partition}}:athena:${{AWS::Region}}:${{AWS::AccountId}}:"
                                     f"workgroup/${{{WORKGROUP}}}")]})
    if artifacts:
        out.append({"Sid": "ReadCode", "Effect": "Allow", "Action": ["s3:GetObject"],
                    "Resource": [sub(f"arn:${{AWS::Partition}}:s3:::${{{ARTIFACT_BUCKET}}}/${{{ARTIFACT_PREFIX}}}{key}")
                                 for key in artifacts]})
    if log_resources:
        out.append({"Sid": "WriteLogs", "Effect": "Allow", "Action": list(log_actions),
                    "Resource": list(log_resources)})
    return out


def role(service: str, policy_name: str, statements_: list[Statement], description: str) -> dict[str, Any]:
    """An ``AWS::IAM::Role`` assumable by ``service`` with one inline policy of ``statements_``."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": description,
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
            },
            "Policies": [{"PolicyName": policy_name,
                          "PolicyDocument": {"Version": "2012-10-17", "Statement": statements_}}],
        },
    }


