"""THE declaration of how the lake is wired: functions, their triggers and mapping settings,
the lake's stream and queue, the Glue jobs and their schedules, and what each one may touch.

Both ends are derived from it, so they cannot drift: ``lake up`` builds its local event
source mappings from :data:`FUNCTIONS` (``lake/local/up.py``), and ``lake template``
renders ``template.yaml`` (its functions, event source mappings, roles and Glue jobs) from
the same objects (``lake/deploy/template.py``, ``lake/deploy/iam.py``).

Pure data: no boto3, nothing AWS-specific beyond names. What a function *may touch* is
declared here as :class:`Access` (zones of the bucket, the catalog, the streams); the IAM
statements that grant exactly that are built in ``lake/deploy/iam.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: The attribute DynamoDB's TTL reads on the tables the lake creates.
TTL_ATTRIBUTE = "expires_at"

#: The bucket's zones (``Settings.zone_prefix(zone)``), each a prefix under the lake's root prefix.
Zone = Literal["raw", "curated", "quarantine", "claims", "exports", "athena-results", "glue-temp"]
ZONES: tuple[Zone, ...] = ("raw", "curated", "quarantine", "claims", "exports", "athena-results", "glue-temp")

#: What may be done to the objects of a zone.
ObjectOp = Literal["get", "put", "delete", "list"]

Source = Literal["dynamodb", "kinesis"]  # every source table's stream, or the lake's Kinesis stream
StartingPosition = Literal["TRIM_HORIZON", "LATEST"]


@dataclass(frozen=True)
class Trigger:
    """An event source mapping's settings (AWS's names in snake case; ``-1`` = AWS's "unlimited")."""

    source: Source
    batch_size: int
    batching_window_s: int = 0
    maximum_retry_attempts: int = 10
    maximum_record_age_s: int = -1
    bisect_batch_on_function_error: bool = True
    report_batch_item_failures: bool = True
    starting_position: StartingPosition = "TRIM_HORIZON"
    parallelization_factor: int = 1
    # Lambda's filter patterns (JSON texts, lake/filters.py's language); none = every record
    filter_patterns: tuple[str, ...] = ()
    # kinesis only: read through a dedicated enhanced fan-out consumer (its own 2 MB/s per shard)
    enhanced_fan_out: bool = False


@dataclass(frozen=True)
class ObjectAccess:
    """Operations on the objects of one zone of the lake's bucket."""

    zone: Zone
    ops: tuple[ObjectOp, ...]


CatalogOp = Literal["read", "write", "create_database"]
DynamoOp = Literal["read_streams", "export"]
KinesisOp = Literal["put", "read"]


@dataclass(frozen=True)
class Access:
    """Everything one function or job may touch; IAM statements are derived from it."""

    objects: tuple[ObjectAccess, ...] = ()
    catalog: tuple[CatalogOp, ...] = ()
    # the catalog tables written: "changes", and per source table "{history}", "{current}", "{current}_at_*"
    tables: tuple[str, ...] = ()
    source_tables: tuple[DynamoOp, ...] = ()
    kinesis: tuple[KinesisOp, ...] = ()
    dead_letters: bool = False  # send to the dead-letter queue (Lambda's on-failure destination)
    athena: bool = False  # run queries in the lake's workgroup
    artifacts: bool = False  # read the deployed code (Glue scripts and the lake's package)


@dataclass(frozen=True)
class Function:
    """A Lambda function of the lake: its handler, its trigger and what it may touch."""

    name: str  # kebab-case, the local runtime's mapping name and the suffix of the AWS function name
    handler: str  # module:function, as `lake up --function` and lake.invocation take it
    trigger: Trigger
    access: Access
    memory_mb: int = 1024
    timeout_s: int = 120
    description: str = ""
    # needs pyarrow/pandas (the AWS SDK for pandas layer on AWS, docs/adr/0005)
    needs_arrow: bool = False

    @property
    def logical_id(self) -> str:
        return "".join(p.capitalize() for p in self.name.split("-"))

    @property
    def lambda_handler(self) -> str:
        """``lambdas.fanout.lambda_handler``: the handler as Lambda names it."""
        module, _, func = self.handler.partition(":")
        return f"{module}.{func}"


@dataclass(frozen=True)
class GlueJob:
    """A Glue job of the lake: ``glue_jobs/<name>.py``, its schedule and what it may touch."""

    name: str
    access: Access
    schedule: str | None = None  # a Glue cron expression, e.g. ``cron(15 3 * * ? *)``
    arguments: tuple[tuple[str, str], ...] = ()  # the schedule's arguments (lake/glue/jobs.py names)
    timeout_min: int = 120
    workers: int = 2
    worker_type: str = "G.1X"
    description: str = ""

    @property
    def script(self) -> str:
        return f"glue_jobs/{self.name}.py"

    @property
    def logical_id(self) -> str:
        return "".join(p.capitalize() for p in self.name.split("_")) + "Job"


