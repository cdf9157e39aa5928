from pathlib import Path

import pytest

from lake.errors import ConfigError
from lake.settings import Settings, TableSpec


def write_toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "lake.toml"
    p.write_text(text)
    return p


def test_defaults_without_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.resolve(environ={})
    assert s.endpoint_url is None and s.region == "us-east-1"
    assert s.source_tables == ("orders",) and not s.is_local


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    cfg = write_toml(tmp_path, '[lake]\nbucket = "from-file"\nregion = "eu-west-1"\nkinesis_stream = "k-file"\n')
    env = {"LAKE_BUCKET": "from-env", "LAKE_REGION": "eu-central-1"}
    s = Settings.resolve({"bucket": "from-flag", "region": None}, environ=env, config_path=cfg)
    assert s.bucket == "from-flag"          # flag
    assert s.region == "eu-central-1"       # env (the None flag means "not given")
    assert s.kinesis_stream == "k-file"     # file
    assert s.glue_database == "dynamodb_lake"  # default


def test_environment_beats_the_file(tmp_path: Path) -> None:
    cfg = write_toml(tmp_path, '[lake]\nregion = "eu-west-1"\nbucket = "b-file"\n')
    s = Settings.resolve(environ={"AWS_REGION": "ap-south-1"}, config_path=cfg)
    assert (s.region, s.bucket) == ("ap-south-1", "b-file")


def test_standard_aws_variables_sit_below_lake_ones() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "ap-south-1", "LAKE_REGION": "us-west-2"}
    s = Settings.resolve(environ=env, config_path=None)
    assert s.endpoint_url == "http://127.0.0.1:9" and s.region == "us-west-2" and s.is_local


def test_env_lists_and_ints_are_coerced() -> None:
    s = Settings.resolve(environ={"LAKE_SOURCE_TABLES": "orders, users:id:-", "LAKE_PORT": "0"})
    assert s.source_tables == ("orders", "users:id:-") and s.port == 0
    assert [t.range_key for t in s.tables] == ["sk", None]


def test_bad_values_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port"):
        Settings.resolve(environ={"LAKE_PORT": "many"})
    with pytest.raises(ConfigError, match="unknown setting 'buckit'"):
        Settings.resolve(config_path=write_toml(tmp_path, "[lake]\nbuckit = 'x'\n"), environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.resolve(config_path=write_toml(tmp_path, "[lake\n"), environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.resolve(config_path=tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="does not exist"):  # named by the environment: same
        Settings.resolve(environ={"LAKE_CONFIG": str(tmp_path / "nope.toml")})


def test_local_credentials_only_for_loopback() -> None:
    local = Settings(endpoint_url="http://localhost:4566")
    assert local.boto3_session_kwargs()["aws_access_key_id"] == "testing"
    remote = Settings(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com", profile="prod")
    assert "aws_access_key_id" not in remote.boto3_session_kwargs()
    assert remote.boto3_session_kwargs()["profile_name"] == "prod"


def test_env_round_trips_through_resolve() -> None:
    s = Settings(endpoint_url="http://127.0.0.1:1234", bucket="b", prefix="lake", source_tables=("a", "b:h:r"))
    again = Settings.resolve(environ=s.env(), config_path=None)
    assert (again.endpoint_url, again.bucket, again.prefix, again.source_tables) == (
        s.endpoint_url, "b", "lake", ("a", "b:h:r"))
    assert again.zone_prefix("raw") == "lake/raw/" and Settings().zone_prefix("raw") == "raw/"


@pytest.mark.parametrize("spec,expected", [
    ("orders", TableSpec("orders")),
    ("users:user_id:-", TableSpec("users", "user_id", None)),
    ("events:device/S:ts/N", TableSpec("events", "device", "ts", "S", "N")),
])
def test_table_spec_parse_and_render(spec: str, expected: TableSpec) -> None:
    parsed = TableSpec.parse(spec)
    assert parsed == expected
    assert TableSpec.parse(parsed.render()) == parsed


@pytest.mark.parametrize("bad", ["", ":pk", "t:pk/X", "a:b:c:d"])
def test_table_spec_rejects_nonsense(bad: str) -> None:
    with pytest.raises(ConfigError):
        TableSpec.parse(bad)
