"""Create the lake's resources, idempotently: a second run changes nothing.

Source tables (stream NEW_AND_OLD_IMAGES, TTL on ``expires_at``), the Kinesis
stream, the bucket, the Glue database (through the catalog door, ``lake.aws.catalog``)
and the SQS dead-letter queue.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lake.aws.clients import Clients, error_code, translate
from lake.errors import NotFoundError
from lake.settings import Settings, TableSpec
from lake.wiring import TTL_ATTRIBUTE

log = logging.getLogger(__name__)


@dataclass
class Provisioned:
    """What exists after provisioning, and what this run created."""

    stream_arns: dict[str, str] = field(default_factory=dict)  # table -> stream ARN
    kinesis_arn: str = ""
    dlq_url: str = ""
    dlq_arn: str = ""
    created: list[str] = field(default_factory=list)


def ensure_table(clients: Clients, spec: TableSpec) -> tuple[str, bool]:
    """Create ``spec`` with a NEW_AND_OLD_IMAGES stream unless it exists; return its stream ARN."""
    ddb = clients.dynamodb
    created = False
    try:
        desc = ddb.describe_table(TableName=spec.name)["Table"]
    except ClientError as e:
        if error_code(e) != "ResourceNotFoundException":
            raise translate(e, "DynamoDB table", spec.name) from e
        attrs = [{"AttributeName": spec.hash_key, "AttributeType": spec.hash_type}]
        schema = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
        if spec.range_key:
            attrs.append({"AttributeName": spec.range_key, "AttributeType": spec.range_type})
            schema.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
        ddb.create_table(
            TableName=spec.name, AttributeDefinitions=attrs, KeySchema=schema,
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        ddb.get_waiter("table_exists").wait(TableName=spec.name, WaiterConfig={"Delay": 1})
        desc = ddb.describe_table(TableName=spec.name)["Table"]
        created = True
    if not desc.get("StreamSpecification", {}).get("StreamEnabled"):
        ddb.update_table(
            TableName=spec.name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        desc = ddb.describe_table(TableName=spec.name)["Table"]
    try:
        ttl = ddb.describe_time_to_live(TableName=spec.name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") in (None, "DISABLED"):
            ddb.update_time_to_live(
                TableName=spec.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
    except ClientError as e:  # TTL is a nicety; a table without it still streams
        log.warning("could not enable TTL on %s: %s", spec.name, e)
    return desc["LatestStreamArn"], created


def ensure_kinesis(clients: Clients, name: str, shards: int = 1) -> tuple[str, bool]:
    kin = clients.kinesis
    created = False
    try:
        desc = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    except ClientError as e:
        if error_code(e) != "ResourceNotFoundException":
            raise translate(e, "Kinesis stream", name) from e
        kin.create_stream(StreamName=name, ShardCount=shards)
        created = True
        for _ in range(60):
            desc = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            if desc["StreamStatus"] == "ACTIVE":
                break
            time.sleep(0.5)
    return desc["StreamARN"], created


def ensure_bucket(clients: Clients, bucket: str, region: str) -> bool:
    s3 = clients.s3
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as e:
        if error_code(e) not in ("404", "NoSuchBucket", "NotFound"):
            raise translate(e, "S3 bucket", bucket) from e
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    return True


def ensure_glue_database(clients: Clients, name: str) -> bool:
    """Create the Glue database unless it exists (through the catalog door); True when created."""
    return clients.catalog(name).ensure_database("DynamoDB change lake")


def ensure_queue(clients: Clients, name: str) -> tuple[str, str, bool]:
    sqs = clients.sqs
    created = False
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as e:
        if error_code(e) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise translate(e, "SQS queue", name) from e
        # 14 days: the longest SQS keeps a message, for failures nobody looked at yet.
        url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
        created = True
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, created


def provision(settings: Settings, clients: Clients | None = None) -> Provisioned:
    """Create whatever of the lake's resources is missing."""
    clients = clients or Clients(settings)
    out = Provisioned()
    if ensure_bucket(clients, settings.bucket, settings.region):
        out.created.append(f"s3://{settings.bucket}")
    for spec in settings.tables:
        out.stream_arns[spec.name], created = ensure_table(clients, spec)
        if created:
            out.created.append(f"dynamodb table {spec.name}")
    out.kinesis_arn, created = ensure_kinesis(clients, settings.kinesis_stream, settings.kinesis_shards)
    if created:
        out.created.append(f"kinesis stream {settings.kinesis_stream}")
    if ensure_glue_database(clients, settings.glue_database):
        out.created.append(f"glue database {settings.glue_database}")
    out.dlq_url, out.dlq_arn, created = ensure_queue(clients, settings.dlq)
    if created:
        out.created.append(f"sqs queue {settings.dlq}")
    return out


def stream_arn(clients: Clients, table: str) -> str:
    """The latest stream ARN of ``table``, with a clear error when there is none."""
    try:
        desc = clients.dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as e:
        raise translate(e, "DynamoDB table", table) from e
    arn = desc.get("LatestStreamArn")
    if not arn:
        raise NotFoundError("DynamoDB stream", table, "enable streams (NEW_AND_OLD_IMAGES) on the table")
    return str(arn)
