"""``lake template`` (render and validate template.yaml) and ``lake deploy`` (bundle, upload,
change set, wait, outputs; ``--dry-run`` shows the change set)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from lake.deploy.template import LAKE_ZIP, LAMBDA_ZIP, PANDAS_LAYERS_DOC, Layout, render, to_yaml
from lake.errors import ConfigError
from lake.settings import Settings
from lake.wiring import WIRING

if TYPE_CHECKING:
    from lake.aws.stack import Stacks

log = logging.getLogger(__name__)


def _existing(args: argparse.Namespace) -> list[str]:
    return [t.strip() for item in args.existing_tables or [] for t in item.split(",") if t.strip()]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    t = sub.add_parser("template", parents=parents, help="render and validate template.yaml from the wiring",
                       description=run_template.__doc__)
    t.add_argument("--existing-tables", action="append", metavar="A,B",
                   help="source tables that exist already: their stream ARN becomes a parameter")
    t.add_argument("--output", "-o", default="-", help="where to write the template (default: stdout)")
    t.add_argument("--expanded", action="store_true", help="write the template with the SAM transform applied")
    t.add_argument("--no-validate", dest="validate", action="store_false", help="render only")
    t.add_argument("--app", metavar="MODULE",
                   help="render an app's template instead: the APP of MODULE (e.g. examples.file_index.app)")
    t.set_defaults(func=run_template)

    d = sub.add_parser("deploy", parents=parents, help="deploy the lake to AWS as a CloudFormation stack",
                       description=run_deploy.__doc__)
    d.add_argument("--stack-name", help="CloudFormation stack (default dynamodb-lake; with --app, the app's name)")
    d.add_argument("--existing-tables", action="append", metavar="A,B",
                   help="source tables that exist already (their stream ARN is looked up, or --stream-arn)")
    d.add_argument("--stream-arn", action="append", default=[], metavar="TABLE=ARN",
                   help="the stream ARN of an existing table (default: DescribeTable's LatestStreamArn)")
    d.add_argument("--artifact-bucket", help="bucket for the code (default <stack>-artifacts-<account>-<region>)")
    d.add_argument("--pandas-layer-arn", help=f"the AWS SDK for pandas layer (Python 3.11, arm64): {PANDAS_LAYERS_DOC}")
    d.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                   help="another template parameter (KinesisShardCount, AlarmEmail, ...)")
    d.add_argument("--code-only", action="store_true",
                   help="bundle the lake's code without installing its dependencies (tests, the embedded AWS)")
    d.add_argument("--dry-run", action="store_true", help="show the change set, change nothing")
    d.add_argument("--yes", action="store_true", help="don't ask before changing a stack that is not local")
    d.add_argument("--app", metavar="MODULE",
                   help="deploy an app instead: the APP of MODULE (e.g. examples.file_index.app), its code and stack")
    d.set_defaults(func=run_deploy)


def run_template(args: argparse.Namespace, settings: Settings) -> int:
    """Render template.yaml from the wiring (lake/wiring.py) for the source tables, then validate
    it: cfn-lint on the SAM template and on its expansion, and the least-privilege rules.
    With ``--app``, an app's template instead (lake/deploy/app_command.py)."""
    if getattr(args, "app", None):
        from lake.deploy.app_command import run_app_template

        return run_app_template(args, settings)
    layout = Layout.from_settings(settings, _existing(args))
    from lake.deploy.validate import check, write_text

    template, status = check(render(layout), settings.region, validate=args.validate, expanded=args.expanded)
    write_text(args.output, to_yaml(template, layout))
    return status


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def run_deploy(args: argparse.Namespace, settings: Settings) -> int:
    """Build the code bundles, upload them, create or update the stack through a change set,
    wait, and print the stack's outputs. On the embedded AWS the SAM transform is expanded here
    (moto would skip AWS::Serverless::* resources); on AWS, CloudFormation expands it.
    With ``--app``, an app's code and stack instead (lake/deploy/app_command.py)."""
    if getattr(args, "app", None):
        from lake.deploy.app_command import run_app_deploy

        return run_app_deploy(args, settings)
    args.stack_name = args.stack_name or "dynamodb-lake"
    from lake.aws.clients import Clients
    from lake.aws.provision import ensure_bucket, stream_arn
    from lake.aws.stack import MAX_TEMPLATE_BODY, Stacks, account_id, template_url
    from lake.deploy import bundle

    existing = _existing(args)
    layout = Layout.from_settings(settings, existing)
    clients = Clients(settings)
    parameters = _pairs(args.parameter, "--parameter")
    arns = _pairs(args.stream_arn, "--stream-arn")
    for table in existing:
        parameters[layout.stream_parameter(table)] = arns.get(table) or stream_arn(clients, table)
    layer = args.pandas_layer_arn or parameters.get("PandasLayerArn")
    if not layer:
        raise ConfigError(f"--pandas-layer-arn is needed: the consumer's pyarrow comes from AWS's managed AWS SDK "
                          f"for pandas layer (Python 3.11, arm64) of {settings.region}; find its ARN at "
                          f"{PANDAS_LAYERS_DOC}")
    parameters["PandasLayerArn"] = layer
    parameters.setdefault("LakePrefix", settings.zone_prefix("x")[: -len("x/")])
    parameters.setdefault("GlueDatabaseName", settings.glue_database)
    if getattr(args, "bucket", None):
        parameters.setdefault("BucketName", settings.bucket)

    code = bundle.lambda_bundle(requirements=() if args.code_only else bundle.LAMBDA_REQUIREMENTS)
    lake_zip = bundle.lake_bundle()
    present = [j.name for j in WIRING.glue_jobs if (bundle.source_root() / j.script).is_file()]
    for missing in WIRING.glue_jobs:
        if missing.name not in present:
            print(f"warning: {missing.script} not found: the {missing.name} job is deployed without its script",
                  file=sys.stderr)
    scripts = bundle.glue_scripts(present)
    digest = hashlib.sha256(code.data + lake_zip.data + b"".join(scripts[j] for j in sorted(scripts))).hexdigest()
    artifact_bucket = args.artifact_bucket or f"{args.stack_name}-artifacts-{account_id(clients)}-{settings.region}"
    prefix = f"lake/{digest[:16]}/"
    parameters.setdefault("ArtifactBucket", artifact_bucket)
    parameters.setdefault("ArtifactPrefix", prefix)
    print(f"code: {LAMBDA_ZIP} {len(code.data) / 2**20:.1f} MB ({code.unzipped_bytes / 2**20:.1f} MB unzipped, "
          f"{code.files} files), {LAKE_ZIP} {len(lake_zip.data) / 2**20:.1f} MB, {len(scripts)} Glue scripts "
          f"-> s3://{artifact_bucket}/{prefix}")
    ensure_bucket(clients, artifact_bucket, settings.region)
    store = clients.store(artifact_bucket)
    store.put(prefix + LAMBDA_ZIP, code.data, content_type="application/zip")
    store.put(prefix + LAKE_ZIP, lake_zip.data, content_type="application/zip")
    for job, data in scripts.items():
        store.put(f"{prefix}glue_jobs/{job}.py", data, content_type="text/x-python")

    template = render(layout)
    if settings.is_local:
        from lake.deploy.validate import expand_sam

        template = expand_sam(template, parameters, region=settings.region)
    url = None
    if len(json.dumps(template, separators=(",", ":"))) > MAX_TEMPLATE_BODY:
        key = f"{prefix}template.json"
        store.put(key, json.dumps(template).encode(), content_type="application/json")
        url = template_url(artifact_bucket, key, settings.region)

    return apply_change_set(Stacks(clients, args.stack_name), template, parameters, url, args, settings)


