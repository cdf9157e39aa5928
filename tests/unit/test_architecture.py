"""The dependency rules of docs/ARCHITECTURE.md, checked by walking every import (top level
and inside functions) of the shipped packages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("lake", "lambdas", "glue_jobs")


def _modules() -> list[Path]:
    return sorted(p for pkg in SHIPPED for p in (REPO / pkg).rglob("*.py"))


def _name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute; relative imports resolved against its package."""
    tree = ast.parse(path.read_text(), str(path))
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(allowed_in: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in _modules():
        name = _name(path)
        if any(_within(name, a) for a in allowed_in):
            continue
        for target in imported(path):
            if any(_within(target, f) for f in forbidden):
                bad.append(f"{name} imports {target}")
    return sorted(set(bad))


# lake.cli composes the product and the local stack: `lake up` and `lake demo` are its
# subcommands. Everything else that ships runs on AWS, where lake.local does not exist.
LOCAL_USERS = ("lake.local", "lake.cli")


def test_the_product_never_imports_the_local_stack() -> None:
    assert _violations(LOCAL_USERS, ("lake.local",)) == []


# The AWS SDK is the adapter layer's business: lake.aws (the doors, clients, provisioning) and
# lake.local (the embedded AWS and the runtime that stands in for Lambda's pollers).
SDK_USERS = ("lake.aws", "lake.local")


def test_only_the_adapters_import_the_aws_sdk() -> None:
    assert _violations(SDK_USERS, ("boto3", "botocore")) == []


# Calls that only the doors make: object reads and writes (S3 API names, as a method call or a
# paginator's name) and Glue calls (the Glue client reached through Clients, or any call that
# names a database the way Glue's API does).
S3_OBJECT_CALL = re.compile(
    r"\.(?:put_object|get_object|head_object|delete_objects?|copy_object|list_objects(?:_v2)?)\s*\("
    r"""|["']list_objects(?:_v2)?["']""")
# (``lake.glue`` is the Glue jobs' package, a module path and not a Glue call)
GLUE_CALL = re.compile(r"""(?<!\blake)\.glue\.|\bclients\.glue\b|client\(\s*["']glue["']"""
                       r"""|\b(?:DatabaseName|DatabaseInput)\s*=""")
STORAGE_DOOR = "lake/aws/storage.py"
CATALOG_DOOR = "lake/aws/catalog.py"
# moto's own patches (the embedded AWS) are not a way around the doors
EXEMPT = ("lake/local/embedded.py",)


def _calls(pattern: re.Pattern[str], door: str) -> list[str]:
    bad = []
    for path in _modules():
        rel = path.relative_to(REPO).as_posix()
        if rel == door or rel in EXEMPT:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                bad.append(f"{rel}:{n}: {line.strip()}")
    return bad


def test_objects_are_read_and_written_only_through_the_storage_door() -> None:
    assert _calls(S3_OBJECT_CALL, STORAGE_DOOR) == []


def test_glue_is_called_only_through_the_catalog_door() -> None:
    assert _calls(GLUE_CALL, CATALOG_DOOR) == []


def test_the_door_rules_see_a_violation(tmp_path: Path) -> None:
    pkg = tmp_path / "lake" / "curate"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text(
        "def f(clients, glue, s3):\n"
        "    clients.s3.put_object(Bucket='b', Key='k', Body=b'')\n"
        "    s3.get_paginator('list_objects_v2')\n"
        "    clients.glue.get_table(DatabaseName='d', Name='t')\n"
        "    glue.create_table(DatabaseName='d', TableInput={})\n"
        "    import botocore.exceptions\n"
        "    return c.type.glue, store.get(k), catalog.get_table('t')\n"  # fine: a column's type, the doors
        "    from lake.glue.jobs import run  # fine: the jobs' package\n"
    )
    door = tmp_path / "lake" / "aws"
    door.mkdir()
    (door / "storage.py").write_text("s3.put_object(Bucket=b)\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert [c.split(":")[1] for c in _calls(S3_OBJECT_CALL, STORAGE_DOOR)] == ["2", "3"]
        assert [c.split(":")[1] for c in _calls(GLUE_CALL, CATALOG_DOOR)] == ["4", "5"]
        assert _violations(SDK_USERS, ("boto3", "botocore")) == ["lake.curate.x imports botocore.exceptions"]
    finally:
        REPO = saved


def test_the_rule_checker_sees_a_violation(tmp_path: Path) -> None:
    # the walker must find imports at any depth, absolute or relative, or the rules above prove nothing
    pkg = tmp_path / "lake" / "archive"
    pkg.mkdir(parents=True)
    mod = pkg / "x.py"
    mod.write_text("def f():\n    from ..local import up\n    import boto3.session\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert imported(mod) >= {"lake.local", "lake.local.up", "boto3.session"}
        assert _violations(LOCAL_USERS, ("lake.local",)) == ["lake.archive.x imports lake.local",
                                                             "lake.archive.x imports lake.local.up"]
    finally:
        REPO = saved
