"""``lake template --app examples.<name>.app``: an app's SAM template, rendered from the ``APP``
its module declares (lake/deploy/apps.py) and validated as the lake's own template is:
cfn-lint on the template and on its SAM expansion, and the least-privilege rules.
``lake deploy --app examples.<name>.app``: its code bundled and uploaded, its stack created or
updated through a change set (the lake's own deployment flow, lake/deploy/command.py)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import json
import re
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
    from lake.deploy.validate import check, write_text

    template, status = check(render(load_app(args.app)), settings.region, validate=args.validate,
                             expanded=args.expanded, what=f"template of {args.app}")
    write_text(args.output, to_yaml(template, args.app))
    return status


def stack_name(app: App) -> str:
    """An app's default stack name: its name in lower case, ``_`` as ``-`` (its buckets' names start with it)."""
    return re.sub(r"[^a-z0-9-]+", "-", app.name.lower()).strip("-") or "app"


def run_app_deploy(args: argparse.Namespace, settings: Settings) -> int:
    """Bundle the app's code (the lake's Lambda bundle plus the app's directory), upload it, and
    create or update the app's stack through a change set, as ``lake deploy`` does for the lake.
    ``--parameter LakeStreamArn=...`` once the lake is deployed (the lake archives the app's
    tables, so the app comes first). On the embedded AWS the SAM transform is expanded here."""
    from lake.aws.clients import Clients
    from lake.aws.provision import ensure_bucket
    from lake.aws.stack import MAX_TEMPLATE_BODY, Stacks, account_id, template_url
    from lake.deploy.app_bundle import app_lambda_bundle
    from lake.deploy.apps import render
    from lake.deploy.bundle import LAMBDA_REQUIREMENTS
    from lake.deploy.command import _pairs, apply_change_set

    app = load_app(args.app)
    args.stack_name = args.stack_name or stack_name(app)
    template = render(app)
    declared = template.get("Parameters", {})
    parameters = _pairs(args.parameter, "--parameter")
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ConfigError(f"--parameter {', '.join(unknown)}: not parameters of {args.app}'s template "
                          f"({', '.join(declared) or 'it has none'})")
    clients = Clients(settings)
    artifact_bucket = args.artifact_bucket or f"{args.stack_name}-artifacts-{account_id(clients)}-{settings.region}"
    code = None
    if app.functions:
        # the handlers are imported by the module path they are declared with: bundle the app's
        # package as it is imported (examples/<name>/ from the repository's root)
        package = Path(str(sys.modules[args.app].__file__)).resolve().parent
        if "." not in args.app:
            raise ConfigError(f"--app {args.app}: a module of the app's package is expected (examples.<name>.app)")
        package_root = package.parents[args.app.count(".") - 1]
        code = app_lambda_bundle(package, package_root,
                                 requirements=() if args.code_only else LAMBDA_REQUIREMENTS)
        prefix = f"app/{code.sha256[:16]}/"
        parameters.setdefault("ArtifactBucket", artifact_bucket)
        parameters.setdefault("ArtifactPrefix", prefix)
        print(f"code: lambda.zip {len(code.data) / 2**20:.1f} MB ({code.unzipped_bytes / 2**20:.1f} MB unzipped, "
              f"{code.files} files) -> s3://{artifact_bucket}/{prefix}")
    if code is not None or len(json.dumps(template, separators=(",", ":"))) > MAX_TEMPLATE_BODY:
        ensure_bucket(clients, artifact_bucket, settings.region)
    store = clients.store(artifact_bucket)
    if code is not None:
        store.put(parameters["ArtifactPrefix"] + "lambda.zip", code.data, content_type="application/zip")
    if settings.is_local:
        from lake.deploy.validate import expand_sam

        template = expand_sam(template, parameters, region=settings.region)
    url = None
    body = json.dumps(template, separators=(",", ":"))
    if len(body) > MAX_TEMPLATE_BODY:
        key = f"app/{hashlib.sha256(body.encode()).hexdigest()[:16]}/template.json"
        store.put(key, body.encode(), content_type="application/json")
        url = template_url(artifact_bucket, key, settings.region)
    return apply_change_set(Stacks(clients, args.stack_name), template, parameters, url, args, settings)
