"""The code bundles ``lake deploy`` uploads: the Lambda zip (handlers, the lake, their
dependencies) and, for the Glue jobs, the lake's own code and the job scripts.

pyarrow, pandas, numpy and boto3 are not in the Lambda zip: the consumer gets them from AWS's
managed *AWS SDK for pandas* layer (docs/adr/0005), which keeps the zip well under Lambda's
limits. Dependencies are installed for Lambda's platform (``manylinux2014_aarch64``, CPython
3.11) with pip's ``--platform`` so the bundle builds on any machine.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lake.errors import ConfigError

#: Lambda's limits for a function's code: 250 MB unzipped (layers included), 50 MB zipped upload
#: through the API (through S3, as here, the unzipped limit is what binds).
UNZIPPED_LIMIT = 250 * 1024 * 1024
#: What the Lambdas import beyond the layer (pyiceberg without its pyarrow extra: the layer has pyarrow;
#: without pyiceberg-core, which has no manylinux2014 aarch64 wheel for the versions pyiceberg 0.12
#: takes, and which identity partitions do not need).
LAMBDA_REQUIREMENTS = (
    "pyiceberg[glue]>=0.12,<0.13", "orjson>=3.10,<4", "sqlglot>=26,<31",
    "aws-lambda-powertools[parser]>=3.0,<4",
)
#: Provided by the Lambda runtime (boto3) or the AWS SDK for pandas layer: never bundled.
PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "pyarrow", "pandas", "numpy", "awswrangler",
            "dateutil", "python_dateutil", "pytz", "six", "urllib3")
CODE_PACKAGES = ("lake", "lambdas")
#: Never shipped: the local stack does not exist on AWS (docs/ARCHITECTURE.md), nor does deploying.
NOT_SHIPPED = ("lake/local/", "lake/deploy/")
# Lambda's python3.11 runtime is Amazon Linux 2 (glibc 2.26): manylinux2014 (glibc 2.17) wheels only
PLATFORM = ("--platform", "manylinux2014_aarch64", "--implementation", "cp", "--python-version", "3.11",
            "--only-binary=:all:")

Installer = Callable[[Sequence[str], Path], None]


@dataclass(frozen=True)
class Bundle:
    name: str
    data: bytes
    unzipped_bytes: int
    files: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def source_root() -> Path:
    """The directory holding the ``lake`` package (a checkout or site-packages)."""
    import lake

    return Path(lake.__file__).resolve().parent.parent


def pip_install(requirements: Sequence[str], target: Path) -> None:
    """Install ``requirements`` for Lambda's platform into ``target`` (pip, from the package index)."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), *PLATFORM,
           *requirements]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"installing the Lambda dependencies failed: {done.stderr.strip()[-2000:]}")


def _code_files(root: Path, packages: Iterable[str]) -> list[tuple[str, Path]]:
    out = []
    for pkg in packages:
        base = root / pkg
        if not base.is_dir():
            raise ConfigError(f"package {pkg} not found under {root}")
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if (path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed", ".sql")
                    and not rel.startswith(NOT_SHIPPED)):
                out.append((rel, path))
    return out


def _provided(relpath: str) -> bool:
    top = relpath.split("/", 1)[0]
    name = top.split("-", 1)[0].removesuffix(".py").lower()  # pyarrow-18.0.0.dist-info -> pyarrow
    return name in PROVIDED


def add_file(zf: zipfile.ZipFile, arcname: str, path: Path) -> int:
    """``path`` into the zip as ``arcname``, with a fixed timestamp (the same code makes the same
    zip, and the same artifact key); its size."""
    info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    data = path.read_bytes()
    zf.writestr(info, data)
    return len(data)


def _zip(name: str, entries: Iterable[tuple[str, Path]], limit: int | None) -> Bundle:
    buf = io.BytesIO()
    size = count = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for arcname, path in sorted(entries):
            size += add_file(zf, arcname, path)
            count += 1
    if limit is not None and size > limit:
        raise ConfigError(f"{name}: {size / 2**20:.0f} MB unzipped, over Lambda's {limit / 2**20:.0f} MB "
                          "(the layer's pyarrow/pandas must not be bundled)")
    return Bundle(name, buf.getvalue(), size, count)


def lambda_bundle(root: Path | None = None, requirements: Sequence[str] = LAMBDA_REQUIREMENTS,
                  installer: Installer = pip_install, limit: int = UNZIPPED_LIMIT) -> Bundle:
    """The Lambda zip: the handlers and the lake, plus ``requirements`` (none: code only)."""
    root = root or source_root()
    entries = _code_files(root, CODE_PACKAGES)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp)
        if requirements:
            installer(requirements, target)
        entries += [(p.relative_to(target).as_posix(), p) for p in sorted(target.rglob("*"))
                    if p.is_file() and "__pycache__" not in p.parts and not _provided(p.relative_to(target).as_posix())]
        return _zip("lambda.zip", entries, limit)


def lake_bundle(root: Path | None = None) -> Bundle:
    """The lake's own code for the Glue jobs (``--extra-py-files``)."""
    return _zip("lake.zip", _code_files(root or source_root(), ("lake",)), None)


def glue_scripts(jobs: Iterable[str], root: Path | None = None) -> dict[str, bytes]:
    """``glue_jobs/<job>.py`` of each job; a missing script is an error naming them all."""
    root = root or source_root()
    scripts = {job: root / "glue_jobs" / f"{job}.py" for job in jobs}
    missing = sorted(str(p.relative_to(root)) for p in scripts.values() if not p.is_file())
    if missing:
        raise ConfigError(f"the Glue jobs' scripts are missing: {', '.join(missing)}")
    return {job: path.read_bytes() for job, path in scripts.items()}
