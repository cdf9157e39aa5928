"""``lake template --app examples.<name>.app``: an app's SAM template, rendered from the ``APP``
its module declares (lake/deploy/apps.py) and validated as the lake's own template is:
cfn-lint on the template and on its SAM expansion, and the least-privilege rules."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from pathlib import Path

from lake.apps import App
from lake.errors import ConfigError
from lake.settings import Settings


def load_app(module: str) -> App:
    """The ``APP`` of ``module`` (a dotted path, e.g. ``examples.file_index.app``), its ``root``
    defaulting to the module's directory (where its ASL files are).

    The repository's root is made importable first: the ``lake`` console script's ``sys.path``
    starts at its own directory, not at the checkout where ``examples/`` is."""
    from lake.deploy.bundle import source_root

    root = str(source_root())
    if root not in sys.path:
        sys.path.append(root)
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"--app {module}: cannot import it ({e})") from e
    app = getattr(mod, "APP", None)
    if not isinstance(app, App):
        raise ConfigError(f"--app {module}: the module declares no APP (a lake.apps.App)")
    if not app.root and getattr(mod, "__file__", None):
        app = dataclasses.replace(app, root=str(Path(str(mod.__file__)).resolve().parent))
    return app


def run_app_template(args: argparse.Namespace, settings: Settings) -> int:
    """Render the app's template; validate it unless ``--no-validate``; write it (``-o``, default stdout)."""
    from lake.deploy.apps import render, to_yaml

    template = render(load_app(args.app))
    status = 0
    if args.validate or args.expanded:
        from lake.deploy.validate import expand_sam, lint, privilege_problems

        expanded = expand_sam(template, region=settings.region)
        if args.validate:
            problems = [f"template: {f}" for f in lint(template)] + [f"expanded: {f}" for f in lint(expanded)]
            problems += [f"least privilege: {p}" for p in privilege_problems(expanded)]
            for p in problems:
                print(p, file=sys.stderr)
            status = 1 if problems else 0
            if not problems:
                print(f"template of {args.app} valid: {len(expanded['Resources'])} resources, cfn-lint clean, "
                      "least privilege holds", file=sys.stderr)
        if args.expanded:
            template = expanded
    text = to_yaml(template, args.app)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return status
