"""The Lambda zip of an app (``lambda.zip`` under the app template's ``ArtifactPrefix``): the lake's
bundle (handlers, the lake, their dependencies: lake/deploy/bundle.py) plus the app's own
directory, with its data files (an ASL file, a bundled sample feed), so the handlers its
template names (``examples.<name>.<module>.<function>``) import on Lambda as they do locally."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

from lake.deploy.bundle import (
    LAMBDA_REQUIREMENTS,
    UNZIPPED_LIMIT,
    Bundle,
    Installer,
    add_file,
    lambda_bundle,
    pip_install,
    source_root,
)
from lake.errors import ConfigError

#: Left out of an app's directory: caches and the app's tests (they run here, not on Lambda).
_SKIPPED_PARTS = ("__pycache__", "tests")


def app_files(app_dir: Path, root: Path) -> list[tuple[str, Path]]:
    """The app's files, named from ``root`` (the directory its package is imported from, where
    ``examples/`` is): its package directory, and the ``__init__.py`` of each package above it,
    so ``examples.<name>`` imports as a package."""
    app_dir = app_dir.resolve()
    root = root.resolve()
    if not app_dir.is_dir() or root not in app_dir.parents:
        raise ConfigError(f"the app's directory {app_dir} is not a directory under {root}")
    out = [(p.relative_to(root).as_posix(), p) for p in sorted(app_dir.rglob("*"))
           if p.is_file() and not set(_SKIPPED_PARTS) & set(p.relative_to(app_dir).parts)
           and p.suffix not in (".pyc", ".pyo")]
    parent = app_dir.parent
    while parent != root:
        init = parent / "__init__.py"
        if init.is_file():
            out.append((init.relative_to(root).as_posix(), init))
        parent = parent.parent
    return out



def app_lambda_bundle(app_dir: Path, package_root: Path | None = None, root: Path | None = None,
                      requirements: Sequence[str] = LAMBDA_REQUIREMENTS, installer: Installer = pip_install,
                      limit: int = UNZIPPED_LIMIT) -> Bundle:
    """The lake's Lambda zip (:func:`lake.deploy.bundle.lambda_bundle`, from ``root``) with the app's
    directory (``app_dir``, e.g. ``examples/file_index``) added, named from ``package_root`` (default
    ``root``: the repository), under the same fixed timestamp."""
    root = root or source_root()
    base = lambda_bundle(root, requirements, installer, limit)
    buf = io.BytesIO(base.data)
    size, count = base.unzipped_bytes, base.files
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        present = set(zf.namelist())
        for arcname, path in sorted(app_files(app_dir, package_root or root)):
            if arcname in present:
                continue
            size += add_file(zf, arcname, path)
            count += 1
    if size > limit:
        raise ConfigError(f"lambda.zip with the app: {size / 2**20:.0f} MB unzipped, over Lambda's "
                          f"{limit / 2**20:.0f} MB")
    return Bundle("lambda.zip", buf.getvalue(), size, count)
