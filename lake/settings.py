"""One settings object for the whole lake.

Resolution order, highest first: an explicit argument (a CLI flag), a ``LAKE_*``
environment variable, the standard ``AWS_ENDPOINT_URL`` / ``AWS_REGION`` /
``AWS_DEFAULT_REGION`` / ``AWS_PROFILE`` variables (so plain AWS tooling habits
work), the ``[lake]`` table of ``lake.toml`` (in the working directory, or the
file named by ``LAKE_CONFIG``), then the defaults below.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lake.errors import ConfigError

ENV_PREFIX = "LAKE_"
CONFIG_FILE = "lake.toml"

# Credentials handed to boto3 when we talk to the embedded AWS: moto accepts anything,
# and a user without ~/.aws must not need to invent some.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class TableSpec:
    """A source table: its name and key schema (string keys unless typed ``name:S|N|B``)."""

    name: str
    hash_key: str = "pk"
    range_key: str | None = "sk"
    hash_type: str = "S"
    range_type: str = "S"

    @classmethod
    def parse(cls, spec: str) -> TableSpec:
        """Parse ``table[:hash[:range]]``; ``-`` as range means no sort key.

        An attribute may carry its type as ``name/N``. Examples: ``orders``,
        ``orders:customer:order``, ``users:user_id:-``, ``events:device/S:ts/N``.
        """
        parts = [p.strip() for p in spec.split(":")]
        if not parts[0]:
            raise ConfigError(f"table spec {spec!r} has no table name")
        if len(parts) > 3:
            raise ConfigError(f"table spec {spec!r}: expected table[:hash[:range]]")

        def attr(text: str, default_type: str = "S") -> tuple[str, str]:
            name, _, typ = text.partition("/")
            typ = (typ or default_type).upper()
            if typ not in ("S", "N", "B") or not name:
                raise ConfigError(f"table spec {spec!r}: bad key attribute {text!r} (types: S, N, B)")
            return name, typ

        if len(parts) == 1:
            return cls(parts[0])
        hash_key, hash_type = attr(parts[1])
        if len(parts) == 2 or parts[2] in ("", "-"):
            return cls(parts[0], hash_key, None, hash_type)
        range_key, range_type = attr(parts[2])
        return cls(parts[0], hash_key, range_key, hash_type, range_type)

    def render(self) -> str:
        hk = self.hash_key + ("" if self.hash_type == "S" else f"/{self.hash_type}")
        if self.range_key is None:
            return f"{self.name}:{hk}:-"
        rk = self.range_key + ("" if self.range_type == "S" else f"/{self.range_type}")
        return f"{self.name}:{hk}:{rk}"


def _split_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    raise ConfigError(f"expected a list or a comma-separated string, got {value!r}")


@dataclass(frozen=True)
class Settings:
    """Everything the lake needs to know about where it runs.

    ``endpoint_url`` set means "talk to this endpoint" (the embedded AWS, or
    LocalStack); unset means real AWS with the default credential chain.
    """

    endpoint_url: str | None = None
    region: str = "us-east-1"
    profile: str | None = None
    bucket: str = "dynamodb-lake"
    prefix: str = ""
    source_tables: tuple[str, ...] = ("orders",)
    kinesis_stream: str = "lake-changes"
    kinesis_shards: int = 1
    glue_database: str = "dynamodb_lake"
    athena_workgroup: str = "primary"
    athena_output: str | None = None
    dlq: str = "lake-dlq"
    state_dir: str = ".lake-state"
    port: int = 4566
    actor_attribute: str = "updated_by"
    dashboard_attribute: str = "status"  # `lake dashboard`: current-state counts by this attribute
    quicksight_principal: str | None = None  # `lake dashboard deploy`: the ARN granted the QuickSight assets
    extra: Mapping[str, str] = field(default_factory=dict)

    # -- derived ---------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        """True when we talk to an endpoint on this machine (embedded AWS)."""
        if not self.endpoint_url:
            return False
        host = self.endpoint_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        return host in ("localhost", "127.0.0.1", "[::1]", "::1") or host.startswith("127.")

    @property
    def tables(self) -> tuple[TableSpec, ...]:
        return tuple(TableSpec.parse(s) for s in self.source_tables)

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    def zone_prefix(self, zone: str) -> str:
        """``raw/`` or ``curated/`` under the configured root prefix, no leading slash."""
        root = self.prefix.strip("/")
        return f"{root}/{zone}/" if root else f"{zone}/"

    def s3_url(self, zone: str) -> str:
        return f"s3://{self.bucket}/{self.zone_prefix(zone)}"

    @property
    def athena_output_location(self) -> str:
        return self.athena_output or f"s3://{self.bucket}/{self.zone_prefix('athena-results')}"

    def boto3_session_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"region_name": self.region}
        if self.profile:
            kwargs["profile_name"] = self.profile
        elif self.is_local:
            kwargs.update(LOCAL_CREDENTIALS)
        return kwargs

    def env(self) -> dict[str, str]:
        """The environment a handler process needs to resolve these same settings."""
        out = {
            "LAKE_REGION": self.region,
            "LAKE_BUCKET": self.bucket,
            "LAKE_PREFIX": self.prefix,
            "LAKE_SOURCE_TABLES": ",".join(self.source_tables),
            "LAKE_KINESIS_STREAM": self.kinesis_stream,
            "LAKE_GLUE_DATABASE": self.glue_database,
            "LAKE_DLQ": self.dlq,
            "LAKE_STATE_DIR": self.state_dir,
            "LAKE_ACTOR_ATTRIBUTE": self.actor_attribute,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        if self.endpoint_url:
            out["LAKE_ENDPOINT_URL"] = self.endpoint_url
            out["AWS_ENDPOINT_URL"] = self.endpoint_url
        if self.is_local:
            out["AWS_ACCESS_KEY_ID"] = LOCAL_CREDENTIALS["aws_access_key_id"]
            out["AWS_SECRET_ACCESS_KEY"] = LOCAL_CREDENTIALS["aws_secret_access_key"]
        if self.profile:
            out["LAKE_PROFILE"] = self.profile
        return out

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    # -- resolution ------------------------------------------------------------
    @classmethod
    def resolve(
        cls,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Build settings: ``overrides`` > ``LAKE_*`` env > ``lake.toml`` > defaults.

        ``None`` values in ``overrides`` mean "not given" so CLI flags can be
        passed through unconditionally.
        """
        env = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}

        named = config_path or env.get("LAKE_CONFIG")
        path = Path(named or CONFIG_FILE)
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(f"{path}: not valid TOML: {e}") from e
            section = data.get("lake", data)
            for key, value in section.items():
                name = key.replace("-", "_")
                if name not in known:
                    raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
                values[name] = value
        elif named:
            raise ConfigError(f"config file {path} does not exist")

        # The environment beats the file; the standard AWS variables sit below our own prefix.
        for name, var in (("region", "AWS_DEFAULT_REGION"), ("endpoint_url", "AWS_ENDPOINT_URL"),
                          ("region", "AWS_REGION"), ("profile", "AWS_PROFILE")):
            if env.get(var):
                values[name] = env[var]
        for name in known:
            var = ENV_PREFIX + name.upper()
            if var in env:
                values[name] = env[var]

        for key, value in (overrides or {}).items():
            if value is None:
                continue
            if key not in known:
                raise ConfigError(f"unknown setting {key!r}")
            values[key] = value

        return cls(**{k: _coerce(known[k].type, k, v) for k, v in values.items()})


def _coerce(type_name: Any, name: str, value: Any) -> Any:
    t = str(type_name)
    if "tuple" in t:
        return _split_list(value)
    if t.startswith("int"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name}: expected an integer, got {value!r}") from None
    if value == "" and "None" in t:
        return None
    return str(value) if value is not None else None