# -- the lake's tables in the catalog ------------------------------------------------------------
CHANGES_TABLE = "changes"
HISTORY = "{history}"  # <stem>_history of each source table (lake.curate.names)
CURRENT = "{current}"  # <stem>_current
CURRENT_AS_OF = "{current}_at_*"  # current_state --as-of snapshot tables

_CURATED_RW = ObjectAccess("curated", ("get", "put", "delete", "list"))
_QUARANTINE = ObjectAccess("quarantine", ("put",))

FUNCTIONS: tuple[Function, ...] = (
    Function(
        "stream-archiver", "lambdas.stream_archiver:lambda_handler",
        Trigger("dynamodb", batch_size=100, maximum_record_age_s=86_400),
        Access(objects=(ObjectAccess("raw", ("put",)), _QUARANTINE), source_tables=("read_streams",),
               dead_letters=True),
        description="DynamoDB stream -> raw zone (gzip JSON lines)",
    ),
    Function(
        "fanout", "lambdas.fanout:lambda_handler",
        Trigger("dynamodb", batch_size=100, maximum_record_age_s=86_400),
        Access(objects=(ObjectAccess("claims", ("put",)), _QUARANTINE), source_tables=("read_streams",),
               kinesis=("put",), dead_letters=True),
        description="DynamoDB stream -> the lake's Kinesis stream",
    ),
    Function(
        "parquet-consumer", "lambdas.parquet_consumer:lambda_handler",
        # 2,000: each batch costs two Iceberg commits whatever its size, so larger batches mean fewer
        # commits and files (measured locally: a consumer that is behind catches up ~4x faster than
        # at 500); ~2 KB per fan-out record stays well inside Lambda's 6 MB payload.
        Trigger("kinesis", batch_size=2000, batching_window_s=5, maximum_record_age_s=604_800,
                enhanced_fan_out=True),
        # create_database: pyiceberg creates the namespace before a table and expects "already exists"
        Access(objects=(_CURATED_RW, ObjectAccess("claims", ("get",)), _QUARANTINE),
               catalog=("read", "write", "create_database"), tables=(CHANGES_TABLE, HISTORY),
               kinesis=("read",), dead_letters=True),
        memory_mb=2048, description="Kinesis -> the curated zone's Iceberg tables", needs_arrow=True,
    ),
)

_JOB_CATALOG: tuple[CatalogOp, ...] = ("read", "write", "create_database")

GLUE_JOBS: tuple[GlueJob, ...] = (
    GlueJob(
        "compact",
        Access(objects=(_CURATED_RW, ObjectAccess("athena-results", ("get", "put", "list")),
                        ObjectAccess("glue-temp", ("get", "put", "delete", "list"))),
               catalog=_JOB_CATALOG, tables=(CHANGES_TABLE, HISTORY, CURRENT), athena=True, artifacts=True),
        schedule="cron(15 3 * * ? *)", description="bin-pack small files, expire snapshots, remove orphans",
    ),
    GlueJob(
        "current_state",
        Access(objects=(_CURATED_RW, ObjectAccess("athena-results", ("get", "put", "list")),
                        ObjectAccess("glue-temp", ("get", "put", "delete", "list"))),
               catalog=_JOB_CATALOG, tables=(HISTORY, CURRENT, CURRENT_AS_OF), athena=True, artifacts=True),
        schedule="cron(0 * * * ? *)", description="<stem>_current from the history, incrementally",
    ),
    GlueJob(
        "backfill",
        Access(objects=(_CURATED_RW, ObjectAccess("raw", ("get", "list")),
                        ObjectAccess("glue-temp", ("get", "put", "delete", "list"))),
               catalog=_JOB_CATALOG, tables=(CHANGES_TABLE, HISTORY), artifacts=True),
        description="rebuild a table's range from the raw zone (run by hand: --table, --since, --until)",
    ),
    GlueJob(
        "bootstrap",
        # DynamoDB writes the export with the caller's permissions: put on the exports zone
        Access(objects=(_CURATED_RW, ObjectAccess("exports", ("get", "put", "list")),
                        ObjectAccess("glue-temp", ("get", "put", "delete", "list"))),
               catalog=_JOB_CATALOG, tables=(CHANGES_TABLE, HISTORY), source_tables=("export",), artifacts=True),
        timeout_min=480, description="load a DynamoDB export as the changes it stands for (run by hand: --table)",
    ),
)


@dataclass(frozen=True)
class Wiring:
    """The whole declaration (what ``lake up`` and ``lake template`` read)."""

    functions: tuple[Function, ...] = FUNCTIONS
    glue_jobs: tuple[GlueJob, ...] = GLUE_JOBS
    dead_letter_retention_s: int = 1_209_600  # 14 days: the longest SQS keeps a message
    kinesis_retention_hours: int = 168
    # what the Glue jobs install next to the lake's code (Glue 5.0 ships pyarrow, pandas, boto3)
    glue_python_modules: tuple[str, ...] = field(default=(
        "pyiceberg[glue]>=0.12,<0.13", "orjson>=3.10,<4", "sqlglot>=26,<31", "aws-lambda-powertools>=3,<4",
    ))

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)


WIRING = Wiring()
