"""The ``lake`` command line.

Every command takes ``--endpoint-url`` / ``--region`` / ``--profile`` (or reads
them from ``LAKE_*`` variables and ``lake.toml``), so it works the same on the
embedded AWS and on AWS. Stages that own a subcommand provide
``lake/<stage>/command.py`` with ``add_parser`` and ``run`` (docs/CONTRACTS.md).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from lake.aws.errors import AWS_ERRORS, explain
from lake.errors import LakeError
from lake.settings import Settings

log = logging.getLogger("lake")

# Subcommands contributed by stages, imported only if the stage exists.
PLUGINS = ("lake.query.command", "lake.replay.command", "lake.curate.command", "lake.redrive.command",
           "lake.glue.command", "lake.deploy.command", "lake.dashboard.command")


def common_parser(nested: bool = False) -> argparse.ArgumentParser:
    """The flags every command takes. ``nested``: for a subcommand of a subcommand (``lake
    dashboard deploy``), whose defaults must not overwrite what was given before it."""
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS if nested else None)
    g = p.add_argument_group("where the lake lives")
    g.add_argument("--endpoint-url", help="AWS endpoint (the embedded AWS printed by `lake up`); "
                   "unset = real AWS")
    g.add_argument("--region", help="AWS region (default us-east-1)")
    g.add_argument("--profile", help="AWS profile for real AWS")
    g.add_argument("--bucket", help="S3 bucket of the lake")
    g.add_argument("--prefix", help="root prefix of the lake's zones in the bucket")
    g.add_argument("--tables", dest="source_tables",
                   help="source tables, comma-separated, each table[:hash[:range]]")
    g.add_argument("--state-dir", help="where checkpoints are kept (default .lake-state)")
    g.add_argument("--config", help="a lake.toml file (default ./lake.toml if present)")
    g.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS if nested else 0,
                   help="more logging (-vv for debug)")
    return p


SETTING_FLAGS = ("endpoint_url", "region", "profile", "bucket", "prefix", "source_tables", "state_dir")


def build_parser() -> argparse.ArgumentParser:
    parents = [common_parser()]
    parser = argparse.ArgumentParser(
        prog="lake", description="Every change of your DynamoDB tables in an S3 data lake.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from lake.local import apps, demo, status, up

    up.add_parser(sub, parents)
    demo.add_parser(sub, parents)
    status.add_parser(sub, parents)
    apps.add_parser(sub, parents)  # lake example <name>
    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                continue  # the stage isn't built yet
            raise
        module.add_parser(sub, parents)
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    try:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=verbosity > 1)
        fmt = "%(name)s: %(message)s"
    except ImportError:  # pragma: no cover - rich is a dependency
        handler, fmt = logging.StreamHandler(), "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("lake").setLevel(level)
    logging.getLogger("lambdas").setLevel(level)


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {name: getattr(args, name, None) for name in SETTING_FLAGS}
    overrides.update(extra)
    return Settings.resolve(overrides, config_path=getattr(args, "config", None))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose + getattr(args, "default_verbosity", 0))
    try:
        settings = settings_from_args(args)
        return int(args.func(args, settings) or 0)
    except LakeError as e:
        print(f"lake {args.command}: error: {e}", file=sys.stderr)
        return 2
    except AWS_ERRORS as e:  # an SDK error no door translated (missing credentials get a hint)
        print(f"lake {args.command}: error: {explain(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lake {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
