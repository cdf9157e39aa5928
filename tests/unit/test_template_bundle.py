"""The code bundle of lake deploy: what goes in, what the layer provides, Lambda's size limit."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from lake.deploy import bundle
from lake.errors import ConfigError


def _names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def _fake_site(requirements: Sequence[str], target: Path) -> None:
    # what pip --target leaves: packages, dist-info folders, and the layer's packages among them
    for rel in ("orjson/__init__.py", "orjson-3.10.0.dist-info/METADATA", "pyarrow/lib.py",
                "pyarrow-18.0.0.dist-info/METADATA", "numpy/core.py", "boto3/__init__.py", "six.py"):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text("x = 1\n")


def test_the_code_only_bundle_holds_the_handlers_and_the_lake() -> None:
    b = bundle.lambda_bundle(requirements=())
    names = _names(b.data)
    assert {"lambdas/stream_archiver.py", "lambdas/fanout.py", "lambdas/parquet_consumer.py", "lake/wiring.py",
            "lake/records.py"} <= set(names)
    # the local stack does not exist on AWS (docs/ARCHITECTURE.md), nor do the tests
    assert [n for n in names if "__pycache__" in n or n.startswith(("tests/", "lake/local/"))] == []
    assert b.files == len(names) and b.unzipped_bytes > 0
    # built twice, the same bytes: the artifact key (its digest) changes only with the code
    assert bundle.lambda_bundle(requirements=()).sha256 == b.sha256


def test_what_the_layer_or_runtime_provides_is_not_bundled() -> None:
    asked: list[Sequence[str]] = []

    def installer(requirements: Sequence[str], target: Path) -> None:
        asked.append(requirements)
        _fake_site(requirements, target)

    names = _names(bundle.lambda_bundle(installer=installer).data)
    assert asked == [bundle.LAMBDA_REQUIREMENTS]
    assert "orjson/__init__.py" in names and "orjson-3.10.0.dist-info/METADATA" in names
    assert not [n for n in names if n.split("/")[0].split("-")[0].removesuffix(".py") in
                ("pyarrow", "numpy", "boto3", "six")]


def test_a_bundle_over_lambdas_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="over Lambda's"):
        bundle.lambda_bundle(requirements=(), limit=1000)


def test_missing_glue_scripts_are_named(tmp_path: Path) -> None:
    (tmp_path / "glue_jobs").mkdir()
    (tmp_path / "glue_jobs" / "compact.py").write_text("print('compact')\n")
    assert bundle.glue_scripts(["compact"], tmp_path) == {"compact": b"print('compact')\n"}
    with pytest.raises(ConfigError, match=r"glue_jobs/backfill\.py"):
        bundle.glue_scripts(["compact", "backfill"], tmp_path)