def apply_change_set(stacks: Stacks, template: dict[str, Any], parameters: dict[str, str], url: str | None,
                     args: argparse.Namespace, settings: Settings) -> int:
    """Create a change set, show it, then discard it (empty, ``--dry-run``, not confirmed) or execute
    it and print the stack's outputs: the lake's deployment and an app's (``--app``) alike."""
    stack_name = stacks.stack
    cs = stacks.create_change_set(template, parameters, f"lake-{time.strftime('%Y%m%d%H%M%S')}", url)
    print(f"change set {cs.name} ({cs.kind} {stack_name}): {len(cs.changes)} changes")
    for change in cs.changes:
        print(f"  {change}")
    if cs.empty:
        print(f"nothing to change ({cs.status_reason or 'the stack is up to date'})")
        stacks.discard(cs)
        return 0
    if args.dry_run:
        stacks.discard(cs)
        print("dry run: the change set was deleted, nothing changed")
        return 0
    if not settings.is_local and not args.yes:
        from lake.prompt import confirm_interactively

        if not confirm_interactively(f"execute {len(cs.changes)} changes on stack {stack_name} "
                                     f"in {settings.region}"):
            stacks.discard(cs)
            print("not confirmed (pass --yes to deploy without a terminal): nothing changed")
            return 1
    stacks.execute(cs)
    print(f"stack {stack_name}: {cs.kind.lower()} complete")
    outputs = stacks.outputs()
    for key, value in sorted(outputs.items()):
        print(f"  {key}: {value}")
    if not outputs:
        print("  (the stack reports no outputs)")
    return 0
