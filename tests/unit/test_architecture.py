"""The dependency rules of docs/ARCHITECTURE.md, checked by walking every import (top level
and inside functions) of the shipped packages."""

from __future__ import annotations

import ast
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
